"""Resolve the secrets a build's environment names: SSM parameters and Secrets Manager values.

The build engine calls these while preparing a build (AWS CodeBuild does it in the
DOWNLOAD_SOURCE phase, whose failure ends the build). A failure raises
`SecretResolutionError`; its `status_code` and `message` are what CodeBuild puts in the
failed phase's context, e.g. status code "Decrypted Variables Error" with message
"parameter does not exist: /app/token".
"""

from __future__ import annotations

import json

from sqlalchemy.orm import Session

from forgeline.core.auth.crypto import DecryptionError
from forgeline.secretsmanager import store as secrets_store
from forgeline.secretsmanager.generated import errors as sm_errors
from forgeline.ssm import parameters as ssm_parameters
from forgeline.ssm.generated import errors as ssm_errors

# Phase context status codes AWS CodeBuild reports when a build's secrets can't be read.
PARAMETER_STORE_ERROR = "Decrypted Variables Error"
SECRETS_MANAGER_ERROR = "Secrets Manager Error"

_ARN_FIELDS = 7  # arn:aws:secretsmanager:<region>:<account>:secret:<name>-<suffix>


class SecretResolutionError(Exception):
    """A parameter or secret named by a build could not be read."""

    def __init__(self, message: str, status_code: str = PARAMETER_STORE_ERROR) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


def resolve_parameter(session: Session, account_id: str, region: str, name: str) -> str:
    """The decrypted value of SSM parameter `name` (a name or ARN, optionally `:version`)."""
    try:
        _, version, _ = ssm_parameters.resolve(session, account_id, region, name)
        return ssm_parameters.unseal(version)
    except ssm_errors.ParameterNotFound:
        raise SecretResolutionError(f"parameter does not exist: {name}") from None
    except ssm_errors.ParameterVersionNotFound as exc:
        raise SecretResolutionError(f"ParameterVersionNotFound: {exc.message}") from None
    except DecryptionError as exc:
        raise SecretResolutionError(f"InvalidKeyId: {exc}") from None


def resolve_secret(session: Session, account_id: str, region: str, reference: str) -> str:
    """The value CodeBuild's `secret-id:json-key:version-stage:version-id` reference names.

    secret-id is the secret's name or ARN (an ARN's own colons are part of it); the other
    parts may be left out or empty. Without a json-key the whole SecretString is the value;
    without a stage or version, the AWSCURRENT version is read.
    """
    secret_id, json_key, stage, version_id = parse_secret_reference(reference)
    try:
        secret = secrets_store.get_live(session, account_id, region, secret_id)
        version = secrets_store.select_version(session, secret, version_id or None, stage or None)
        value = secrets_store.unseal(version)
    except (
        sm_errors.ResourceNotFoundException,
        sm_errors.InvalidRequestException,
    ) as exc:
        raise SecretResolutionError(f"{exc.code}: {exc.message}", SECRETS_MANAGER_ERROR) from None
    except DecryptionError as exc:
        raise SecretResolutionError(f"DecryptionFailure: {exc}", SECRETS_MANAGER_ERROR) from None
    if isinstance(value, bytes):
        # CodeBuild exports SecretString only; a binary secret has none to give.
        raise SecretResolutionError(
            f"secret {secret_id} holds a binary value (SecretBinary); an environment variable "
            "needs a SecretString",
            SECRETS_MANAGER_ERROR,
        )
    if not json_key:
        return value
    return _json_field(secret_id, value, json_key)


def parse_secret_reference(reference: str) -> tuple[str, str, str, str]:
    """(secret-id, json-key, version-stage, version-id); absent parts are empty strings."""
    parts = reference.split(":")
    if reference.startswith("arn:"):
        if len(parts) < _ARN_FIELDS:
            raise SecretResolutionError(
                f"invalid secret reference {reference!r}: a Secrets Manager ARN has the form "
                "arn:aws:secretsmanager:<region>:<account>:secret:<name>",
                SECRETS_MANAGER_ERROR,
            )
        secret_id, rest = ":".join(parts[:_ARN_FIELDS]), parts[_ARN_FIELDS:]
    else:
        secret_id, rest = parts[0], parts[1:]
    if not secret_id or len(rest) > 3:
        raise SecretResolutionError(
            f"invalid secret reference {reference!r}: expected "
            "secret-id:json-key:version-stage:version-id",
            SECRETS_MANAGER_ERROR,
        )
    json_key, stage, version_id = (rest + ["", "", ""])[:3]
    return secret_id, json_key, stage, version_id


def _json_field(secret_id: str, value: str, json_key: str) -> str:
    try:
        document = json.loads(value)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise SecretResolutionError(
            f"secret {secret_id} is not a JSON object, so json key {json_key} can't be read "
            "from it",
            SECRETS_MANAGER_ERROR,
        )
    if json_key not in document:
        raise SecretResolutionError(
            f"json key {json_key} not found in secret {secret_id}", SECRETS_MANAGER_ERROR
        )
    field = document[json_key]
    # Strings as they are; numbers, booleans, objects as their JSON text.
    return field if isinstance(field, str) else json.dumps(field)
