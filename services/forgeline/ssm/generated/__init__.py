"""Typed stubs for the SSM API, generated from botocore."""
