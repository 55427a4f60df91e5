"""Typed stubs for the CloudWatchLogs API, generated from botocore."""
