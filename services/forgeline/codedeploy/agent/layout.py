"""Where the agent keeps things under its root directory (the layout AWS's agent uses, so
an operator who knows one knows the other):

    <root>/<deployment group id>/<deployment id>/bundle.tar            the downloaded bundle
    <root>/<deployment group id>/<deployment id>/deployment-archive/   the unpacked revision
    <root>/<deployment group id>/<deployment id>/logs/scripts.log      every script's output
    <root>/deployment-instructions/<group id>_last_successful_install  → a deployment dir
    <root>/deployment-instructions/<group id>_most_recent_install      → a deployment dir
    <root>/deployment-instructions/<group id>-cleanup                  what Install created
    <root>/ongoing-deployment/<host command id>                        the command running now
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from forgeline.codedeploy.agent.spec import DeploymentSpec


class Layout:
    def __init__(self, root: Path) -> None:
        self.root = root

    # -- one deployment ------------------------------------------------------------------
    def deployment_dir(self, spec: DeploymentSpec) -> Path:
        return self.root / spec.deployment_group_id / spec.deployment_id

    def bundle_file(self, spec: DeploymentSpec) -> Path:
        return self.deployment_dir(spec) / "bundle.tar"

    def archive_dir(self, spec: DeploymentSpec) -> Path:
        return archive_of(self.deployment_dir(spec))

    def script_log(self, deployment_dir: Path) -> Path:
        return deployment_dir / "logs" / "scripts.log"

    # -- per deployment group --------------------------------------------------------------
    @property
    def instructions_dir(self) -> Path:
        return self.root / "deployment-instructions"

    def cleanup_file(self, group_id: str) -> Path:
        return self.instructions_dir / f"{group_id}-cleanup"

    def last_successful_install(self, group_id: str) -> Path | None:
        return self._pointer(f"{group_id}_last_successful_install")

    def most_recent_install(self, group_id: str) -> Path | None:
        return self._pointer(f"{group_id}_most_recent_install")

    def record_last_successful_install(self, spec: DeploymentSpec) -> None:
        self._point(f"{spec.deployment_group_id}_last_successful_install", spec)

    def record_most_recent_install(self, spec: DeploymentSpec) -> None:
        self._point(f"{spec.deployment_group_id}_most_recent_install", spec)

    def _pointer(self, name: str) -> Path | None:
        try:
            text = (self.instructions_dir / name).read_text().strip()
        except FileNotFoundError:
            return None
        return Path(text) if text else None

    def _point(self, name: str, spec: DeploymentSpec) -> None:
        write_atomically(self.instructions_dir / name, str(self.deployment_dir(spec)))

    # -- the command in progress -----------------------------------------------------------
    @property
    def ongoing_dir(self) -> Path:
        return self.root / "ongoing-deployment"

    def prune_old_archives(self, spec: DeploymentSpec, keep: int) -> list[Path]:
        """Remove the group's oldest deployment dirs beyond `keep` (the current one and the
        last successful one are never removed); returns what was removed."""
        group_dir = self.root / spec.deployment_group_id
        if not group_dir.is_dir():
            return []
        current = self.deployment_dir(spec)
        protected = {current, self.last_successful_install(spec.deployment_group_id)}
        others = [entry for entry in group_dir.iterdir() if entry.is_dir() and entry != current]
        extra = len(others) - keep + 1
        if extra <= 0:
            return []
        candidates = sorted(
            (entry for entry in others if entry not in protected),
            key=lambda entry: entry.stat().st_mtime,
        )
        removed = candidates[:extra]
        for entry in removed:
            shutil.rmtree(entry, ignore_errors=True)
        return removed


def archive_of(deployment_dir: Path) -> Path:
    return deployment_dir / "deployment-archive"


def write_atomically(path: Path, text: str, mode: int = 0o644) -> None:
    """Written beside the target, then renamed over it: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
