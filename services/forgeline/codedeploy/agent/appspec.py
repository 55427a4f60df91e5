"""appspec.yml for EC2/on-premises deployments, parsed and checked (pure: text in, AppSpec out).

What each section means follows AWS's agent: `files` copy a bundle path (file or
directory) into a destination directory; `permissions` apply to what the deployment
installs under `object`; `hooks` map a lifecycle event to scripts in the bundle. `acls`
and `context` (SELinux) are accepted and ignored. A `mode` is read the way YAML gives it,
as AWS's agent reads it: write `mode: 644` (a YAML `0644` is the octal number 420).
"""

from __future__ import annotations

import dataclasses
import posixpath
from typing import Any

import yaml

FILE_EXISTS_BEHAVIORS = ("DISALLOW", "OVERWRITE", "RETAIN")
PERMISSION_TYPES = ("file", "directory")
# An event's scripts may take an hour in all (AWS's limit): their own timeouts may not add
# up to more, and a script without one gets what is left of the hour.
MAX_EVENT_TIMEOUT = 3600


class AppSpecError(ValueError):
    """The appspec cannot be used; the message says where and why."""


@dataclasses.dataclass(frozen=True)
class FileMapping:
    source: str  # relative to the bundle's root; "" is the whole bundle
    destination: str  # an absolute directory on this host


@dataclasses.dataclass(frozen=True)
class Permission:
    object: str
    pattern: str = "**"
    except_: tuple[str, ...] = ()
    types: tuple[str, ...] = PERMISSION_TYPES
    owner: str | None = None
    group: str | None = None
    mode: int | None = None  # the permission bits, setuid/setgid/sticky included


@dataclasses.dataclass(frozen=True)
class HookScript:
    location: str  # relative to the bundle's root
    timeout: int | None = None  # seconds; None: what is left of the event's hour
    runas: str | None = None


@dataclasses.dataclass(frozen=True)
class AppSpec:
    os: str
    files: tuple[FileMapping, ...] = ()
    permissions: tuple[Permission, ...] = ()
    hooks: dict[str, tuple[HookScript, ...]] = dataclasses.field(default_factory=dict)
    file_exists_behavior: str | None = None

    def scripts_for(self, event: str) -> tuple[HookScript, ...]:
        return self.hooks.get(event, ())


def parse_appspec(text: str | bytes) -> AppSpec:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise AppSpecError(f"the appspec is not valid YAML: {_one_line(exc)}") from None
    if not isinstance(document, dict):
        raise AppSpecError("the appspec must be a mapping with version, os, files and hooks")
    _check_version(document.get("version"))
    os_name = _check_os(document.get("os"))
    return AppSpec(
        os=os_name,
        files=tuple(_parse_files(document.get("files"))),
        permissions=tuple(_parse_permissions(document.get("permissions"))),
        hooks=_parse_hooks(document.get("hooks")),
        file_exists_behavior=_parse_file_exists_behavior(document.get("file_exists_behavior")),
    )


def parse_file_exists_behavior(value: object, where: str) -> str:
    """DISALLOW, OVERWRITE or RETAIN, any case; the deployment's override uses this too."""
    if not isinstance(value, str) or value.upper() not in FILE_EXISTS_BEHAVIORS:
        raise AppSpecError(
            f"{where} must be one of {', '.join(FILE_EXISTS_BEHAVIORS)}, not {value!r}"
        )
    return value.upper()


def parse_mode(value: object) -> int:
    """AWS's mode rules: one to four octal digits (a fourth is setuid/setgid/sticky)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise AppSpecError(f"permissions mode must be octal digits such as 644, not {value!r}")
    text = str(value).strip().zfill(3)
    if len(text) > 4:
        raise AppSpecError(f"permissions mode {value!r} is longer than four digits")
    if any(char not in "01234567" for char in text):
        raise AppSpecError(f"permissions mode {value!r} has a digit that is not octal (0-7)")
    return int(text, 8)


# --- sections ------------------------------------------------------------------------------


def _check_version(version: object) -> None:
    if version == "0.0" or (
        isinstance(version, int | float) and not isinstance(version, bool) and version == 0
    ):
        return
    raise AppSpecError(f"the appspec version must be 0.0, not {version!r}")


def _check_os(os_name: object) -> str:
    if os_name == "linux":
        return os_name
    if os_name == "windows":
        raise AppSpecError("the appspec is for windows; this agent deploys to linux hosts")
    raise AppSpecError(f"the appspec os must be linux, not {os_name!r}")


def _parse_file_exists_behavior(value: object) -> str | None:
    if value is None:
        return None
    try:
        return parse_file_exists_behavior(value, "file_exists_behavior")
    except AppSpecError as exc:
        raise AppSpecError(f"the appspec's {exc}") from None


def _parse_files(section: object) -> list[FileMapping]:
    entries = _list_of_mappings(section, "files")
    files = []
    for index, entry in enumerate(entries):
        where = f"files[{index}]"
        source = entry.get("source")
        destination = entry.get("destination")
        if source is None:
            raise AppSpecError(f"{where} has a destination but no source")
        if destination is None:
            raise AppSpecError(f"{where} (source {source!r}) has no destination")
        destination = _text(destination, f"{where}.destination")
        if not destination.startswith("/"):
            raise AppSpecError(
                f"{where}.destination must be an absolute directory, not {destination!r}"
            )
        files.append(
            FileMapping(
                source=bundle_path(_text(source, f"{where}.source"), f"{where}.source"),
                destination=posixpath.normpath(destination),
            )
        )
    return files


def _parse_permissions(section: object) -> list[Permission]:
    entries = _list_of_mappings(section, "permissions")
    permissions = []
    for index, entry in enumerate(entries):
        where = f"permissions[{index}]"
        obj = entry.get("object")
        if obj is None or not str(obj).strip():
            raise AppSpecError(f"{where} has no object")
        obj = _text(obj, f"{where}.object").strip()
        if not obj.startswith("/"):
            raise AppSpecError(f"{where}.object must be an absolute path, not {obj!r}")
        pattern = entry.get("pattern")
        permissions.append(
            Permission(
                object=posixpath.normpath(obj),
                pattern="**" if pattern is None else _text(pattern, f"{where}.pattern"),
                except_=tuple(_texts(entry.get("except"), f"{where}.except")),
                types=_permission_types(entry.get("type"), f"{where}.type"),
                owner=_optional_name(entry.get("owner"), f"{where}.owner"),
                group=_optional_name(entry.get("group"), f"{where}.group"),
                mode=None if entry.get("mode") is None else parse_mode(entry["mode"]),
            )
        )
    return permissions


def _permission_types(value: object, where: str) -> tuple[str, ...]:
    if value is None:
        return PERMISSION_TYPES
    types = _texts(value, where)
    for name in types:
        if name not in PERMISSION_TYPES:
            raise AppSpecError(f"{where} may name file and directory, not {name!r}")
    if not types:
        raise AppSpecError(f"{where} is empty: name file, directory or both")
    return tuple(types)


def _parse_hooks(section: object) -> dict[str, tuple[HookScript, ...]]:
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise AppSpecError("hooks must map lifecycle event names to lists of scripts")
    hooks: dict[str, tuple[HookScript, ...]] = {}
    for event, scripts in section.items():
        if not isinstance(event, str):
            raise AppSpecError(f"hooks has an event name that is not text: {event!r}")
        parsed = tuple(
            _parse_script(entry, f"hooks.{event}[{index}]")
            for index, entry in enumerate(_list_of_mappings(scripts, f"hooks.{event}"))
        )
        # Scripts without a timeout share what is left of the hour when they run.
        total = sum(script.timeout or 0 for script in parsed)
        if total > MAX_EVENT_TIMEOUT:
            raise AppSpecError(
                f"the scripts of {event} have timeouts adding up to {total} seconds; "
                f"an event may take at most {MAX_EVENT_TIMEOUT}"
            )
        hooks[event] = parsed
    return hooks


def _parse_script(entry: dict[str, Any], where: str) -> HookScript:
    location = entry.get("location")
    if location is None or not str(location).strip():
        raise AppSpecError(f"{where} has no location")
    return HookScript(
        location=bundle_path(_text(location, f"{where}.location").strip(), f"{where}.location"),
        timeout=_timeout(entry.get("timeout"), f"{where}.timeout"),
        runas=_optional_name(entry.get("runas"), f"{where}.runas"),
    )


def _timeout(value: object, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise AppSpecError(f"{where} must be a number of seconds, not {value!r}")
    try:
        seconds = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise AppSpecError(f"{where} must be a number of seconds, not {value!r}") from None
    if seconds <= 0:
        raise AppSpecError(f"{where} must be more than 0 seconds, not {value!r}")
    return seconds


# --- helpers -------------------------------------------------------------------------------


def bundle_path(path: str, where: str) -> str:
    """A path inside the bundle, normalized and relative ("" for the root). A leading "/"
    means the bundle's root, as it does for AWS's agent; ".." may not leave the bundle."""
    parts: list[str] = []
    for part in path.strip().split("/"):
        if part in ("", "."):
            continue
        if part != "..":
            parts.append(part)
        elif parts:
            parts.pop()
        else:
            raise AppSpecError(f"{where} {path!r} points outside the bundle")
    return "/".join(parts)


def _list_of_mappings(section: object, where: str) -> list[dict[str, Any]]:
    if section is None:
        return []
    if not isinstance(section, list):
        raise AppSpecError(f"{where} must be a list")
    for index, entry in enumerate(section):
        if not isinstance(entry, dict):
            raise AppSpecError(f"{where}[{index}] must be a mapping, not {entry!r}")
    return section


def _text(value: object, where: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise AppSpecError(f"{where} must be text, not {value!r}")


def _texts(value: object, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise AppSpecError(f"{where} must be a list, not {value!r}")
    return [_text(item, f"{where}[{index}]") for index, item in enumerate(value)]


def _optional_name(value: object, where: str) -> str | None:
    if value is None:
        return None
    name = _text(value, where).strip()
    return name or None


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())
