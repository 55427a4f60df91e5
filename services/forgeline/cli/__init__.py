"""The `forgeline` command line: `main.py` is the root group, every other module one group.

The command line composes services (images, TLS, git credentials, the tables), so it sits
beside them rather than in the core. Every module imports only click at load time; what a
command needs (the settings model, the database, boto3, Docker) is imported inside it, so
`forgeline --help` stays fast.
"""
