"""Typed stubs for the CodeCommit API, generated from botocore."""
