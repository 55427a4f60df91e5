"""The `forgeline` command groups, one module each.

Every module imports only click at load time; what a command needs (the settings model,
the database, boto3, Docker) is imported inside it, so `forgeline --help` stays fast.
"""
