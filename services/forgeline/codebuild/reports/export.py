"""Export a report's raw files to the report group's S3 destination (blob store).

AWS documents the destination (bucket, path prefix, packaging NONE|ZIP) but not the key
layout under it. Forgeline writes `<path>/<report group>/<report id>/<file>` for NONE
and `<path>/<report group>/<report id>.zip` for ZIP, so every report's files stay apart.
Encryption settings are accepted and stored; the blob store's own at-rest protection
applies.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from forgeline.codebuild.s3locations import blob_key
from forgeline.core.blobstore.base import BlobStore


def export_raw_files(
    store: BlobStore,
    export_config: Mapping[str, Any],
    group_name: str,
    report_id: str,
    raw_files: Sequence[tuple[str, Path]],
) -> list[str]:
    """Write the files (relative name, path) if the group exports to S3; return the
    blob keys written."""
    if export_config.get("exportConfigType") != "S3" or not raw_files:
        return []
    destination = export_config.get("s3Destination") or {}
    bucket = destination.get("bucket")
    if not bucket:
        return []
    prefix = "/".join(
        part for part in (str(destination.get("path") or "").strip("/"), group_name) if part
    )
    if destination.get("packaging") == "ZIP":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, path in raw_files:
                archive.write(path, name)
        key = blob_key(bucket, f"{prefix}/{report_id}.zip")
        store.put(key, buffer.getvalue())
        return [key]
    keys = []
    for name, path in raw_files:
        key = blob_key(bucket, f"{prefix}/{report_id}/{name}")
        with path.open("rb") as stream:
            store.put(key, stream)
        keys.append(key)
    return keys
