"""A build's log as the engine writes it: the build's own output plus CodeBuild-style
`[Container] <time> ...` lines for phase changes, to the CloudWatch-compatible log store
(and, when the project asks, a copy in the blob store as its S3 logs)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from forgeline.codebuild import s3locations
from forgeline.codebuild.builds import logs_location
from forgeline.codebuild.generated import shapes
from forgeline.codebuild.logwriter import BuildLogWriter, LineSplitter, open_build_log
from forgeline.codebuild.phases import PhaseRecord
from forgeline.core.blobstore import get_blob_store
from forgeline.core.settings import Settings

logger = logging.getLogger(__name__)


class LogSubject(Protocol):
    account_id: str
    region: str
    uuid: str
    group: str
    log_stream: str
    logs_enabled: bool
    document: dict[str, Any]


def _stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y/%m/%d %H:%M:%S.%f")


LineEcho = Callable[[str], None]


class BuildLog:
    def __init__(
        self, settings: Settings, writer: BuildLogWriter | None, echo: LineEcho | None = None
    ) -> None:
        self.settings = settings
        self.writer = writer
        # `forgeline build-local` also shows each line on the terminal, masked like the log.
        self.echo = echo
        self._echo_lines = LineSplitter() if echo is not None else None

    def write(self, chunk: bytes) -> None:
        if self.writer is not None:
            self.writer.write(chunk)
        if self.echo is not None and self._echo_lines is not None:
            for line in self._echo_lines.feed(chunk):
                self.echo(line)

    def note(self, text: str) -> None:
        line = f"[Container] {_stamp()} {text}"
        if self.writer is not None:
            self.writer.write_line(line)
        if self.echo is not None:
            self._echo_unfinished()
            self.echo(line)

    def entering(self, phase_type: str) -> None:
        self.note(f"Entering phase {phase_type}")

    def phase_complete(self, record: PhaseRecord) -> None:
        self.note(f"Phase complete: {record.phase_type} State: {record.phase_status}")
        for context in record.contexts:
            self.note(
                f"Phase context status code: {context.status_code} Message: {context.message}"
            )

    def mask(self, secrets: Sequence[str]) -> None:
        if self.writer is not None and secrets:
            self.writer.add_mask(secrets)
        if self._echo_lines is not None and secrets:
            self._echo_lines.add_mask(secrets)

    def finish(self, subject: LogSubject) -> shapes.LogsLocation:
        """Flush, copy to S3 logs if asked, and describe the logs in botocore's LogsLocation."""
        logs_config = subject.document.get("logsConfig") or {}
        stream = None if self.writer is None else (subject.group, subject.log_stream)
        output = logs_location(subject.account_id, subject.region, logs_config, stream)
        if self.writer is None:
            return output
        self.writer.flush()
        s3_config = output["s3Logs"]
        if s3_config.get("status") == "ENABLED" and s3_config.get("location"):
            bucket, prefix = s3locations.split_location(s3_config["location"])
            key = f"{prefix.rstrip('/')}/{subject.uuid}.gz".lstrip("/")
            try:
                self.writer.export_to_blob(
                    get_blob_store(self.settings),
                    s3locations.blob_key(bucket, key),
                    compress=True,
                )
                output["s3LogsArn"] = f"arn:aws:s3:::{bucket}/{key}"
            except Exception:
                logger.warning("could not write the S3 logs of %s", subject.uuid, exc_info=True)
        return output

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self._echo_unfinished()

    def _echo_unfinished(self) -> None:
        """Show a last line the build printed without a newline (before an engine line)."""
        if self.echo is not None and self._echo_lines is not None:
            for line in self._echo_lines.finish():
                self.echo(line)


def open_log(settings: Settings, subject: LogSubject, echo: LineEcho | None = None) -> BuildLog:
    s3_config = (subject.document.get("logsConfig") or {}).get("s3Logs") or {}
    # S3 logs are exported from the stored stream, so store it whenever either is on.
    wanted = subject.logs_enabled or s3_config.get("status") == "ENABLED"
    if not wanted:
        return BuildLog(settings, None, echo)
    writer = open_build_log(
        settings, subject.account_id, subject.region, subject.group, subject.log_stream
    )
    return BuildLog(settings, writer, echo)
