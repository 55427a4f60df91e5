"""Typed stubs for the CodeDeploy API, generated from botocore."""
