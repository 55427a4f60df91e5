"""SSM Parameter Store: parameter names, lookups, versions and their encrypted values.

Shared by the SSM API (ssm/ops/) and the build engine's secret resolution
(codebuild/secret_values.py), so both read parameters by the same rules. The output
builders return the model's shapes, so mypy checks every member a response carries.
"""

from __future__ import annotations

import base64
import dataclasses
import re
import uuid

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from forgeline.core.auth import crypto
from forgeline.core.lifecycle import server_key
from forgeline.core.settings import get_settings
from forgeline.core.tagging import TagErrors
from forgeline.ssm.generated import errors, shapes
from forgeline.ssm.tables import SsmParameter, SsmParameterVersion

# AWS limits (Systems Manager User Guide, "Requirements and constraints for parameter names",
# and the Parameter Store quotas).
MAX_ARN_LENGTH = 1011  # a name counts with its ARN prefix
MAX_HIERARCHY_LEVELS = 15
MAX_VERSIONS = 100
MAX_PARAMETERS = 100_000  # per account and region, counting advanced parameters
MAX_LABELS_PER_VERSION = 10
MAX_VERSION_NUMBER = 2**63 - 1
MAX_VALUE_LENGTH = {"Standard": 4096, "Advanced": 8192}
DEFAULT_SECURE_KEY_ID = "alias/aws/ssm"
DATA_TYPES = ("text", "aws:ec2:image", "aws:ssm:integration")

# PutParameter declares no TooManyTagsError; too many tags there is a validation error.
PUT_TAG_ERRORS = TagErrors(
    too_many="ValidationException",
    reserved_key="ValidationException",
    invalid="ValidationException",
)
TAG_ERRORS = TagErrors(
    too_many="TooManyTagsError", reserved_key="ValidationException", invalid="ValidationException"
)

SEGMENT = re.compile(r"[a-zA-Z0-9_.\-]+")
_LABEL = re.compile(r"[a-zA-Z0-9_.\-]{1,100}")
_AMI_ID = re.compile(r"ami-([0-9a-f]{8}|[0-9a-f]{17})")


def arn(account_id: str, region: str, name: str) -> str:
    return f"arn:aws:ssm:{region}:{account_id}:parameter/{name.removeprefix('/')}"


def arn_of(parameter: SsmParameter) -> str:
    return arn(parameter.account_id, parameter.region, parameter.name)


def check_name(account_id: str, region: str, name: str) -> None:
    """Raise unless `name` follows AWS's rules for a parameter name."""
    bare = name.removeprefix("/")
    if "/" in bare and not name.startswith("/"):
        raise errors.ValidationException(
            f"Parameter name {name!r} is not valid: a name that contains a slash (a hierarchy) "
            "must be fully qualified, starting with '/'."
        )
    segments = bare.split("/")
    if not all(SEGMENT.fullmatch(segment) for segment in segments):
        raise errors.ValidationException(
            f"Parameter name {name!r} is not valid: each level of a name can contain only "
            "letters, numbers and the symbols . - _, separated by single slashes."
        )
    if segments[0].lower().startswith(("aws", "ssm")):
        raise errors.ValidationException(
            f"Parameter name {name!r} is not valid: names can't be prefixed with "
            '"aws" or "ssm" (case-insensitive).'
        )
    if len(segments) > MAX_HIERARCHY_LEVELS:
        raise errors.HierarchyLevelLimitExceededException(
            f"Parameter name {name!r} has {len(segments)} levels; a hierarchy can have at most "
            f"{MAX_HIERARCHY_LEVELS}."
        )
    if len(arn(account_id, region, name)) > MAX_ARN_LENGTH:
        raise errors.ValidationException(
            f"Parameter name {name[:64]!r}... is too long: with its ARN it may have at most "
            f"{MAX_ARN_LENGTH} characters."
        )


@dataclasses.dataclass(frozen=True)
class Reference:
    """A parameter as a request names it: name or ARN, with an optional :version or :label."""

    requested: str
    candidates: tuple[str, ...]  # names it may stand for (an ARN drops the leading slash)
    selector: str | None  # the text after the last ':' of the name, if any

    @property
    def version(self) -> int | None:
        return int(self.selector) if self.selector and self.selector.isdigit() else None

    @property
    def label(self) -> str | None:
        return self.selector if self.selector and not self.selector.isdigit() else None


def parse_reference(account_id: str, region: str, requested: str) -> Reference | None:
    """How `requested` names a parameter; None if it can't name one in this account and region."""
    text = requested
    if text.startswith("arn:"):
        parts = text.split(":", 5)
        if len(parts) != 6 or parts[2] != "ssm" or not parts[5].startswith("parameter/"):
            return None
        if parts[3] != region or parts[4] != account_id:
            return None
        text = parts[5].removeprefix("parameter/")
        name, selector = _split_selector(text)
        candidates: tuple[str, ...] = (name, "/" + name) if "/" not in name else ("/" + name,)
        return Reference(requested, candidates, selector)
    name, selector = _split_selector(text)
    return Reference(requested, (name,), selector)


def _split_selector(text: str) -> tuple[str, str | None]:
    name, colon, selector = text.rpartition(":")
    return (name, selector) if colon else (text, None)


def find(
    session: Session,
    account_id: str,
    region: str,
    names: tuple[str, ...],
    *,
    lock: bool = False,
) -> SsmParameter | None:
    """The parameter with the first of `names` that exists.

    `lock` holds the row until commit (Postgres; SQLite writers are serialized anyway), so
    concurrent overwrites number their versions one after the other.
    """
    for name in names:
        query = select(SsmParameter).where(
            SsmParameter.account_id == account_id,
            SsmParameter.region == region,
            SsmParameter.name == name,
        )
        row = session.scalars(query.with_for_update() if lock else query).one_or_none()
        if row is not None:
            return row
    return None


def find_exact(
    session: Session, account_id: str, region: str, requested: str, *, lock: bool = False
) -> SsmParameter | None:
    """The parameter a name or ARN names, without a version or label selector."""
    reference = parse_reference(account_id, region, requested)
    if reference is None or reference.selector is not None:
        return None
    return find(session, account_id, region, reference.candidates, lock=lock)


def not_found(name: str) -> errors.ParameterNotFound:
    return errors.ParameterNotFound(f"Parameter {name} not found.")


def version_row(
    session: Session, parameter: SsmParameter, number: int
) -> SsmParameterVersion | None:
    if not 0 < number <= MAX_VERSION_NUMBER:  # beyond BIGINT: no such version
        return None
    return session.get(SsmParameterVersion, (parameter.id, number))


def versions(session: Session, parameter: SsmParameter) -> list[SsmParameterVersion]:
    return list(
        session.scalars(
            select(SsmParameterVersion)
            .where(SsmParameterVersion.parameter_id == parameter.id)
            .order_by(SsmParameterVersion.version)
        )
    )


def resolve(
    session: Session, account_id: str, region: str, requested: str
) -> tuple[SsmParameter, SsmParameterVersion, Reference]:
    """The parameter and version `requested` names; ParameterNotFound or ParameterVersionNotFound."""
    reference = parse_reference(account_id, region, requested)
    if reference is None or reference.selector == "":
        raise not_found(requested)
    parameter = find(session, account_id, region, reference.candidates)
    if parameter is None:
        raise not_found(reference.candidates[0] if reference.selector is None else requested)
    if reference.selector is None:
        current = version_row(session, parameter, parameter.version)
        assert current is not None  # the current version always exists
        return parameter, current, reference
    if reference.version is not None:
        chosen = version_row(session, parameter, reference.version)
        if chosen is None:
            raise errors.ParameterVersionNotFound(
                f"Systems Manager could not find version {reference.version} of "
                f"{parameter.name}. Verify the version and try again."
            )
        return parameter, chosen, reference
    labelled = [v for v in versions(session, parameter) if reference.label in (v.labels or [])]
    if not labelled:
        raise errors.ParameterVersionNotFound(
            f"Systems Manager could not find label {reference.label} for parameter "
            f"{parameter.name}. Verify the label and try again."
        )
    return parameter, labelled[0], reference


# -- values ----------------------------------------------------------------------------------
def _key() -> bytes:
    return server_key(get_settings())


def seal(value: str) -> str:
    return crypto.encrypt(_key(), value)


def unseal(version: SsmParameterVersion) -> str:
    return crypto.decrypt(_key(), version.value_encrypted)


def visible_value(version: SsmParameterVersion, with_decryption: bool) -> str:
    """What a read returns: a SecureString read without decryption gets its ciphertext."""
    if version.type == "SecureString" and not with_decryption:
        # AWS returns the KMS ciphertext, base64: opaque, and useless without the key.
        token = version.value_encrypted.encode("ascii")
        return base64.b64encode(base64.urlsafe_b64decode(token)).decode("ascii")
    return unseal(version)


def parameter_output(
    parameter: SsmParameter,
    version: SsmParameterVersion,
    reference: Reference | None,
    with_decryption: bool,
) -> shapes.Parameter:
    output: shapes.Parameter = {
        "Name": parameter.name,
        "Type": version.type,
        "Value": visible_value(version, with_decryption),
        "Version": version.version,
        "LastModifiedDate": version.modified_at,
        "ARN": arn_of(parameter),
        "DataType": version.data_type,
    }
    if reference is not None and reference.selector is not None:
        output["Selector"] = ":" + reference.selector
    return output


def metadata_output(
    parameter: SsmParameter, version: SsmParameterVersion
) -> shapes.ParameterMetadata:
    output: shapes.ParameterMetadata = {
        "Name": parameter.name,
        "ARN": arn_of(parameter),
        "Type": version.type,
        "LastModifiedDate": version.modified_at,
        "LastModifiedUser": version.modified_by,
        "Version": version.version,
        "Tier": version.tier,
        "Policies": [],
        "DataType": version.data_type,
    }
    _add_attributes(output, version)
    return output


def history_output(
    parameter: SsmParameter, version: SsmParameterVersion, with_decryption: bool
) -> shapes.ParameterHistory:
    """One version as GetParameterHistory lists it: the metadata without the ARN, with the
    value and labels."""
    output: shapes.ParameterHistory = {
        "Name": parameter.name,
        "Type": version.type,
        "LastModifiedDate": version.modified_at,
        "LastModifiedUser": version.modified_by,
        "Version": version.version,
        "Tier": version.tier,
        "Policies": [],
        "DataType": version.data_type,
    }
    _add_attributes(output, version)
    output["Value"] = visible_value(version, with_decryption)
    if version.labels:
        output["Labels"] = list(version.labels)
    return output


def _add_attributes(
    output: shapes.ParameterMetadata | shapes.ParameterHistory, version: SsmParameterVersion
) -> None:
    """The attributes a version may leave unset, only where set."""
    if version.key_id:
        output["KeyId"] = version.key_id
    if version.description:
        output["Description"] = version.description
    if version.allowed_pattern:
        output["AllowedPattern"] = version.allowed_pattern


# -- writing ---------------------------------------------------------------------------------
def new_parameter(account_id: str, region: str, name: str) -> SsmParameter:
    return SsmParameter(
        id=str(uuid.uuid4()), account_id=account_id, region=region, name=name, version=0
    )


def add_version(session: Session, parameter: SsmParameter, version: SsmParameterVersion) -> None:
    """Make `version` the parameter's newest, dropping the oldest beyond AWS's 100."""
    existing = versions(session, parameter)
    if len(existing) >= MAX_VERSIONS:
        oldest = existing[0]
        if oldest.labels:
            raise errors.ParameterMaxVersionLimitExceeded(
                f"You attempted to create a new version of {parameter.name} by calling the "
                f"PutParameter API with the overwrite flag. Version {oldest.version}, the oldest "
                f"version, can't be deleted because it has a label associated with it. Move the "
                "label to another version of the parameter, and try again."
            )
        session.execute(
            delete(SsmParameterVersion).where(
                SsmParameterVersion.parameter_id == parameter.id,
                SsmParameterVersion.version == oldest.version,
            )
        )
    parameter.version += 1
    version.parameter_id = parameter.id
    version.version = parameter.version
    session.add(version)


def label_problem(label: str) -> bool:
    """True if `label` breaks AWS's label rules (returned as InvalidLabels, not an error)."""
    return (
        not _LABEL.fullmatch(label)
        or label[0].isdigit()
        or label.lower().startswith(("aws", "ssm"))
    )


def check_data_type(data_type: str, value: str) -> None:
    if data_type not in DATA_TYPES:
        raise errors.ValidationException(
            f"The data type {data_type!r} is not supported. Supported data types: "
            f"{', '.join(DATA_TYPES)} (data type names are all lowercase)."
        )
    if data_type == "aws:ec2:image" and not _AMI_ID.fullmatch(value):
        raise errors.ValidationException(
            f"The value {value!r} is not valid for data type aws:ec2:image: expected an AMI ID "
            "such as ami-12345678 or ami-1234567890abcdef0."
        )
