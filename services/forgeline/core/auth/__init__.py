"""Identity: SigV4 verification (sigv4), accounts and access keys (keys, tables), secrets at
rest (crypto) and the errors authentication answers (errors).

Import from the submodules; sigv4 is pure and loads no database code.
"""
