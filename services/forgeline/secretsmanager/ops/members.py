"""Request members several operations read alike: the secret value (SecretString or
SecretBinary) and tags."""

from __future__ import annotations

from forgeline.secretsmanager.generated import errors, shapes

ValueRequest = (
    shapes.CreateSecretRequest | shapes.UpdateSecretRequest | shapes.PutSecretValueRequest
)


def secret_value(params: ValueRequest, *, required: bool) -> str | bytes | None:
    """The value a request sets: SecretString or SecretBinary, never both."""
    has_string, has_binary = "SecretString" in params, "SecretBinary" in params
    if has_string and has_binary:
        raise errors.InvalidParameterException(
            "You can't specify both a binary secret value and a string secret value in the "
            "same secret."
        )
    if required and not (has_string or has_binary):
        raise errors.InvalidRequestException(
            "You must provide either SecretString or SecretBinary."
        )
    if has_binary:
        return bytes(params["SecretBinary"])
    return params.get("SecretString")


def tag_map(raw: list[shapes.Tag]) -> dict[str, str]:
    """Tags by key (the model leaves Key and Value optional; Secrets Manager needs both)."""
    for tag in raw:
        if "Key" not in tag or "Value" not in tag:
            raise errors.InvalidParameterException("Each tag needs a Key and a Value.")
    return {tag["Key"]: tag["Value"] for tag in raw}
