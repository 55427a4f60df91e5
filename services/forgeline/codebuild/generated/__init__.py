"""Typed stubs for the CodeBuild API, generated from botocore."""
