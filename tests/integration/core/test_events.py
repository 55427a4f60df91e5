from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import select

from forgeline.core.db import Base, get_engine, session_scope
from forgeline.core.events import (
    Event,
    EventCursor,
    EventReader,
    InProcessFanout,
    RedisFanout,
    close_fanouts,
    create_fanout,
    get_fanout,
    publish,
    to_eventbridge,
)
from forgeline.core.settings import reset_settings_cache
from tests.support import databases

ACCOUNT = "123456789012"
OTHER_ACCOUNT = "210987654321"
REGION = "us-east-1"
BUILD_ARN = f"arn:aws:codebuild:{REGION}:{ACCOUNT}:build/demo:0001"


def fanout_url() -> str | None:
    # Postgres runs stand for the production shape (Redis between processes); SQLite runs
    # for the embedded one (in-process).
    return f"{databases.REDIS_URL}/1" if databases.backend() == "postgres" else None


@pytest.fixture
def db(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("FORGELINE_DATABASE_URL", database_url)
    monkeypatch.delenv("FORGELINE_BROKER_URL", raising=False)
    url = fanout_url()
    if url is None:
        monkeypatch.delenv("FORGELINE_EVENTS_FANOUT_URL", raising=False)
    else:
        monkeypatch.setenv("FORGELINE_EVENTS_FANOUT_URL", url)
    reset_settings_cache()
    Base.metadata.create_all(
        get_engine(database_url), tables=[Event.__table__, EventCursor.__table__]
    )
    try:
        yield database_url
    finally:
        close_fanouts()
        reset_settings_cache()


def build_event(session: Any, status: str, account_id: str = ACCOUNT, **kwargs: Any) -> dict:
    return publish(
        session,
        account_id=account_id,
        region=REGION,
        source="aws.codebuild",
        detail_type="CodeBuild Build State Change",
        detail={"build-status": status, "project-name": "demo"},
        resources=[BUILD_ARN],
        **kwargs,
    )


def eventually(condition: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def test_publish_read_ack(db: str) -> None:
    with session_scope(db) as session:
        published = [build_event(session, status) for status in ("IN_PROGRESS", "SUCCEEDED")]

    assert published[0]["source"] == "aws.codebuild"
    assert published[0]["account"] == ACCOUNT
    assert published[0]["resources"] == [BUILD_ARN]
    assert published[0]["time"].endswith("Z")
    assert published[0]["id"] != published[1]["id"]

    reader = EventReader("triggers", db)
    events = reader.read()
    assert [to_eventbridge(event) for event in events] == published
    assert events[0].id < events[1].id
    reader.ack(events[-1].id)

    assert EventReader("triggers", db).read() == []
    assert EventReader("triggers", db).committed_cursor() == events[-1].id
    # Another consumer keeps its own cursor and sees everything.
    assert len(EventReader("console", db).read()) == 2


def test_unacknowledged_events_are_delivered_again(db: str) -> None:
    with session_scope(db) as session:
        for status in ("IN_PROGRESS", "FAILED", "STOPPED"):
            build_event(session, status)

    first = EventReader("notifier", db)
    delivered = first.read(limit=2)
    assert [e.detail["build-status"] for e in delivered] == ["IN_PROGRESS", "FAILED"]
    first.ack(delivered[0].id)
    # The same reader moves on; it does not repeat what it already handed out.
    assert [e.detail["build-status"] for e in first.read()] == ["STOPPED"]

    again = EventReader("notifier", db).read()
    assert [e.detail["build-status"] for e in again] == ["FAILED", "STOPPED"]

    first.rewind()
    assert [e.id for e in first.read()] == [e.id for e in again]


def test_cursor_never_moves_backwards(db: str) -> None:
    with session_scope(db) as session:
        for status in ("IN_PROGRESS", "SUCCEEDED"):
            build_event(session, status)
    reader = EventReader("late-acks", db)
    events = reader.read()
    reader.ack(events[1].id)
    reader.ack(events[0].id)
    assert reader.committed_cursor() == events[1].id
    assert EventReader("late-acks", db).read() == []


def test_rollback_publishes_nothing(db: str) -> None:
    fanout = InProcessFanout()
    rung: list[int] = []
    fanout.subscribe(rung.append)

    with pytest.raises(RuntimeError), session_scope(db) as session:
        build_event(session, "IN_PROGRESS", fanout=fanout)
        raise RuntimeError("the state change failed")

    # A session closed without commit is a rollback too.
    with session_scope(db) as session:
        session.rollback()
        build_event(session, "IN_PROGRESS", fanout=fanout)
        session.close()

    assert EventReader("audit", db).read() == []
    assert rung == []

    with session_scope(db) as session:
        build_event(session, "SUCCEEDED", fanout=fanout)
    events = EventReader("audit", db).read()
    assert [e.detail["build-status"] for e in events] == ["SUCCEEDED"]
    assert rung == [events[0].id]


def test_savepoint_release_waits_for_the_real_commit(db: str) -> None:
    fanout = InProcessFanout()
    rung: list[int] = []
    fanout.subscribe(rung.append)

    with session_scope(db) as session:
        build_event(session, "IN_PROGRESS", fanout=fanout)
        with session.begin_nested():
            build_event(session, "SUCCEEDED", fanout=fanout)
        nested = session.begin_nested()
        build_event(session, "FAILED", fanout=fanout)
        nested.rollback()
        assert rung == []

    events = EventReader("audit", db).read()
    assert [e.detail["build-status"] for e in events] == ["IN_PROGRESS", "SUCCEEDED"]
    assert rung and rung[0] >= events[-1].id


def test_filters(db: str) -> None:
    with session_scope(db) as session:
        build_event(session, "IN_PROGRESS", account_id=ACCOUNT)
        build_event(session, "IN_PROGRESS", account_id=OTHER_ACCOUNT)
        publish(
            session,
            account_id=ACCOUNT,
            region=REGION,
            source="aws.codepipeline",
            detail_type="CodePipeline Pipeline Execution State Change",
            detail={"state": "STARTED"},
        )

    mine = EventReader("account-view", db).read(account_id=ACCOUNT)
    assert [e.account_id for e in mine] == [ACCOUNT, ACCOUNT]
    theirs = EventReader("other-view", db).read(account_id=OTHER_ACCOUNT)
    assert [(e.account_id, e.source) for e in theirs] == [(OTHER_ACCOUNT, "aws.codebuild")]
    builds = EventReader("build-view", db).read(source="aws.codebuild", account_id=ACCOUNT)
    assert [e.detail_type for e in builds] == ["CodeBuild Build State Change"]
    pipelines = EventReader("pipeline-view", db).read(
        detail_type="CodePipeline Pipeline Execution State Change"
    )
    assert [e.detail for e in pipelines] == [{"state": "STARTED"}]
    assert EventReader("nowhere", db).read(region="eu-west-1") == []


def test_wait_wakes_promptly_when_another_thread_publishes(db: str) -> None:
    reader = EventReader("waiter", db)
    assert reader.read() == []
    committed_at: list[float] = []

    def publish_later() -> None:
        time.sleep(0.3)
        with session_scope(db) as session:
            build_event(session, "SUCCEEDED")
        committed_at.append(time.monotonic())

    publisher = threading.Thread(target=publish_later)
    publisher.start()
    events = reader.read(wait_seconds=5.0)
    returned_at = time.monotonic()
    publisher.join()

    assert [e.detail["build-status"] for e in events] == ["SUCCEEDED"]
    # The fallback poll runs once a second; waking this soon after the commit is the
    # fan-out's doing.
    assert returned_at - committed_at[0] < 0.5


def test_wait_gives_up_after_wait_seconds(db: str) -> None:
    started = time.monotonic()
    assert EventReader("patient", db).read(wait_seconds=0.3) == []
    assert 0.3 <= time.monotonic() - started < 1.0


def test_fanout_is_a_process_wide_singleton(db: str) -> None:
    fanout = get_fanout()
    assert get_fanout() is fanout
    assert isinstance(fanout, RedisFanout if fanout_url() else InProcessFanout)
    with pytest.raises(ValueError):
        create_fanout("amqp://127.0.0.1:5672")


def test_every_subscriber_hears_a_commit(db: str) -> None:
    url = fanout_url()
    # With Redis, two independent connections stand for two processes.
    subscribers = [create_fanout(url), create_fanout(url)] if url else [get_fanout()] * 2
    heard: list[list[int]] = [[], []]
    stops = [fanout.subscribe(heard[i].append) for i, fanout in enumerate(subscribers)]
    generations = [fanout.generation for fanout in subscribers]
    try:
        with session_scope(db) as session:
            build_event(session, "IN_PROGRESS")
            build_event(session, "SUCCEEDED")
        last_id = EventReader("counter", db).read()[-1].id

        # Redis channels are shared by everyone on the server: look for our id among
        # whatever else is said there.
        assert eventually(lambda: all(last_id in ids for ids in heard))
        for fanout, generation in zip(subscribers, generations, strict=True):
            assert fanout.wait(generation, timeout=1.0) != generation

        stops[0]()
        heard[0].clear()
        with session_scope(db) as session:
            build_event(session, "STOPPED")
        newest = EventReader("counter", db).read()[-1].id
        assert eventually(lambda: newest in heard[1])
        assert newest not in heard[0]
    finally:
        if url:
            for fanout in subscribers:
                fanout.close()


@pytest.mark.db("postgres")  # Redis fan-out: the postgres pass has Redis
def test_redis_fanout_crosses_connections(db: str) -> None:
    url = fanout_url()
    assert url is not None
    publisher, listener = RedisFanout(url), RedisFanout(url)
    heard: list[int] = []
    listener.subscribe(heard.append)
    marker = random.randrange(10**12, 10**13)
    try:
        publisher.notify(marker)
        assert eventually(lambda: marker in heard)
    finally:
        publisher.close()
        listener.close()


def test_second_publisher_waits_for_the_first_to_commit(db: str) -> None:
    finished = threading.Event()

    def second() -> None:
        with session_scope(db) as session:
            build_event(session, "SECOND")
        finished.set()

    with session_scope(db) as session:
        build_event(session, "FIRST")
        thread = threading.Thread(target=second)
        thread.start()
        # Had the second publisher taken an id now, it could commit before ours.
        assert not finished.wait(0.3)
    thread.join(10)
    assert finished.is_set()

    events = EventReader("order", db).read()
    assert [e.detail["build-status"] for e in events] == ["FIRST", "SECOND"]


def test_concurrent_publishers_leave_no_gaps_for_a_reader(db: str) -> None:
    publishers, per_publisher = 8, 20
    done = threading.Event()
    seen: list[int] = []
    errors: list[BaseException] = []

    def publish_many(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for n in range(per_publisher):
                with session_scope(db) as session:
                    build_event(session, f"P{seed}-{n}")
                    # Keep transactions open a little so, unguarded, later ids would
                    # regularly commit before earlier ones.
                    time.sleep(rng.uniform(0, 0.004))
        except BaseException as error:
            errors.append(error)

    def follow() -> None:
        reader = EventReader("follower", db)
        try:
            while not done.is_set():
                seen.extend(e.id for e in reader.read(limit=1000, wait_seconds=0.05))
            seen.extend(e.id for e in reader.read(limit=1000))
        except BaseException as error:
            errors.append(error)

    follower = threading.Thread(target=follow)
    follower.start()
    threads = [threading.Thread(target=publish_many, args=(i,)) for i in range(publishers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    done.set()
    follower.join(60)

    assert errors == []
    with session_scope(db) as session:
        committed = list(session.scalars(select(Event.id).order_by(Event.id)))
    assert len(committed) == publishers * per_publisher
    assert seen == committed
