"""Typed stubs for the CodeDeployCommands API, generated from its own model."""
