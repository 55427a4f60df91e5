"""The live build log writer: line splitting, masking and limits (pure), then the writer
against a real database of this run's backend (tables created from the models)."""

from __future__ import annotations

import gzip
import random
import statistics
import threading
import time

import pytest
from sqlalchemy import update

from forgeline.codebuild.logwriter import (
    MAX_EVENT_BYTES,
    BuildLogWriter,
    LineSplitter,
    LogTarget,
    split_text,
    truncation_notice,
)
from forgeline.core.blobstore import LocalBlobStore
from forgeline.core.db import get_engine, session_scope
from forgeline.logs import store as logstore
from forgeline.logs.tables import LogEvent, LogGroup, LogStream


def feed_all(splitter: LineSplitter, chunks: list[bytes]) -> list[str]:
    lines = []
    for chunk in chunks:
        lines.extend(splitter.feed(chunk))
    return lines + splitter.finish()


# -- splitting and decoding ------------------------------------------------------------------
def test_lines_complete_across_chunks_and_the_last_waits_for_finish():
    splitter = LineSplitter()
    assert splitter.feed(b"hel") == []
    assert splitter.feed(b"lo\nwor") == ["hello"]
    assert splitter.feed(b"ld\r\n\nlast") == ["world", ""]
    assert splitter.finish() == ["last"]
    assert splitter.finish() == []


def test_invalid_utf8_and_nul_become_replacement_characters():
    lines = feed_all(LineSplitter(), [b"ok \xff\xfe bin\x00ary\n", bytes(range(256))])
    assert lines[0] == "ok \ufffd\ufffd bin\ufffdary"
    assert "\x00" not in "".join(lines)
    assert all(isinstance(line, str) for line in lines)


def test_a_character_split_across_writes_is_decoded_whole():
    data = "naïve 日本\n".encode()
    assert feed_all(LineSplitter(), [data[:3], data[3:9], data[9:]]) == ["naïve 日本"]


# -- masking ---------------------------------------------------------------------------------
def test_secret_is_masked_even_when_it_arrives_one_byte_at_a_time():
    data = b"token=hunter2 and again hunter2\n"
    lines = feed_all(LineSplitter(["hunter2"]), [bytes([b]) for b in data])
    assert lines == ["token=*** and again ***"]


def test_multiline_secret_is_masked_line_by_line():
    key = "-----BEGIN KEY-----\r\nabc123\n-----END KEY-----"
    text = f"{key}\nsome abc123 reuse\n".encode()
    assert feed_all(LineSplitter([key]), [text]) == ["***", "***", "***", "some *** reuse"]


def test_longest_secret_wins_and_masks_are_not_rematched():
    lines = feed_all(LineSplitter(["pass", "password1", "*"]), [b"password1 pass *\n"])
    assert lines == ["*** *** ***"]


def test_empty_secrets_are_ignored():
    assert feed_all(LineSplitter(["", "\n"]), [b"nothing to hide\n"]) == ["nothing to hide"]


def test_added_mask_applies_to_the_unfinished_line():
    splitter = LineSplitter()
    assert splitter.feed(b"first s3cr") == []
    splitter.add_mask(["s3cret"])
    assert feed_all(splitter, [b"et\n", b"s3cret\n"]) == ["first ***", "***"]


def test_output_does_not_depend_on_how_it_was_chunked():
    rng = random.Random(7)
    secrets = ["hunter2", "p@ss w0rd", "ключ"]
    words = ["build", "hunter2", "ключ", "p@ss", "w0rd", "p@ss w0rd", "\n", "\r\n", "é", "x"]
    text = "".join(rng.choice(words) + rng.choice(["", " "]) for _ in range(4000)).encode()
    expected = feed_all(LineSplitter(secrets), [text])
    for _ in range(20):
        cuts = sorted(rng.sample(range(1, len(text)), 300))
        chunks = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
        assert feed_all(LineSplitter(secrets), chunks) == expected
    assert not any(secret in line for line in expected for secret in secrets)


# -- size limits -----------------------------------------------------------------------------
def test_long_line_becomes_events_of_at_most_the_event_limit_cut_between_characters():
    text = "a" + "日本語" * 200_000
    pieces = split_text(text)
    assert "".join(pieces) == text
    assert len(pieces) > 1
    assert all(len(piece.encode()) <= MAX_EVENT_BYTES for piece in pieces)


def test_unterminated_long_line_is_emitted_as_it_arrives():
    splitter = LineSplitter()
    emitted = []
    for _ in range(100):
        emitted.extend(splitter.feed(b"x" * 10_000))
        assert splitter.pending_bytes <= MAX_EVENT_BYTES + 10_000
    emitted.extend(splitter.finish())
    assert "".join(emitted) == "x" * 1_000_000
    assert all(len(piece) <= MAX_EVENT_BYTES for piece in emitted)


def test_secret_across_the_cut_of_an_overlong_line_is_still_masked():
    secret = "s3cret-value"
    for offset in range(len(secret) + 1):
        splitter = LineSplitter([secret], max_event_bytes=100)
        data = b"y" * (100 - offset) + secret.encode() + b"z" * 300
        pieces = feed_all(splitter, [data[i : i + 7] for i in range(0, len(data), 7)])
        assert secret not in "".join(pieces)
        assert "".join(pieces) == "y" * (100 - offset) + "***" + "z" * 300
        assert all(len(piece) <= 100 for piece in pieces)


def test_one_byte_secrets_that_grow_a_line_still_respect_the_event_limit():
    pieces = feed_all(LineSplitter(["a"], max_event_bytes=50), [b"a" * 40 + b"\n"])
    assert "".join(pieces) == "***" * 40
    assert all(len(piece) <= 50 for piece in pieces)


# -- the writer against a database -----------------------------------------------------------
@pytest.fixture
def log_db(database_url):
    tables = [LogGroup.__table__, LogStream.__table__, LogEvent.__table__]
    LogGroup.metadata.create_all(get_engine(database_url), tables=tables)
    return database_url


def make_stream(url: str, name: str = "build-1") -> LogTarget:
    with session_scope(url) as session:
        group = logstore.ensure_group(session, "111111111111", "us-east-1", "/aws/codebuild/p")
        stream = logstore.ensure_stream(session, group, name)
        return LogTarget(url, group.id, stream.id, group.name, stream.name)


def stored(url: str, target: LogTarget) -> list[logstore.StoredEvent]:
    with session_scope(url, readonly=True) as session:
        return logstore.read_stream(
            session,
            target.stream_id,
            after=logstore.START,
            until=logstore.END,
            forward=True,
            limit=1_000_000,
        )


def test_writer_stores_every_line_in_order(log_db):
    target = make_stream(log_db)
    with BuildLogWriter(target, mask=["hunter2"]) as writer:
        writer.write_line("[Container] 2024/01/01 12:00:00.123456 Entering phase BUILD")
        for n in range(2500):
            writer.write(f"line {n} hunter2\n".encode())
        writer.write(b"no newline at the end")
    events = stored(log_db, target)
    messages = [event.message for event in events]
    assert messages[0].endswith("Entering phase BUILD")
    assert messages[1:-1] == [f"line {n} ***" for n in range(2500)]
    assert messages[-1] == "no newline at the end"
    assert [e.timestamp_ms for e in events] == sorted(e.timestamp_ms for e in events)
    assert writer.text_tail(2) == ["line 2499 ***", "no newline at the end"]
    with session_scope(log_db, readonly=True) as session:
        stream = session.get(LogStream, target.stream_id)
        assert stream is not None
        assert stream.first_event_ms == events[0].timestamp_ms
        assert stream.last_event_ms == events[-1].timestamp_ms
        assert stream.stored_bytes == sum(len(m.encode()) for m in messages)
        assert stream.next_sequence == len(events) + 1


def test_writes_from_many_threads_all_arrive_whole(log_db):
    target = make_stream(log_db)
    writer = BuildLogWriter(target)

    def produce(thread: int) -> None:
        for n in range(500):
            writer.write(f"thread {thread} line {n}\n".encode())

    threads = [threading.Thread(target=produce, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writer.close()
    messages = sorted(event.message for event in stored(log_db, target))
    assert messages == sorted(f"thread {t} line {n}" for t in range(4) for n in range(500))


def test_polling_a_group_by_time_misses_no_line_of_concurrent_builds(log_db):
    """What `aws logs tail --follow` relies on: read from the newest timestamp seen,
    skipping events already seen, while several builds of the group write at once."""
    targets = [make_stream(log_db, f"build-{n}") for n in range(3)]
    group_id = targets[0].group_id
    done = threading.Event()
    seen: dict[tuple[int, int], str] = {}

    def poll() -> None:
        start = 0
        while True:
            finished = done.is_set()
            with session_scope(log_db, readonly=True) as session:
                page = logstore.scan_group(
                    session,
                    group_id,
                    names=None,
                    prefix=None,
                    after=logstore.GroupCursor(start, 0, 0),
                    end_ms=None,
                    limit=1_000_000,
                )
            for event, _name in page:
                seen.setdefault((event.stream_id, event.sequence), event.message)
                start = max(start, event.timestamp_ms)
            if finished:
                return
            time.sleep(0.003)

    def build(target: LogTarget) -> None:
        with BuildLogWriter(target, flush_interval=0.01) as writer:
            for n in range(300):
                writer.write(f"{target.stream_name} line {n}\n".encode())
                if n % 10 == 0:
                    time.sleep(0.002)

    poller = threading.Thread(target=poll)
    poller.start()
    builders = [threading.Thread(target=build, args=(target,)) for target in targets]
    for thread in builders:
        thread.start()
    for thread in builders:
        thread.join()
    done.set()
    poller.join()
    expected = {f"build-{b} line {n}" for b in range(3) for n in range(300)}
    assert set(seen.values()) == expected


def test_a_line_is_readable_within_half_a_second(log_db):
    target = make_stream(log_db)
    writer = BuildLogWriter(target)
    latencies = []
    try:
        for n in range(40):
            started = time.monotonic()
            writer.write(f"tick {n}\n".encode())
            while True:
                events = stored(log_db, target)
                if events and events[-1].message == f"tick {n}":
                    break
                assert time.monotonic() - started < 5, "line never became readable"
                time.sleep(0.005)
            latencies.append(time.monotonic() - started)
            time.sleep(random.uniform(0, 0.05))
    finally:
        writer.close()
    p95 = statistics.quantiles(latencies, n=20)[-1]
    print(
        f"write->readable latency: median {statistics.median(latencies) * 1000:.1f} ms, "
        f"p95 {p95 * 1000:.1f} ms"
    )
    assert p95 < 0.5


def test_output_beyond_the_cap_is_replaced_by_one_notice(log_db):
    target = make_stream(log_db)
    with BuildLogWriter(target, max_bytes=1000) as writer:
        for n in range(200):
            writer.write(f"line {n:04d}\n".encode())
        writer.write_line("[Container] Phase complete: BUILD State: SUCCEEDED")
        writer.write(b"more build output\n")
    messages = [event.message for event in stored(log_db, target)]
    notice = truncation_notice(1000)
    assert messages.count(notice) == 1
    before = messages[: messages.index(notice)]
    assert before == [f"line {n:04d}" for n in range(len(before))]
    assert sum(len(m) for m in before) <= 1000
    assert messages[-1] == "[Container] Phase complete: BUILD State: SUCCEEDED"
    assert "more build output" not in messages
    assert writer.truncated


def test_a_stalled_store_applies_backpressure_then_drops_with_a_count(log_db):
    target = make_stream(log_db)
    writer = BuildLogWriter(
        target, max_buffered_lines=5, backpressure_timeout=0.2, flush_interval=0.01
    )
    # Hold a write lock on the stream row: the flusher's store blocks behind it.
    with session_scope(log_db) as session:
        session.execute(
            update(LogStream)
            .where(LogStream.id == target.stream_id)
            .values(stored_bytes=LogStream.stored_bytes)
        )
        started = time.monotonic()
        for n in range(20):
            writer.write(f"line {n}\n".encode())
        blocked_for = time.monotonic() - started
    writer.close()
    assert blocked_for >= 0.2  # writes waited for room before dropping
    messages = [event.message for event in stored(log_db, target)]
    assert writer.dropped_lines > 0
    assert f"[Forgeline] {writer.dropped_lines} lines of output were dropped" in "\n".join(messages)
    assert len([m for m in messages if m.startswith("line ")]) == 20 - writer.dropped_lines


def test_writer_survives_its_stream_being_deleted(log_db):
    target = make_stream(log_db)
    writer = BuildLogWriter(target)
    writer.write(b"before\n")
    assert writer.flush(5)
    with session_scope(log_db) as session:
        stream = session.get(LogStream, target.stream_id)
        assert stream is not None
        logstore.delete_stream(session, stream)
    writer.write(b"after\n")
    writer.close()
    assert writer.stream_lost
    writer.write(b"after close is ignored\n")


def test_export_to_blob_copies_the_whole_log_gzipped(log_db, tmp_path):
    target = make_stream(log_db)
    with BuildLogWriter(target) as writer:
        for n in range(12_000):
            writer.write(f"row {n}\n".encode())
    store = LocalBlobStore(tmp_path / "blobs")
    writer.export_to_blob(store, "buckets/b/logs/build.gz", compress=True)
    text = gzip.decompress(store.read_bytes("buckets/b/logs/build.gz")).decode()
    assert text == "".join(f"row {n}\n" for n in range(12_000))
    writer.export_to_blob(store, "buckets/b/logs/plain.txt")
    assert store.read_bytes("buckets/b/logs/plain.txt").decode() == text
