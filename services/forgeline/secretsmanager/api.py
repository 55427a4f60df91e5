"""Secrets Manager: the secrets buildspecs read (the subset Forgeline implements; every other operation answers 501).

Secrets, their versions and staging labels, scheduled deletion and restore, tags; each
group of operations is a mixin of forgeline/secretsmanager/ops/.
"""

from __future__ import annotations

from forgeline.secretsmanager.generated.api import SecretsManagerApi
from forgeline.secretsmanager.ops.secrets import SecretOperations
from forgeline.secretsmanager.ops.tags import TagOperations
from forgeline.secretsmanager.ops.values import ValueOperations


class SecretsManagerProvider(SecretOperations, ValueOperations, TagOperations, SecretsManagerApi):
    """Secrets Manager as Forgeline serves it."""


PROVIDERS = {"secretsmanager": SecretsManagerProvider}
