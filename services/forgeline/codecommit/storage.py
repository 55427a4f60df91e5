"""Bare git repositories on disk, one directory per repository id.

Keying by id (not name) makes a rename a metadata change only.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from forgeline.core.settings import Settings


def repositories_root(settings: Settings) -> Path:
    return settings.data_dir / "repositories"


def repository_path(settings: Settings, repository_id: str) -> Path:
    return repositories_root(settings) / f"{repository_id}.git"


def create_bare(settings: Settings, repository_id: str) -> Path:
    path = repository_path(settings, repository_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    # An empty --template copies nothing: git's default template is mostly sample hooks
    # (never run: pushes use core.hooksPath), which tripled an empty repository's size.
    subprocess.run(
        ["git", "init", "--quiet", "--bare", "--template=", str(path)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return path


def delete(settings: Settings, repository_id: str) -> None:
    shutil.rmtree(repository_path(settings, repository_id), ignore_errors=True)
