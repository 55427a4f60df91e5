"""Parse and validate a JSON 1.1 request body against a botocore input shape.

The result keeps the wire member names and turns timestamps into aware datetimes and
blobs into bytes, so handlers never see raw JSON encodings. Violations are collected
(as AWS does, "2 validation errors detected: …") and raised as one error whose code
is the most specific one the operation's model declares for the offending member.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import functools
import math
from typing import Any

import regex
from botocore.model import OperationModel, Shape

from forgeline.core.protocol.catalog import ApiSpec
from forgeline.core.protocol.errors import AwsError, serialization_error
from forgeline.core.protocol.messages import aws_message

_MISSING = object()


@dataclasses.dataclass(frozen=True)
class Violation:
    path: str  # AWS style: 'putFiles.1.member.filePath'
    member: str  # leaf member name
    shape_name: str
    kind: str  # required | length | range | enum | pattern | union
    value: Any
    constraint: str

    def sentence(self) -> str:
        shown = "null" if self.value is _MISSING else _short_repr(self.value)
        return f"Value {shown} at '{self.path}' failed to satisfy constraint: {self.constraint}"


def _short_repr(value: Any) -> str:
    if isinstance(value, str):
        text = value if len(value) <= 64 else value[:61] + "..."
        return f"'{text}'"
    if isinstance(value, list | dict):
        return f"[{type(value).__name__} of {len(value)}]"
    return repr(value)


# Patterns must match the whole value, as AWS's own validation does (Java's
# Pattern.matches): "my repo" fails [\w\.-]+ although "my" alone would match.
@functools.lru_cache(maxsize=2048)
def _compiled(pattern: str) -> regex.Pattern[str] | None:
    try:
        return regex.compile(pattern, flags=regex.V1)
    except regex.error:
        # A construct Python's regex engine lacks: skip the check rather than reject input.
        return None


class RequestValidator:
    def __init__(self, spec: ApiSpec, operation: OperationModel) -> None:
        self.spec = spec
        self.operation = operation
        self.violations: list[Violation] = []

    # -- entry point ---------------------------------------------------------------
    def parse(self, body: Any) -> dict[str, Any]:
        shape = self.operation.input_shape
        if shape is None:
            return {}
        if not isinstance(body, dict):
            raise serialization_error("The request body must be a JSON object.")
        parsed = self._structure(shape, body, "")
        if self.violations:
            raise self._error()
        return parsed

    # -- shapes ----------------------------------------------------------------------
    def _value(self, shape: Shape, value: Any, path: str, member: str) -> Any:
        kind = shape.type_name
        if kind == "structure":
            if shape.metadata.get("document"):
                return value
            if not isinstance(value, dict):
                raise _type_error(path, "structure", value)
            return self._structure(shape, value, path)
        if kind == "list":
            if not isinstance(value, list):
                raise _type_error(path, "list", value)
            self._check_size(shape, len(value), value, path, member)
            return [
                self._value(shape.member, item, f"{path}.{i + 1}.member", member)
                for i, item in enumerate(value)
            ]
        if kind == "map":
            if not isinstance(value, dict):
                raise _type_error(path, "map", value)
            self._check_size(shape, len(value), value, path, member)
            out = {}
            for key, item in value.items():
                out[self._value(shape.key, key, f"{path}.key", member)] = self._value(
                    shape.value, item, f"{path}.{key}", member
                )
            return out
        if kind == "string":
            if not isinstance(value, str):
                raise _type_error(path, "string", value)
            _check_text(value, path)
            if "\x00" in value:
                # Postgres text cannot hold NUL; refuse it on every backend alike.
                self._violate(
                    path, member, shape, "pattern", value, "Member must not contain NUL characters"
                )
                return value
            self._check_string(shape, value, path, member)
            return value
        if kind in ("integer", "long"):
            if isinstance(value, bool) or not isinstance(value, int):
                if isinstance(value, float) and value.is_integer():
                    value = int(value)
                else:
                    raise _type_error(path, kind, value)
            self._check_range(shape, value, path, member)
            return value
        if kind in ("float", "double"):
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
            ):
                raise _type_error(path, kind, value)
            self._check_range(shape, value, path, member)
            return float(value)
        if kind == "boolean":
            if not isinstance(value, bool):
                raise _type_error(path, "boolean", value)
            return value
        if kind == "timestamp":
            return _timestamp(value, path)
        if kind == "blob":
            if not isinstance(value, str):
                raise _type_error(path, "blob", value)
            try:
                data = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise serialization_error(f"Value at '{path}' is not valid base64.") from None
            self._check_size(shape, len(data), value, path, member)
            return data
        return value

    def _structure(self, shape: Shape, value: dict[str, Any], path: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        members = shape.members
        for name in shape.required_members:
            if value.get(_wire_name(members[name], name)) is None:
                self._violate(
                    path, name, members[name], "required", _MISSING, "Member must not be null"
                )
        for name, member_shape in members.items():
            wire = _wire_name(member_shape, name)
            if wire not in value or value[wire] is None:
                continue
            child = f"{path}.{name}" if path else name
            out[name] = self._value(member_shape, value[wire], child, name)
        if shape.metadata.get("union") and len(out) != 1:
            self._violate(
                path or shape.name,
                path.rsplit(".", 1)[-1] or shape.name,
                shape,
                "union",
                value,
                "Member must have exactly one member set",
            )
        return out

    # -- constraints -------------------------------------------------------------------
    def _check_string(self, shape: Shape, value: str, path: str, member: str) -> None:
        enum = shape.enum
        if enum and value not in enum:
            self._violate(
                path,
                member,
                shape,
                "enum",
                value,
                f"Member must satisfy enum value set: [{', '.join(enum)}]",
            )
            return
        self._check_size(shape, len(value), value, path, member)
        pattern = shape.metadata.get("pattern")
        if pattern:
            compiled = _compiled(pattern)
            if compiled is not None and compiled.fullmatch(value) is None:
                self._violate(
                    path,
                    member,
                    shape,
                    "pattern",
                    value,
                    f"Member must satisfy regular expression pattern: {pattern}",
                )

    def _check_size(self, shape: Shape, size: int, value: Any, path: str, member: str) -> None:
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if low is not None and size < low:
            self._violate(
                path,
                member,
                shape,
                "length",
                value,
                f"Member must have length greater than or equal to {low}",
            )
        elif high is not None and size > high:
            self._violate(
                path,
                member,
                shape,
                "length",
                value,
                f"Member must have length less than or equal to {high}",
            )

    def _check_range(self, shape: Shape, value: float, path: str, member: str) -> None:
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if low is not None and value < low:
            self._violate(
                path,
                member,
                shape,
                "range",
                value,
                f"Member must have value greater than or equal to {low}",
            )
        elif high is not None and value > high:
            self._violate(
                path,
                member,
                shape,
                "range",
                value,
                f"Member must have value less than or equal to {high}",
            )

    def _violate(
        self, path: str, member: str, shape: Shape, kind: str, value: Any, constraint: str
    ) -> None:
        full = (
            f"{path}.{member}"
            if kind == "required" and path
            else (path if kind != "required" else member)
        )
        self.violations.append(Violation(full, member, shape.name, kind, value, constraint))

    # -- the error ---------------------------------------------------------------------
    def _error(self) -> AwsError:
        count = len(self.violations)
        noun = "error" if count == 1 else "errors"
        message = f"{count} validation {noun} detected: " + "; ".join(
            v.sentence() for v in self.violations
        )
        code = error_code_for(self.spec, self.operation, self.violations[0])
        message = aws_message(self.spec.model_name, code) or message
        return AwsError(message, code=code, status=_error_status(self.operation, code))


# Members whose errors are not named after them: (API, member) -> error per kind.
_MEMBER_ERRORS: dict[tuple[str, str], dict[str, str]] = {
    ("codecommit", "kmsKeyId"): {
        "required": "EncryptionKeyRequiredException",
        "invalid": "EncryptionKeyInvalidIdException",
    },
    ("codecommit", "fileContent"): {"invalid": "FileContentSizeLimitExceededException"},
    # CodeDeploy names its errors after the enclosing structure, not the leaf member:
    # an unknown revision.s3Location.bundleType is an InvalidRevisionException.
    ("codedeploy", "revision"): {"invalid": "InvalidRevisionException"},
    ("codedeploy", "revisions"): {
        "required": "RevisionRequiredException",
        "invalid": "InvalidRevisionException",
    },
    ("codedeploy", "ec2TagFilters"): {"invalid": "InvalidEC2TagException"},
    ("codedeploy", "ec2TagSet"): {"invalid": "InvalidEC2TagException"},
    ("codedeploy", "onPremisesInstanceTagFilters"): {"invalid": "InvalidTagException"},
    ("codedeploy", "onPremisesTagSet"): {"invalid": "InvalidTagException"},
    ("codedeploy", "tagFilters"): {"invalid": "InvalidTagFilterException"},
    ("codedeploy", "triggerConfigurations"): {"invalid": "InvalidTriggerConfigException"},
    ("codedeploy", "autoRollbackConfiguration"): {"invalid": "InvalidAutoRollbackConfigException"},
    ("codedeploy", "alarmConfiguration"): {"invalid": "InvalidAlarmConfigException"},
    ("codedeploy", "overrideAlarmConfiguration"): {"invalid": "InvalidAlarmConfigException"},
    ("codedeploy", "outdatedInstancesStrategy"): {"invalid": "InvalidInputException"},
    ("codedeploy", "deploymentStyle"): {"invalid": "InvalidDeploymentStyleException"},
    ("codedeploy", "blueGreenDeploymentConfiguration"): {
        "invalid": "InvalidBlueGreenDeploymentConfigurationException"
    },
    ("codedeploy", "ec2DeploymentOptions"): {
        "invalid": "InvalidAutoScalingGroupProcessToSuspendException"
    },
    ("codedeploy", "minimumHealthyHosts"): {"invalid": "InvalidMinimumHealthyHostValueException"},
    ("codedeploy", "trafficRoutingConfig"): {
        "invalid": "InvalidTrafficRoutingConfigurationException"
    },
    ("codedeploy", "zonalConfig"): {"invalid": "InvalidZonalDeploymentConfigurationException"},
    ("codedeploy", "deployed"): {"invalid": "InvalidDeployedStateFilterException"},
    ("codedeploy", "targetInstances"): {"invalid": "InvalidTargetInstancesException"},
    ("codedeploy", "includeOnlyStatuses"): {"invalid": "InvalidDeploymentStatusException"},
    ("codedeploy", "instanceStatusFilter"): {"invalid": "InvalidInstanceStatusException"},
    ("codedeploy", "instanceTypeFilter"): {"invalid": "InvalidInstanceTypeException"},
    ("codedeploy", "targetFilters"): {"invalid": "InvalidTargetFilterNameException"},
    ("codedeploy", "tags"): {"required": "TagRequiredException"},
    ("codedeploy", "Tags"): {"required": "TagRequiredException"},
    ("codedeploy", "TagKeys"): {"required": "TagRequiredException"},
    ("codedeploy", "instanceNames"): {"required": "InstanceNameRequiredException"},
    ("codedeploy", "applicationNames"): {"required": "ApplicationNameRequiredException"},
    ("codedeploy", "deploymentGroupNames"): {"required": "DeploymentGroupNameRequiredException"},
    ("codedeploy", "deploymentIds"): {"required": "DeploymentIdRequiredException"},
    ("codedeploy", "instanceIds"): {"required": "InstanceIdRequiredException"},
    ("codedeploy", "targetIds"): {"required": "DeploymentTargetIdRequiredException"},
}


def error_code_for(spec: ApiSpec, operation: OperationModel, violation: Violation) -> str:
    """The most specific error the operation declares for this member, else the service's generic one.

    CodeCommit and CodeDeploy name an error per member (RepositoryNameRequiredException,
    InvalidRepositoryNameException, MaximumRepositoryNamesExceededException); CodeBuild
    and CodePipeline answer one generic validation error.
    """
    declared = {shape.name for shape in operation.error_shapes}
    named = _MEMBER_ERRORS.get((spec.model_name, violation.member), {})
    explicit = named.get("required" if violation.kind == "required" else "invalid")
    if explicit is not None and explicit in declared:
        return explicit
    stems = [_cap(violation.member), violation.shape_name]
    if violation.kind == "required":
        candidates = [f"{stem}RequiredException" for stem in stems]
    else:
        candidates = [f"Invalid{stem}Exception" for stem in stems]
        if violation.kind == "length" and isinstance(violation.value, list | dict):
            candidates = [f"Maximum{stem}ExceededException" for stem in stems] + candidates
    for candidate in candidates:
        if candidate in declared:
            return candidate
    # A member nested in a structure whose error the service names after the structure.
    root = violation.path.split(".", 1)[0]
    enclosing = _MEMBER_ERRORS.get((spec.model_name, root), {}).get("invalid")
    if root != violation.member and enclosing is not None and enclosing in declared:
        return enclosing
    return spec.validation_error


def _error_status(operation: OperationModel, code: str) -> int:
    for shape in operation.error_shapes:
        if shape.name == code:
            return int(shape.metadata.get("error", {}).get("httpStatusCode", 400))
    return 400


def _cap(name: str) -> str:
    return name[:1].upper() + name[1:]


def _wire_name(shape: Shape, member: str) -> str:
    return shape.serialization.get("name", member)


def _check_text(value: str, path: str) -> None:
    """JSON may escape lone UTF-16 surrogates (\\ud800) that no UTF-8 text can hold."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise serialization_error(
            f"Value at '{path or 'body'}' is not valid Unicode text (lone surrogate)."
        ) from None


def _type_error(path: str, expected: str, value: Any) -> AwsError:
    return serialization_error(
        f"Value at '{path or 'body'}' must be of type {expected}, not {type(value).__name__}."
    )


def _timestamp(value: Any, path: str) -> dt.datetime:
    if isinstance(value, bool):
        raise _type_error(path, "timestamp", value)
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise _type_error(path, "timestamp", value)
        try:
            return dt.datetime.fromtimestamp(value, tz=dt.UTC)
        except (OverflowError, OSError, ValueError):
            raise serialization_error(f"Value at '{path}' is not a valid timestamp.") from None
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise serialization_error(f"Value at '{path}' is not a valid timestamp.") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    raise _type_error(path, "timestamp", value)
