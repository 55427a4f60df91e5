"""What an action runs with, and what it answers."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from forgeline.codepipeline.engine.state import ArtifactRef
from forgeline.core.settings import Settings


@dataclass(frozen=True)
class ActionContext:
    session: Session  # the job's transaction, with the execution's row locked
    settings: Settings
    account_id: str
    region: str
    pipeline_name: str
    execution_id: str
    action_execution_id: str
    stage: str
    action: str
    category: str
    owner: str
    provider: str
    version: str
    configuration: Mapping[str, str]  # resolved
    input_artifacts: tuple[ArtifactRef, ...]
    output_artifact_names: tuple[str, ...]
    artifact_bucket: str
    source_revision: Mapping[str, str] | None = None

    def artifact_key(self, artifact: str) -> str:
        """Where a new artifact goes, AWS's way: pipeline/artifact/random, the first two
        shortened to 20 characters."""
        return f"{self.pipeline_name[:20]}/{artifact[:20]}/{secrets.token_hex(4)}"

    @property
    def configuration_dict(self) -> dict[str, Any]:
        return dict(self.configuration)


@dataclass(frozen=True)
class Succeeded:
    output_artifacts: Mapping[str, ArtifactRef] = field(default_factory=dict)
    output_variables: Mapping[str, str] = field(default_factory=dict)
    summary: str | None = None
    external_id: str | None = None
    external_url: str | None = None
    revision: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Failed:
    message: str
    external_id: str | None = None


@dataclass(frozen=True)
class Waiting:
    """The action's outcome comes later; `external_id` is what it waits on (a build id, a
    deployment id, an approval's token)."""

    external_id: str
    summary: str | None = None


Outcome = Succeeded | Failed | Waiting


def split_location(location: str) -> tuple[str, str]:
    """An artifact's location ("bucket/key") as bucket and key."""
    bucket, _, key = location.partition("/")
    return bucket, key
