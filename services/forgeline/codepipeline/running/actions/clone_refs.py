"""CODEBUILD_CLONE_REF artifacts: a CodeCommit source's output that names a commit
instead of holding its files, so a CodeBuild action clones the repository (with its git
history) at that commit, as AWS's full-clone option does."""

from __future__ import annotations

import json
from dataclasses import dataclass

FORMAT = "CODEBUILD_CLONE_REF"
CONTENT_TYPE = "application/vnd.forgeline.clone-ref+json"
_MARK = "forgeline-clone-ref"


@dataclass(frozen=True)
class CloneRef:
    repository: str
    branch: str
    commit_id: str

    def to_bytes(self) -> bytes:
        return json.dumps(
            {_MARK: 1, "repository": self.repository, "branch": self.branch,
             "commitId": self.commit_id}
        ).encode()  # fmt: skip

    @classmethod
    def parse(cls, data: bytes) -> CloneRef | None:
        """The reference an artifact holds, or None for an ordinary (zip) artifact."""
        if not data.startswith(b"{"):
            return None
        try:
            document = json.loads(data)
        except ValueError:
            return None
        if not isinstance(document, dict) or document.get(_MARK) != 1:
            return None
        return cls(document["repository"], document["branch"], document["commitId"])
