"""Parse and validate a CodeBuild buildspec (YAML text) into typed dataclasses.

The rules follow AWS's "Build specification reference for CodeBuild". Parsing works on
``yaml.compose`` nodes rather than loaded values so every error can name the 1-based line of
the offending node, and so command items keep their YAML text exactly as written.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

VERSIONS = ("0.1", "0.2")
SHELLS = ("sh", "bash")
ON_FAILURE = ("ABORT", "CONTINUE")
PHASE_NAMES = ("install", "pre_build", "build", "post_build")
REPORT_FILE_FORMATS = (
    "JUNITXML",
    "CUCUMBERJSON",
    "TESTNGXML",
    "VISUALSTUDIOTRX",
    "NUNITXML",
    "NUNIT3XML",
    "COBERTURAXML",
    "CLOVERXML",
    "JACOCOXML",
    "SIMPLECOV",
)

_NULL_TAG = "tag:yaml.org,2002:null"
_YES = ("yes", "true", "on")
_NO = ("no", "false", "off")


class BuildspecError(ValueError):
    """An invalid buildspec; ``message`` is in AWS's YAML_FILE_ERROR style."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass(frozen=True)
class SecretReference:
    """A ``secrets-manager`` value: ``secret-id:json-key:version-stage:version-id``."""

    secret_id: str
    json_key: str | None = None
    version_stage: str | None = None
    version_id: str | None = None


@dataclass(frozen=True)
class Env:
    shell: str | None = None
    variables: dict[str, str] = field(default_factory=dict)
    parameter_store: dict[str, str] = field(default_factory=dict)
    secrets_manager: dict[str, SecretReference] = field(default_factory=dict)
    exported_variables: tuple[str, ...] = ()
    git_credential_helper: bool = False


@dataclass(frozen=True)
class Phase:
    name: str
    commands: tuple[str, ...] = ()
    finally_commands: tuple[str, ...] = ()
    on_failure: str = "ABORT"
    run_as: str | None = None
    runtime_versions: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ReportGroup:
    files: tuple[str, ...]
    base_directory: str | None = None
    discard_paths: bool = False
    file_format: str = "JUNITXML"


@dataclass(frozen=True)
class Artifacts:
    files: tuple[str, ...] = ()
    name: str | None = None
    discard_paths: bool = False
    base_directory: str | None = None
    exclude_paths: tuple[str, ...] = ()
    enable_symlinks: bool = False
    s3_prefix: str | None = None
    secondary_artifacts: dict[str, Artifacts] = field(default_factory=dict)


@dataclass(frozen=True)
class Cache:
    paths: tuple[str, ...] = ()
    key: str | None = None
    fallback_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class Buildspec:
    version: str
    run_as: str | None = None
    env: Env = field(default_factory=Env)
    phases: dict[str, Phase] = field(default_factory=dict)
    reports: dict[str, ReportGroup] = field(default_factory=dict)
    artifacts: Artifacts | None = None
    cache: Cache | None = None
    proxy: Any = None
    batch: Any = None

    def phase(self, name: str) -> Phase:
        """The named phase, or an empty one when the buildspec leaves it out."""
        return self.phases.get(name) or Phase(name=name)


# ---------------------------------------------------------------- node helpers


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _fail(node: yaml.Node, text: str) -> BuildspecError:
    return BuildspecError(f"YAML_FILE_ERROR: {text} at line {_line(node)}", _line(node))


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == _NULL_TAG


def _mapping(node: yaml.Node, what: str) -> list[tuple[str, yaml.Node]]:
    """The (key, value node) pairs of a mapping; null counts as empty; duplicates are errors."""
    if _is_null(node):
        return []
    if not isinstance(node, yaml.MappingNode):
        raise _fail(node, f"Expected {what} to be a map")
    seen: set[str] = set()
    pairs = []
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            raise _fail(key_node, f"Expected a plain key in {what}")
        key = key_node.value
        if key in seen:
            raise _fail(key_node, f"Duplicate key '{key}' in {what}")
        seen.add(key)
        pairs.append((key, value_node))
    return pairs


def _known_keys(
    pairs: list[tuple[str, yaml.Node]], allowed: Sequence[str], what: str, parent: yaml.Node
) -> dict[str, yaml.Node]:
    result = {}
    for key, value in pairs:
        if key not in allowed:
            raise _fail(_key_node(parent, key), f"Unknown key '{key}' in {what}")
        result[key] = value
    return result


def _key_node(parent: yaml.Node, key: str) -> yaml.Node:
    for key_node, _ in parent.value:
        if key_node.value == key:
            return key_node
    return parent


def _string(node: yaml.Node, what: str) -> str:
    """A scalar as its YAML text: ints, floats and booleans keep the spelling written."""
    if not isinstance(node, yaml.ScalarNode):
        raise _fail(node, f"Expected {what} to be a string")
    return node.value


def _optional_string(node: yaml.Node | None, what: str) -> str | None:
    if node is None or _is_null(node):
        return None
    return _string(node, what)


def _enum(node: yaml.Node, allowed: Sequence[str], what: str) -> str:
    value = _string(node, what)
    if value not in allowed:
        raise _fail(node, f"Invalid {what} '{value}', expected one of {', '.join(allowed)}")
    return value


def _flag(node: yaml.Node | None, what: str) -> bool:
    if node is None or _is_null(node):
        return False
    value = _string(node, what).lower()
    if value in _YES:
        return True
    if value in _NO:
        return False
    raise _fail(node, f"Invalid {what} '{node.value}', expected yes or no")


def _string_list(node: yaml.Node | None, what: str) -> tuple[str, ...]:
    """A list of strings; a single scalar counts as a one-item list, as AWS accepts."""
    if node is None or _is_null(node):
        return ()
    if isinstance(node, yaml.ScalarNode):
        return (node.value,)
    if not isinstance(node, yaml.SequenceNode):
        raise _fail(node, f"Expected {what} to be a list")
    items = []
    for item in node.value:
        if not isinstance(item, yaml.ScalarNode):
            raise _fail(item, f"Expected each item of {what} to be a string")
        if _is_null(item) or item.value == "":
            raise _fail(item, f"Empty item in {what}")
        items.append(item.value)
    return tuple(items)


def _string_map(node: yaml.Node, what: str) -> dict[str, str]:
    result = {}
    for key, value in _mapping(node, what):
        result[key] = "" if _is_null(value) else _string(value, f"{what} value '{key}'")
    return result


def _raw(node: yaml.Node) -> Any:
    return yaml.SafeLoader("").construct_document(node)


# ---------------------------------------------------------------- sections


def _parse_env(node: yaml.Node) -> Env:
    fields = _known_keys(
        _mapping(node, "env"),
        (
            "shell",
            "variables",
            "parameter-store",
            "secrets-manager",
            "exported-variables",
            "git-credential-helper",
        ),
        "env",
        node,
    )
    shell = fields.get("shell")
    secrets = {}
    for name, value in _mapping(fields.get("secrets-manager", _null_node()), "secrets-manager"):
        reference = _parse_secret(_string(value, f"secrets-manager value '{name}'"))
        if not reference.secret_id:
            raise _fail(value, f"Invalid secrets-manager reference for '{name}'")
        secrets[name] = reference
    return Env(
        shell=None if shell is None or _is_null(shell) else _enum(shell, SHELLS, "env/shell"),
        variables=_string_map(fields.get("variables", _null_node()), "env/variables"),
        parameter_store=_string_map(
            fields.get("parameter-store", _null_node()), "env/parameter-store"
        ),
        secrets_manager=secrets,
        exported_variables=_string_list(fields.get("exported-variables"), "env/exported-variables"),
        git_credential_helper=_flag(fields.get("git-credential-helper"), "git-credential-helper"),
    )


def _parse_secret(text: str) -> SecretReference:
    """Split ``secret-id:json-key:version-stage:version-id``; an ARN id keeps its own colons."""
    parts = text.split(":")
    id_parts = 7 if text.startswith("arn:") else 1
    secret_id = ":".join(parts[:id_parts])
    rest = parts[id_parts:] + [""] * 3
    return SecretReference(
        secret_id=secret_id,
        json_key=rest[0] or None,
        version_stage=rest[1] or None,
        version_id=rest[2] or None,
    )


def _parse_commands(node: yaml.Node | None, what: str) -> tuple[str, ...]:
    """Command items must be scalars; a block scalar keeps its lines, minus the final newline."""
    if node is None or _is_null(node):
        return ()
    if not isinstance(node, yaml.SequenceNode):
        raise _fail(node, f"Expected {what} to be a list of commands")
    commands = []
    for item in node.value:
        if not isinstance(item, yaml.ScalarNode):
            raise _fail(item, f"Expected a command string in {what}, found a map or list")
        text = item.value.rstrip("\n")
        if _is_null(item) or not text.strip():
            raise _fail(item, f"Empty command in {what}")
        commands.append(text)
    return tuple(commands)


def _parse_phase(name: str, node: yaml.Node, runtimes: Mapping[str, Sequence[str]] | None) -> Phase:
    allowed = ["run-as", "on-failure", "commands", "finally"]
    if name == "install":
        allowed.append("runtime-versions")
    fields = _known_keys(_mapping(node, f"phases/{name}"), allowed, f"phases/{name}", node)
    on_failure = fields.get("on-failure")
    runtime_node = fields.get("runtime-versions")
    runtime_versions = {} if runtime_node is None else _parse_runtimes(runtime_node, runtimes)
    return Phase(
        name=name,
        commands=_parse_commands(fields.get("commands"), f"phases/{name}/commands"),
        finally_commands=_parse_commands(fields.get("finally"), f"phases/{name}/finally"),
        on_failure="ABORT"
        if on_failure is None or _is_null(on_failure)
        else _enum(on_failure, ON_FAILURE, "on-failure"),
        run_as=_optional_string(fields.get("run-as"), "run-as"),
        runtime_versions=runtime_versions,
    )


def _parse_runtimes(
    node: yaml.Node, available: Mapping[str, Sequence[str]] | None
) -> dict[str, str]:
    result = {}
    for runtime, value in _mapping(node, "runtime-versions"):
        version = _string(value, f"runtime version of {runtime}")
        if available is not None:
            if runtime not in available:
                raise _fail(
                    _key_node(node, runtime),
                    f"Unknown runtime named '{runtime}'. This build image has the following "
                    f"runtimes: {', '.join(sorted(available))}",
                )
            versions = available[runtime]
            if version not in versions and version != "latest":
                raise _fail(
                    value,
                    f"Unknown runtime version named '{version}' of {runtime}. This build image "
                    f"has the following versions: {', '.join(versions)}",
                )
        result[runtime] = version
    return result


def _parse_reports(node: yaml.Node) -> dict[str, ReportGroup]:
    groups = {}
    for name, value in _mapping(node, "reports"):
        what = f"reports/{name}"
        fields = _known_keys(
            _mapping(value, what),
            ("files", "base-directory", "discard-paths", "file-format"),
            what,
            value,
        )
        files = _string_list(fields.get("files"), f"{what}/files")
        if not files:
            raise _fail(value, f"Missing files in {what}")
        fmt = fields.get("file-format")
        groups[name] = ReportGroup(
            files=files,
            base_directory=_optional_string(fields.get("base-directory"), "base-directory"),
            discard_paths=_flag(fields.get("discard-paths"), "discard-paths"),
            file_format="JUNITXML"
            if fmt is None or _is_null(fmt)
            else _enum(fmt, REPORT_FILE_FORMATS, "file-format"),
        )
    return groups


_ARTIFACT_KEYS = (
    "files",
    "name",
    "discard-paths",
    "base-directory",
    "exclude-paths",
    "enable-symlinks",
    "s3-prefix",
)


def _parse_artifacts(node: yaml.Node, what: str = "artifacts", nested: bool = False) -> Artifacts:
    allowed = _ARTIFACT_KEYS if nested else (*_ARTIFACT_KEYS, "secondary-artifacts")
    fields = _known_keys(_mapping(node, what), allowed, what, node)
    secondary = {
        identifier: _parse_artifacts(value, f"{what}/secondary-artifacts/{identifier}", True)
        for identifier, value in _mapping(
            fields.get("secondary-artifacts", _null_node()), "secondary-artifacts"
        )
    }
    return Artifacts(
        files=_string_list(fields.get("files"), f"{what}/files"),
        name=_optional_string(fields.get("name"), "name"),
        discard_paths=_flag(fields.get("discard-paths"), "discard-paths"),
        base_directory=_optional_string(fields.get("base-directory"), "base-directory"),
        exclude_paths=_string_list(fields.get("exclude-paths"), f"{what}/exclude-paths"),
        enable_symlinks=_flag(fields.get("enable-symlinks"), "enable-symlinks"),
        s3_prefix=_optional_string(fields.get("s3-prefix"), "s3-prefix"),
        secondary_artifacts=secondary,
    )


def _parse_cache(node: yaml.Node) -> Cache:
    fields = _known_keys(
        _mapping(node, "cache"), ("paths", "key", "fallback-keys", "action"), "cache", node
    )
    return Cache(
        paths=_string_list(fields.get("paths"), "cache/paths"),
        key=_optional_string(fields.get("key"), "cache/key"),
        fallback_keys=_string_list(fields.get("fallback-keys"), "cache/fallback-keys"),
    )


def _null_node() -> yaml.Node:
    return yaml.ScalarNode(_NULL_TAG, "")


# ---------------------------------------------------------------- entry point

_TOP_LEVEL: dict[str, Callable[..., Any] | None] = {
    "version": None,
    "run-as": None,
    "env": _parse_env,
    "proxy": _raw,
    "batch": _raw,
    "phases": None,
    "reports": _parse_reports,
    "artifacts": _parse_artifacts,
    "cache": _parse_cache,
}


def parse_buildspec(
    text: str, available_runtimes: Mapping[str, Sequence[str]] | None = None
) -> Buildspec:
    """Parse buildspec text; raise BuildspecError naming the line of the first problem.

    ``available_runtimes`` (runtime name -> versions of the build image) enables the
    runtime-versions check; without it any runtime and version is accepted.
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        where = f" at line {line}" if line is not None else ""
        raise BuildspecError(f"YAML_FILE_ERROR Message: {exc.problem}{where}", line) from exc
    except yaml.YAMLError as exc:
        raise BuildspecError(f"YAML_FILE_ERROR Message: {exc}") from exc
    if root is None or _is_null(root):
        raise BuildspecError("YAML_FILE_ERROR: the buildspec is empty", 1)
    if not isinstance(root, yaml.MappingNode):
        raise _fail(root, "Expected the buildspec to be a map")
    fields = _known_keys(_mapping(root, "buildspec"), tuple(_TOP_LEVEL), "buildspec", root)

    version_node = fields.get("version")
    if version_node is None:
        raise BuildspecError("YAML_FILE_ERROR: missing version", _line(root))
    version = _string(version_node, "version")
    if version not in VERSIONS:
        raise _fail(version_node, f"Unsupported buildspec version '{version}'")

    phases = {}
    phases_node = fields.get("phases")
    if phases_node is not None:
        for name, node in _mapping(phases_node, "phases"):
            if name not in PHASE_NAMES:
                raise _fail(_key_node(phases_node, name), f"Unknown phase '{name}'")
            phases[name] = _parse_phase(name, node, available_runtimes)

    def section(key: str) -> Any:
        node = fields.get(key)
        parser = _TOP_LEVEL[key]
        if node is None or _is_null(node) or parser is None:
            return None
        return parser(node)

    env = section("env")
    return Buildspec(
        version=version,
        run_as=_optional_string(fields.get("run-as"), "run-as"),
        env=env if env is not None else Env(),
        phases=phases,
        reports=section("reports") or {},
        artifacts=section("artifacts"),
        cache=section("cache"),
        proxy=section("proxy"),
        batch=section("batch"),
    )
