"""The Install step: the previous revision's files out, this revision's files in, then the
appspec's permissions on what was installed.

As AWS's agent does, it keeps a per-deployment-group record of every file and directory
it created (`<root>/deployment-instructions/<group id>-cleanup`); the next Install of that
group removes exactly those (directories only when empty) before copying anything. Every
conflict is found while planning, before the first file is written: a destination that
already holds a file outside the previous revision fails under DISALLOW, is replaced under
OVERWRITE and kept under RETAIN.
"""

from __future__ import annotations

import dataclasses
import grp
import json
import os
import pwd
import re
import shutil
import uuid
from pathlib import Path

from forgeline.codedeploy.agent.appspec import AppSpec, Permission


class InstallError(Exception):
    """Install cannot go on; the message names the path and the reason."""


@dataclasses.dataclass
class InstallPlan:
    copies: dict[Path, Path] = dataclasses.field(default_factory=dict)  # destination → source
    directories: dict[Path, None] = dataclasses.field(default_factory=dict)  # ordered set
    steps: list[tuple[str, Path]] = dataclasses.field(default_factory=list)  # in order
    permissions: dict[Path, Permission] = dataclasses.field(default_factory=dict)


def install(
    archive_dir: Path,
    appspec: AppSpec,
    file_exists_behavior: str,
    record: Path,
    destination_root: Path | None = None,
) -> InstallPlan:
    """Run Install for one deployment group; `record` is the group's cleanup file."""
    remove_previous_revision(record)
    plan = plan_install(archive_dir, appspec, file_exists_behavior, destination_root)
    execute(plan, record)
    return plan


# --- the previous revision -----------------------------------------------------------------


def remove_previous_revision(record: Path) -> list[Path]:
    """Delete what the group's last Install created, newest first; returns what went."""
    try:
        lines = record.read_text(encoding="utf-8").splitlines(keepends=True)
    except FileNotFoundError:
        return []
    if lines and not lines[-1].endswith("\n"):
        lines.pop()  # cut off mid-write by a crash: that path was never created
    removed = []
    for line in reversed(lines):
        path = Path(json.loads(line))
        try:
            if path.is_symlink() or path.is_file():
                path.unlink()
            elif path.is_dir():
                path.rmdir()  # only an empty one: what someone else put there stays
            else:
                continue
        except OSError:
            continue
        removed.append(path)
    record.unlink()
    return removed


# --- planning ------------------------------------------------------------------------------


def plan_install(
    archive_dir: Path,
    appspec: AppSpec,
    file_exists_behavior: str,
    destination_root: Path | None = None,
) -> InstallPlan:
    plan = InstallPlan()
    for mapping in appspec.files:
        source = archive_dir / mapping.source if mapping.source else archive_dir
        destination = rooted(mapping.destination, destination_root)
        if not source.exists():
            raise InstallError(
                f"the appspec's files section names {mapping.source or '/'}, "
                "which is not in the bundle"
            )
        if source.is_dir():
            _make_missing_ancestors(plan, destination)
            _plan_directory(plan, source, destination, file_exists_behavior)
        else:
            target = destination / source.name
            _make_missing_ancestors(plan, target)
            _plan_file(plan, source, target, file_exists_behavior)
    for permission in appspec.permissions:
        _plan_permission(plan, permission, destination_root)
    return plan


def rooted(path: str, destination_root: Path | None) -> Path:
    """An appspec path (absolute), under the agent's destination root when it has one."""
    if destination_root is None:
        return Path(path)
    return destination_root / Path(path).relative_to("/")


def _plan_directory(plan: InstallPlan, source: Path, destination: Path, behavior: str) -> None:
    if not destination.is_dir():
        _plan_mkdir(plan, destination)
    for entry in sorted(source.iterdir()):
        target = destination / entry.name
        if entry.is_dir():
            _plan_directory(plan, entry, target, behavior)
        else:
            _plan_file(plan, entry, target, behavior)


def _plan_file(plan: InstallPlan, source: Path, target: Path, behavior: str) -> None:
    if target in plan.copies:
        raise InstallError(
            f"the appspec installs both {plan.copies[target]} and {source} at {target}"
        )
    if target in plan.directories:
        raise InstallError(
            f"the appspec installs the file {source} where it makes the directory {target}"
        )
    if os.path.lexists(target):
        if target.is_dir() and not target.is_symlink():
            raise InstallError(
                f"a directory is at {target}, where the bundle has the file {source}"
            )
        if behavior == "DISALLOW":
            raise InstallError(
                f"The deployment failed because a specified file already exists at this "
                f"location: {target} (the deployment's file exists behavior is DISALLOW)"
            )
        if behavior == "RETAIN":
            return
    plan.copies[target] = source
    plan.steps.append(("copy", target))


def _plan_mkdir(plan: InstallPlan, directory: Path) -> None:
    if directory in plan.copies:
        raise InstallError(f"the appspec makes the directory {directory} where it installs a file")
    if os.path.lexists(directory) and not directory.is_dir():
        raise InstallError(f"a file is at {directory}, where the bundle has a directory")
    if directory not in plan.directories:
        plan.directories[directory] = None
        plan.steps.append(("mkdir", directory))


def _make_missing_ancestors(plan: InstallPlan, path: Path) -> None:
    missing = []
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        missing.append(parent)
        parent = parent.parent
    for directory in reversed(missing):
        _plan_mkdir(plan, directory)


def _plan_permission(
    plan: InstallPlan, permission: Permission, destination_root: Path | None
) -> None:
    obj = rooted(permission.object, destination_root)
    if obj in plan.copies:
        if "file" not in permission.types:
            return
        if permission.pattern != "**" or permission.except_:
            raise InstallError(
                f"the permissions for {obj}, a file, may not have a pattern or except list"
            )
        _set_permission(plan, obj, permission)
    elif obj in plan.directories or obj.is_dir():
        for target in _matches(plan, permission, obj):
            _set_permission(plan, target, permission)


def _matches(plan: InstallPlan, permission: Permission, base: Path) -> list[Path]:
    """What this deployment installs under the object (`base`) that the pattern takes and
    except leaves (AWS's rules: `**` is everything below; any other pattern, and every
    except, is a `*` glob on the names directly inside the object)."""
    candidates: list[Path] = []
    if "file" in permission.types:
        candidates += list(plan.copies)
    if "directory" in permission.types:
        candidates += list(plan.directories)
    found = []
    for path in candidates:
        if base not in path.parents:
            continue
        relative = path.relative_to(base).as_posix()
        taken = permission.pattern == "**" or _glob_matches(permission.pattern, relative)
        if taken and not any(_glob_matches(item, relative) for item in permission.except_):
            found.append(path)
    return found


def _glob_matches(pattern: str, relative: str) -> bool:
    if "/" in relative:
        return False
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, relative, re.DOTALL) is not None


def _set_permission(plan: InstallPlan, target: Path, permission: Permission) -> None:
    if target in plan.permissions:
        raise InstallError(f"the appspec sets permissions on {target} more than once")
    plan.permissions[target] = permission


# --- executing -----------------------------------------------------------------------------


def execute(plan: InstallPlan, record: Path) -> None:
    record.parent.mkdir(parents=True, exist_ok=True)
    with open(record, "a", encoding="utf-8") as log:
        for kind, path in plan.steps:
            # Recorded first: a crash between the two leaves a path the cleanup skips.
            log.write(json.dumps(str(path)) + "\n")
            log.flush()
            if kind == "mkdir":
                path.mkdir()
            else:
                _copy_file(plan.copies[path], path)
    for target, permission in plan.permissions.items():
        _apply_permission(target, permission)


def _copy_file(source: Path, target: Path) -> None:
    """Copied beside the target then renamed over it: replacing a file (OVERWRITE) never
    leaves half of it, and never writes through a link that was there."""
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.forgeline")
    try:
        shutil.copy2(source, temporary, follow_symlinks=False)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _apply_permission(target: Path, permission: Permission) -> None:
    if permission.mode is not None:
        os.chmod(target, permission.mode)
    if permission.owner is not None or permission.group is not None:
        uid = -1 if permission.owner is None else _user_id(permission.owner)
        gid = -1 if permission.group is None else _group_id(permission.group)
        os.chown(target, uid, gid)
        if permission.mode is not None:
            os.chmod(target, permission.mode)  # chown clears setuid/setgid bits


def _user_id(name: str) -> int:
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        raise InstallError(
            f"the appspec's permissions name owner {name}, who is not a user here"
        ) from None


def _group_id(name: str) -> int:
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        raise InstallError(
            f"the appspec's permissions name group {name}, which is not a group here"
        ) from None
