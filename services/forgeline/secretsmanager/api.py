"""Secrets Manager: the secrets buildspecs read (the subset Forgeline implements; every other operation answers 501)."""

from __future__ import annotations

from forgeline.secretsmanager.ops import SecretsManagerProvider

PROVIDERS = {"secretsmanager": SecretsManagerProvider}
