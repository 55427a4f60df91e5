"""Registering this host as an on-premises instance (`forgeline agent register`), like
`aws deploy register` + `install`: the instance gets an access key of its own, is
registered with that key's IAM user ARN (its host identifier), and the agent's config is
written.

Where the instance key comes from:
- given (`--access-key-id`, `--secret-access-key`, `--iam-user-arn`): used as it is;
- otherwise minted in Forgeline's database (the same settings as `forgeline keys ...`:
  FORGELINE_DATA_DIR / FORGELINE_DATABASE_URL) for user `codedeploy/<name>` of the
  caller's account. A registration that fails deletes the key it minted.

The CodeDeploy calls themselves are made with the caller's usual AWS credentials
(environment or profile).
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Any

from forgeline.codedeploy.agent.config import AgentConfig

INSTANCE_USER_PREFIX = "codedeploy/"
DEFAULT_ENDPOINT = "http://127.0.0.1:4750"
# The characters of an IAM user name: the instance name becomes part of one.
_INSTANCE_NAME = re.compile(r"[A-Za-z0-9_+=,.@-]{1,64}")


class RegistrationError(ValueError):
    """Registration cannot go on; the message says what to do."""


@dataclasses.dataclass(frozen=True)
class InstanceKey:
    access_key_id: str
    secret_access_key: str = dataclasses.field(repr=False)
    iam_user_arn: str
    minted: bool


def check_instance_name(name: str) -> str:
    if not _INSTANCE_NAME.fullmatch(name):
        raise RegistrationError(
            f"instance name {name!r} must be 1-64 letters, digits or _+=,.@- "
            "(it becomes part of the instance's IAM user name)"
        )
    return name


def default_endpoint() -> str:
    return (
        os.environ.get("AWS_ENDPOINT_URL_CODEDEPLOY")
        or os.environ.get("AWS_ENDPOINT_URL")
        or DEFAULT_ENDPOINT
    )


def default_region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def caller_session(region: str) -> Any:
    """The caller's own AWS credentials (environment or profile), which register with."""
    import boto3

    session = boto3.Session(region_name=region)
    if session.get_credentials() is None:
        raise RegistrationError(
            "no AWS credentials to register with: set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE"
        )
    return session


def caller_key_id(session: Any) -> str:
    return str(session.get_credentials().get_frozen_credentials().access_key)


def codedeploy_client(session: Any, endpoint: str, ca_file: Path | None) -> Any:
    return session.client(
        "codedeploy", endpoint_url=endpoint, verify=str(ca_file) if ca_file else True
    )


# --- the instance's key --------------------------------------------------------------------


def mint_instance_key(name: str, caller_key_id: str) -> InstanceKey:
    """A new key for `codedeploy/<name>` in the caller's account, from Forgeline's database."""
    from forgeline.core import lifecycle
    from forgeline.core.auth import keys
    from forgeline.core.auth.tables import AccessKey
    from forgeline.core.db import session_scope
    from forgeline.core.settings import get_settings

    settings = get_settings()
    _check_database_exists(settings)
    user = INSTANCE_USER_PREFIX + name
    with session_scope() as session:
        caller = session.get(AccessKey, caller_key_id)
        if caller is None:
            raise RegistrationError(
                f"the access key {caller_key_id} is not in the Forgeline database at "
                f"{settings.resolved_database_url}: point FORGELINE_DATA_DIR / "
                "FORGELINE_DATABASE_URL at the server's, or give --access-key-id, "
                "--secret-access-key and --iam-user-arn"
            )
        account = caller.account_id
        key_id, secret = keys.create_access_key(
            session, account, user, server_key=lifecycle.server_key(settings)
        )
    return InstanceKey(key_id, secret, keys.principal_arn(account, user), minted=True)


def server_trust_material() -> tuple[bytes | None, bytes | None]:
    """(the server's specification signer certificate, the CA of its HTTPS certificate) as
    PEM, read from the server's data directory where this host has it; None where not."""
    from cryptography.hazmat.primitives import serialization

    from forgeline.codedeploy.commands.signing import get_signer
    from forgeline.core.settings import get_settings

    settings = get_settings()
    signer = get_signer(settings).certificate.public_bytes(serialization.Encoding.PEM)
    ca_file = settings.tls_cert_file or settings.data_dir / "tls" / "ca.pem"
    return signer, (ca_file.read_bytes() if ca_file.is_file() else None)


def delete_instance_key(access_key_id: str) -> bool:
    from forgeline.core.auth import keys
    from forgeline.core.db import session_scope
    from forgeline.core.settings import get_settings

    _check_database_exists(get_settings())
    with session_scope() as session:
        return keys.delete_access_key(session, access_key_id)


def _check_database_exists(settings: Any) -> None:
    url = settings.resolved_database_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        raise RegistrationError(
            f"no Forgeline database at {url} to make the instance's key in: run this where "
            "the server's FORGELINE_DATA_DIR (or FORGELINE_DATABASE_URL) is set, or give "
            "--access-key-id, --secret-access-key and --iam-user-arn"
        )


# --- register / deregister -----------------------------------------------------------------


def register(
    client: Any,
    name: str,
    instance_key: InstanceKey,
    tags: dict[str, str],
    base: AgentConfig,
) -> AgentConfig:
    """Register the instance and return its agent config (`base` with the identity in)."""
    try:
        client.register_on_premises_instance(
            instanceName=name, iamUserArn=instance_key.iam_user_arn
        )
        if tags:
            client.add_tags_to_on_premises_instances(
                tags=[{"Key": key, "Value": value} for key, value in tags.items()],
                instanceNames=[name],
            )
    except BaseException:
        if instance_key.minted:
            delete_instance_key(instance_key.access_key_id)
        raise
    return dataclasses.replace(
        base,
        instance_name=name,
        host_identifier=instance_key.iam_user_arn,
        access_key_id=instance_key.access_key_id,
        secret_access_key=instance_key.secret_access_key,
    )


def parse_tags(pairs: tuple[str, ...]) -> dict[str, str]:
    tags = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise RegistrationError(f"tag {pair!r} must be KEY=VALUE")
        tags[key] = value
    return tags
