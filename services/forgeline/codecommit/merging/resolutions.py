"""ConflictResolution: a request's explicit resolutions, checked and parsed.

What the request says to write for conflicting files: replace one with a side's version
or new content, delete it, or set its mode. Every entry is checked here (limits, paths
named twice, content only with USE_NEW_CONTENT) before any object is written; whether
each named path is really in conflict is for the merge to say.
"""

from __future__ import annotations

import dataclasses

from forgeline.codecommit.generated import errors, shapes
from forgeline.codecommit.merging.entries import FILE_MODES
from forgeline.codecommit.merging.paths import normalize_path

KEEP_BASE = "KEEP_BASE"
KEEP_SOURCE = "KEEP_SOURCE"
KEEP_DESTINATION = "KEEP_DESTINATION"
USE_NEW_CONTENT = "USE_NEW_CONTENT"
REPLACEMENT_TYPES = (KEEP_BASE, KEEP_SOURCE, KEEP_DESTINATION, USE_NEW_CONTENT)

# CodeCommit's documented quotas.
MAX_FILE_CONTENT_BYTES = 6 * 1024 * 1024
MAX_TOTAL_CONTENT_BYTES = 7 * 1024 * 1024
MAX_CONFLICT_RESOLUTION_ENTRIES = 100


@dataclasses.dataclass(frozen=True)
class Replacement:
    replacement_type: str
    content: bytes | None
    file_mode: int | None


@dataclasses.dataclass
class Resolution:
    replace: dict[str, Replacement] = dataclasses.field(default_factory=dict)
    delete: set[str] = dataclasses.field(default_factory=set)
    modes: dict[str, int] = dataclasses.field(default_factory=dict)

    def paths(self) -> set[str]:
        return set(self.replace) | self.delete | set(self.modes)


def parse_resolution(document: shapes.ConflictResolution | None) -> Resolution:
    resolution = Resolution()
    if not document:
        return resolution
    replace = list(document.get("replaceContents") or [])
    delete = list(document.get("deleteFiles") or [])
    modes = list(document.get("setFileModes") or [])
    if len(replace) + len(delete) + len(modes) > MAX_CONFLICT_RESOLUTION_ENTRIES:
        raise errors.MaximumConflictResolutionEntriesExceededException(
            f"A conflict resolution can have at most {MAX_CONFLICT_RESOLUTION_ENTRIES} entries."
        )

    def duplicate(path: str) -> errors.MultipleConflictResolutionEntriesException:
        return errors.MultipleConflictResolutionEntriesException(
            f"More than one conflict resolution entry names {path!r}."
        )

    total = 0
    for item in replace:
        path = normalize_path(item.get("filePath", ""))
        kind = item.get("replacementType")
        if not kind:
            raise errors.ReplacementTypeRequiredException(
                f"A replacement type is required for {path!r}."
            )
        if kind not in REPLACEMENT_TYPES:
            raise errors.InvalidReplacementTypeException(f"{kind!r} is not a replacement type.")
        content = item.get("content")
        if kind == USE_NEW_CONTENT and content is None:
            raise errors.ReplacementContentRequiredException(
                f"USE_NEW_CONTENT for {path!r} needs replacement content."
            )
        if kind != USE_NEW_CONTENT and content is not None:
            raise errors.InvalidReplacementContentException(
                f"Content can only be given with USE_NEW_CONTENT, not {kind} ({path!r})."
            )
        if content is not None:
            if len(content) > MAX_FILE_CONTENT_BYTES:
                raise errors.FileContentSizeLimitExceededException(
                    f"The replacement content for {path!r} is larger than 6 MB."
                )
            total += len(content)
        if path in resolution.replace:
            raise duplicate(path)
        resolution.replace[path] = Replacement(kind, content, file_mode(item.get("fileMode")))
    if total > MAX_TOTAL_CONTENT_BYTES:
        raise errors.FileContentSizeLimitExceededException(
            "The replacement contents together are larger than 7 MB."
        )
    for entry in delete:
        path = normalize_path(entry.get("filePath", ""))
        if path in resolution.replace or path in resolution.delete:
            raise duplicate(path)
        resolution.delete.add(path)
    for setting in modes:
        path = normalize_path(setting.get("filePath", ""))
        mode = file_mode(setting.get("fileMode"))
        if mode is None:
            raise errors.FileModeRequiredException(f"A file mode is required for {path!r}.")
        replacement = resolution.replace.get(path)
        if (
            path in resolution.modes
            or path in resolution.delete
            or (replacement is not None and replacement.file_mode is not None)
        ):
            raise duplicate(path)
        resolution.modes[path] = mode
    return resolution


def file_mode(name: str | None) -> int | None:
    if name is None:
        return None
    if name not in FILE_MODES:
        raise errors.InvalidFileModeException(f"{name!r} is not a valid file mode.")
    return FILE_MODES[name]
