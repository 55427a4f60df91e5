"""Typed stubs for the SecretsManager API, generated from botocore."""
