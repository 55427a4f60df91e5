"""Typed stubs for the CodePipeline API, generated from botocore."""
