"""Typed stubs for the CloudWatch API, generated from botocore."""
