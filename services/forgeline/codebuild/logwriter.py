"""The live build log: a build's output bytes in, CloudWatch-style log events out.

The build engine opens one writer per build (`open_build_log`) and feeds it the
container's output as it arrives (`write`) plus its own lines (`write_line`, e.g.
`[Container] 2024/01/01 12:00:00.123456 Entering phase BUILD`). A flusher thread stores
the lines in batches, at most one batch per `FLUSH_INTERVAL_SECONDS` (more often once
`FLUSH_LINES` are waiting); a line written after a quiet spell is stored at once, so a printed line is readable through GetLogEvents about a
tenth of a second later. `flush()` waits for what was written so far; `close()` stores
everything still buffered, the unterminated last line included.

Rules, all of them limits on what one build can cost the server:

- One event per line, without its line terminator (`\\n`, or `\\r\\n`). A last line with
  no terminator waits for more output or for `close()`. An event's timestamp is when
  its batch was stored (see `_store` for why), never earlier than the stream's last.
- Output is decoded as UTF-8; bytes that are not UTF-8 become U+FFFD (NUL too, which no
  database text column takes). Writing never raises because of what the build printed.
- Secret values (`mask`) are replaced by `***` in every line before it is stored, also
  when a value arrives split over several writes, and in engine lines too. A value
  spanning lines is masked line by line: each of its lines is masked wherever it
  appears. (A single secret line longer than `MAX_EVENT_BYTES` cannot be kept within
  one event and is only masked where it fits whole.)
- A line longer than `MAX_EVENT_BYTES` (CloudWatch's 256 KiB event limit less its 26
  bytes of per-event overhead) is not cut off: it is stored as consecutive events of at
  most that many bytes each, split between characters. Such a line is split as it
  arrives, without waiting for its end, so memory stays bounded.
- The stored text of one stream is capped at `max_bytes` (setting `build_log_max_bytes`,
  64 MiB by default). The line that would cross the cap and all later output are
  discarded, and one line says so: `[Forgeline] Log truncated: the build printed more
  than N bytes; further output is discarded.` The build itself keeps running. Engine
  lines (`write_line`) may go `ENGINE_ALLOWANCE_BYTES` beyond the cap, so the phase
  changes and the build's outcome still appear after a truncation.
- At most `MAX_BUFFERED_LINES` lines / `MAX_BUFFERED_BYTES` bytes wait in memory. When
  the store falls that far behind, `write` blocks (the build's output pipe fills and the
  build slows down) for up to `BACKPRESSURE_TIMEOUT_SECONDS`; lines that still find no
  room are dropped, counted, and a line reporting the count is stored once the writer
  catches up.
"""

from __future__ import annotations

import collections
import dataclasses
import io
import logging
import re
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from types import TracebackType

from sqlalchemy.exc import SQLAlchemyError

from forgeline.core.blobstore import BlobInfo, BlobStore
from forgeline.core.db import session_scope
from forgeline.core.settings import Settings
from forgeline.logs import store as logstore

log = logging.getLogger("forgeline.build.logs")

MASK = "***"
MAX_EVENT_BYTES = logstore.MAX_EVENT_BYTES
FLUSH_INTERVAL_SECONDS = 0.1
FLUSH_LINES = 1000
MAX_BUFFERED_LINES = 20_000
MAX_BUFFERED_BYTES = 16 * 1024 * 1024
BACKPRESSURE_TIMEOUT_SECONDS = 10.0
ENGINE_ALLOWANCE_BYTES = 1024 * 1024
TAIL_LINES = 200
# How long close() keeps retrying a store that fails before giving up on the rest.
CLOSE_RETRY_SECONDS = 30.0


def truncation_notice(max_bytes: int) -> str:
    return (
        f"[Forgeline] Log truncated: the build printed more than {max_bytes} bytes; "
        "further output is discarded."
    )


def dropped_notice(count: int) -> str:
    return (
        f"[Forgeline] {count} lines of output were dropped: the log store did not keep up "
        "with the build."
    )


# -- bytes to masked lines (pure) ------------------------------------------------------------
def _secret_pieces(mask: Iterable[str]) -> list[bytes]:
    """The byte strings to hide: each line of each secret, longest first."""
    pieces = {
        line.rstrip("\r").encode("utf-8")
        for secret in mask
        if secret
        for line in secret.split("\n")
    }
    pieces.discard(b"")
    return sorted(pieces, key=lambda piece: (-len(piece), piece))


def _is_continuation_byte(value: int) -> bool:
    return value & 0xC0 == 0x80


def split_text(text: str, limit: int = MAX_EVENT_BYTES) -> list[str]:
    """`text` as consecutive pieces of at most `limit` UTF-8 bytes, cut between characters."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return [text]
    pieces = []
    start = 0
    while start < len(data):
        end = min(start + limit, len(data))
        while end < len(data) and _is_continuation_byte(data[end]):
            end -= 1
        pieces.append(data[start:end].decode("utf-8"))
        start = end
    return pieces


class LineSplitter:
    """Turns a byte stream into masked, decoded, size-limited lines. Not thread-safe."""

    def __init__(self, mask: Iterable[str] = (), max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        self._pieces = _secret_pieces(mask)
        self._secrets: re.Pattern[bytes] | None = None
        self._longest_secret = 0
        self._compile()
        self._max = max_event_bytes
        self._partial = bytearray()

    def add_mask(self, mask: Iterable[str]) -> None:
        """Also hide these values from now on (the unfinished line included)."""
        pieces = set(self._pieces) | set(_secret_pieces(mask))
        self._pieces = sorted(pieces, key=lambda piece: (-len(piece), piece))
        self._compile()

    def _compile(self) -> None:
        # One pass, longest alternative first: a masked value is never matched again.
        pieces = self._pieces
        self._secrets = re.compile(b"|".join(re.escape(p) for p in pieces)) if pieces else None
        self._longest_secret = len(pieces[0]) if pieces else 0

    def feed(self, chunk: bytes) -> list[str]:
        """The lines completed by `chunk` (and pieces of an overlong unfinished line)."""
        self._partial += chunk
        lines: list[str] = []
        if b"\n" in chunk:
            *complete, rest = bytes(self._partial).split(b"\n")
            self._partial = bytearray(rest)
            for raw in complete:
                lines.extend(self._finish_line(raw))
        # Keep enough of an overlong line back that a secret starting before the cut is
        # wholly in view when the cut is chosen.
        while len(self._partial) > self._max + self._longest_secret:
            cut = self._safe_cut(bytes(self._partial), self._max)
            head = bytes(self._partial[:cut])
            del self._partial[:cut]
            lines.extend(split_text(self._decode(self._mask(head)), self._max))
        return lines

    def finish(self) -> list[str]:
        """The unterminated last line, if any."""
        if not self._partial:
            return []
        raw = bytes(self._partial)
        self._partial.clear()
        return self._finish_line(raw)

    @property
    def pending_bytes(self) -> int:
        return len(self._partial)

    def _finish_line(self, raw: bytes) -> list[str]:
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        return split_text(self._decode(self._mask(raw)), self._max)

    def _mask(self, raw: bytes) -> bytes:
        if self._secrets is None:
            return raw
        return self._secrets.sub(MASK.encode(), raw)

    @staticmethod
    def _decode(raw: bytes) -> str:
        return raw.decode("utf-8", errors="replace").replace("\x00", "\ufffd")

    def _safe_cut(self, data: bytes, cut: int) -> int:
        """A cut at or before `cut` that splits neither a character nor a secret."""
        while True:
            start = cut
            while cut > 0 and _is_continuation_byte(data[cut]):
                cut -= 1
            if self._secrets is not None:
                for match in self._secrets.finditer(data, 0, cut + self._longest_secret):
                    if match.start() < cut < match.end():
                        cut = match.start()
                        break
            if cut == start:
                break
        # Only a secret longer than a whole event can push the cut to the start; it
        # cannot be kept in one event, so cut where the size limit says.
        return cut if cut > 0 else self._max


# -- the writer ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class LogTarget:
    database_url: str
    group_id: int
    stream_id: int
    group_name: str
    stream_name: str


class BuildLogWriter:
    """A thread-safe, bounded, batching writer of one log stream (see the module doc)."""

    def __init__(
        self,
        target: LogTarget,
        *,
        mask: Sequence[str] = (),
        max_bytes: int = 64 * 1024 * 1024,
        flush_interval: float = FLUSH_INTERVAL_SECONDS,
        flush_lines: int = FLUSH_LINES,
        max_buffered_lines: int = MAX_BUFFERED_LINES,
        max_buffered_bytes: int = MAX_BUFFERED_BYTES,
        backpressure_timeout: float = BACKPRESSURE_TIMEOUT_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.target = target
        self.max_bytes = max_bytes
        self._flush_interval = flush_interval
        self._flush_lines = flush_lines
        self._max_buffered_lines = max_buffered_lines
        self._max_buffered_bytes = max_buffered_bytes
        self._backpressure_timeout = backpressure_timeout
        self._clock = clock
        self._splitter = LineSplitter(mask)
        self._engine_splitter = LineSplitter(mask)
        self._cond = threading.Condition()
        self._pending: list[str] = []
        self._pending_bytes = 0
        self._accepted_bytes = 0
        self._queued = 0  # lines handed to the flusher so far
        self._stored = 0  # of those, lines the flusher is done with (stored or given up)
        self._dropped_unreported = 0
        self.dropped_lines = 0
        self.truncated = False
        self.stream_lost = False
        self._closing = False
        self._tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self._flusher = threading.Thread(
            target=self._run, name=f"log-writer-{target.stream_name}", daemon=True
        )
        self._flusher.start()

    # -- input -----------------------------------------------------------------------
    def write(self, chunk: bytes) -> None:
        """Add build output. Writes after close() are ignored."""
        if not chunk:
            return
        with self._cond:
            if self._closing:
                return
            self._accept(self._splitter.feed(bytes(chunk)), engine=False)

    def write_line(self, text: str) -> None:
        """Add one line of the engine's own (it ends any unterminated build output line)."""
        with self._cond:
            if self._closing:
                return
            self._accept(self._splitter.finish(), engine=False)
            data = text.replace("\r\n", "\n").encode("utf-8", errors="replace")
            self._accept(self._engine_splitter.feed(data + b"\n"), engine=True)

    def add_mask(self, values: Sequence[str]) -> None:
        """Also mask these secret values in every line not yet completed (secrets the
        engine learns after the log opened, e.g. resolved parameter-store variables)."""
        with self._cond:
            self._splitter.add_mask(values)
            self._engine_splitter.add_mask(values)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every complete line written so far is stored; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            target = self._queued
            self._cond.notify_all()
            while self._stored < target and self._flusher.is_alive():
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return self._stored >= target

    def close(self) -> None:
        """Store the unterminated last line and everything buffered; stop the flusher."""
        with self._cond:
            if not self._closing:
                self._accept(self._splitter.finish(), engine=False)
                if self._dropped_unreported:
                    notice = dropped_notice(self._dropped_unreported)
                    self._dropped_unreported = 0
                    self._queue(notice, len(notice.encode("utf-8")))
                self._closing = True
                self._cond.notify_all()
        self._flusher.join(CLOSE_RETRY_SECONDS + 10)

    def __enter__(self) -> BuildLogWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- output ----------------------------------------------------------------------
    def text_tail(self, count: int) -> list[str]:
        """The last `count` (at most TAIL_LINES) lines accepted for storage, masked."""
        with self._cond:
            lines = list(self._tail)
        return lines[-count:] if count > 0 else []

    @property
    def stored_bytes(self) -> int:
        """Bytes of text accepted for storage (what the cap counts)."""
        return self._accepted_bytes

    def export_to_blob(self, store: BlobStore, key: str, *, compress: bool = False) -> BlobInfo:
        """Copy the whole stored log to the blob store (the S3 logs option), one line per
        event; gzip-compressed with `compress`. Call after close()."""
        return export_stream_to_blob(
            store, key, self.target.stream_id, self.target.database_url, compress=compress
        )

    # -- internals -------------------------------------------------------------------
    def _accept(self, lines: list[str], *, engine: bool) -> None:
        """Queue lines for the flusher, applying the size cap and back-pressure. Holds
        the lock (released while waiting for room)."""
        for line in lines:
            size = len(line.encode("utf-8"))
            if engine:
                if self._accepted_bytes + size > self.max_bytes + ENGINE_ALLOWANCE_BYTES:
                    continue
            elif self.truncated:
                continue
            elif self._accepted_bytes + size > self.max_bytes:
                self.truncated = True
                line = truncation_notice(self.max_bytes)
                size = len(line.encode("utf-8"))
            if not self._wait_for_room(size):
                self.dropped_lines += 1
                self._dropped_unreported += 1
                continue
            if self._dropped_unreported:
                notice = dropped_notice(self._dropped_unreported)
                self._dropped_unreported = 0
                self._queue(notice, len(notice.encode("utf-8")))
            self._queue(line, size)

    def _queue(self, line: str, size: int) -> None:
        self._pending.append(line)
        self._pending_bytes += size
        self._accepted_bytes += size
        self._queued += 1
        self._tail.append(line)
        if len(self._pending) == 1 or len(self._pending) >= self._flush_lines:
            self._cond.notify_all()

    def _has_room(self, size: int) -> bool:
        return (
            len(self._pending) < self._max_buffered_lines
            and self._pending_bytes + size <= self._max_buffered_bytes
        ) or not self._pending

    def _wait_for_room(self, size: int) -> bool:
        if self._has_room(size):
            return True
        # Already dropping: the store is stalled, so do not stall the build once per line.
        if self._dropped_unreported or self.stream_lost or not self._flusher.is_alive():
            return False
        deadline = time.monotonic() + self._backpressure_timeout
        while not self._has_room(size):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._cond.wait(remaining)
        return True

    def _run(self) -> None:
        last_flush = 0.0
        while True:
            with self._cond:
                while not self._pending and not self._closing:
                    self._cond.wait()
                # Batch: at most one store per interval unless many lines wait.
                while not self._closing and len(self._pending) < self._flush_lines:
                    remaining = last_flush + self._flush_interval - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                batch = self._pending
                self._pending = []
                self._pending_bytes = 0
                closing = self._closing
                self._cond.notify_all()  # writers waiting for room
            last_flush = time.monotonic()
            if batch:
                self._store(batch, closing)
            with self._cond:
                self._stored += len(batch)
                self._cond.notify_all()
                if self._closing and not self._pending:
                    return

    def _store(self, batch: list[str], closing: bool) -> None:
        if self.stream_lost:
            return
        delay = 0.05
        give_up_at: float | None = None
        while True:
            # A line's timestamp is when it is stored (a tenth of a second after it was
            # printed, at most, unless the store stalls), not when it was queued: taken
            # under the group's lock, it makes the lines of concurrent builds commit in
            # timestamp order (logstore.take_group_timestamp), which readers polling by
            # time rely on. It never goes backwards (the wall clock may), so time order
            # and write order agree.
            try:
                with session_scope(self.target.database_url) as session:
                    timestamp = logstore.take_group_timestamp(
                        session, self.target.group_id, int(self._clock() * 1000)
                    )
                    first = (
                        None
                        if timestamp is None
                        else logstore.append_events(
                            session,
                            self.target.stream_id,
                            [(timestamp, line) for line in batch],
                            timestamp,
                        )
                    )
                if first is None:
                    self.stream_lost = True
                    log.warning(
                        "log stream %s/%s was deleted; discarding the rest of its output",
                        self.target.group_name,
                        self.target.stream_name,
                    )
                return
            except SQLAlchemyError:
                log.warning(
                    "storing %d lines of log stream %s/%s failed; retrying",
                    len(batch),
                    self.target.group_name,
                    self.target.stream_name,
                    exc_info=True,
                )
            except Exception:
                # Not the database being away: retrying would fail the same way. Lose
                # this batch, keep the flusher (and the build) going.
                log.exception(
                    "dropping %d lines of log stream %s/%s",
                    len(batch),
                    self.target.group_name,
                    self.target.stream_name,
                )
                return
            with self._cond:
                closing = closing or self._closing
            if closing:
                now = time.monotonic()
                give_up_at = give_up_at or now + CLOSE_RETRY_SECONDS
                if now >= give_up_at:
                    log.error(
                        "giving up on %d lines of log stream %s/%s",
                        len(batch),
                        self.target.group_name,
                        self.target.stream_name,
                    )
                    return
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


def open_build_log(
    settings: Settings,
    account_id: str,
    region: str,
    group: str,
    stream: str,
    *,
    mask: Sequence[str] = (),
) -> BuildLogWriter:
    """A running writer appending to log stream `stream` of group `group`; both are
    created if missing (an existing stream is appended to)."""
    database_url = settings.resolved_database_url
    with session_scope(database_url) as session:
        log_group = logstore.ensure_group(session, account_id, region, group)
        log_stream = logstore.ensure_stream(session, log_group, stream)
        target = LogTarget(database_url, log_group.id, log_stream.id, group, stream)
    return BuildLogWriter(
        target,
        mask=mask,
        max_bytes=settings.build_log_max_bytes,
    )


# -- export ----------------------------------------------------------------------------------
class _ChunkReader(io.RawIOBase):
    """A read-once file over an iterator of byte chunks (for streaming blob uploads)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        super().__init__()
        self._chunks = chunks
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(buffer), len(self._buffer))
        buffer[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size


def _log_chunks(stream_id: int, database_url: str, compress: bool) -> Iterator[bytes]:
    compressor = zlib.compressobj(wbits=31) if compress else None  # 31: gzip framing
    batch: list[bytes] = []
    batch_size = 0
    for message in logstore.iter_messages(stream_id, database_url=database_url):
        line = message.encode("utf-8") + b"\n"
        batch.append(line)
        batch_size += len(line)
        if batch_size >= 1024 * 1024:
            data = b"".join(batch)
            batch, batch_size = [], 0
            yield compressor.compress(data) if compressor else data
    data = b"".join(batch)
    if compressor:
        yield compressor.compress(data) + compressor.flush()
    elif data:
        yield data


def export_stream_to_blob(
    store: BlobStore, key: str, stream_id: int, database_url: str, *, compress: bool = False
) -> BlobInfo:
    """Stream a stored log into the blob store under `key` without holding it in memory."""
    reader = io.BufferedReader(_ChunkReader(_log_chunks(stream_id, database_url, compress)))
    return store.put(key, reader)
