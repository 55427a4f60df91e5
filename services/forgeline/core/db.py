"""The state store: one SQLAlchemy engine per process, on SQLite or Postgres.

Tables of every service derive from `Base`, so one Alembic history (migrations/) covers
them all. Code opens a unit of work with `session_scope()`; it commits on success and
rolls back on error.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from sqlalchemy import DateTime, MetaData, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, SessionTransaction, sessionmaker
from sqlalchemy.types import TypeDecorator

from forgeline.core.settings import get_settings

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC timestamps on both backends (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


_lock = threading.Lock()
_engines: dict[tuple[str, bool], Engine] = {}
_sessionmakers: dict[tuple[str, bool], sessionmaker[Session]] = {}
# One SQLite writer at a time per process. BEGIN IMMEDIATE alone would serialize writers
# too, but SQLite's busy handler sleeps up to 100 ms between retries; a lock wakes the
# next writer at once (16 concurrent writers: ~10x the throughput).
_sqlite_write_gates: dict[str, threading.RLock] = {}


def _configure_sqlite(engine: Engine, *, readonly: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let sqlite3 stay out of transaction handling; SQLAlchemy's BEGIN below takes over.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # IMMEDIATE takes the write lock up front, so read-then-write transactions
        # (claims, compare-and-swap updates) cannot deadlock on lock upgrade. Read-only
        # sessions use a deferred BEGIN and run beside writers (WAL).
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


# A pooled connection that served a statement this recently is taken to be alive. Pinging
# every checkout (pool_pre_ping) costs a round trip, a tenth of a quick API call; should the
# server drop a connection anyway, its next statement fails and SQLAlchemy then discards
# every connection in the pool.
PING_AFTER_IDLE_SECONDS = 1.0


def _ping_idle_connections(engine: Engine) -> None:
    """pool_pre_ping, but only for connections that sat idle in the pool for a while."""

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("checked_in_at")
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return  # new, or used a moment ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            # The pool retries the checkout with a fresh connection.
            raise DisconnectionError(str(exc)) from exc


def get_engine(url: str | None = None, *, readonly: bool = False) -> Engine:
    url = url or get_settings().resolved_database_url
    sqlite = url.startswith("sqlite")
    key = (url, readonly and sqlite)
    with _lock:
        engine = _engines.get(key)
        if engine is None:
            if sqlite:
                engine = create_engine(
                    url,
                    connect_args={"check_same_thread": False, "timeout": 30},
                    pool_size=20,
                    max_overflow=20,
                )
                _configure_sqlite(engine, readonly=readonly)
            else:
                engine = create_engine(url, pool_size=10, max_overflow=20)
                _ping_idle_connections(engine)
            _engines[key] = engine
        return engine


def get_sessionmaker(url: str | None = None, *, readonly: bool = False) -> sessionmaker[Session]:
    url = url or get_settings().resolved_database_url
    key = (url, readonly and url.startswith("sqlite"))
    maker = _sessionmakers.get(key)
    if maker is None:
        maker = sessionmaker(bind=get_engine(url, readonly=readonly), expire_on_commit=False)
        _sessionmakers[key] = maker
    return maker


def _write_gate(url: str) -> contextlib.AbstractContextManager[Any]:
    if not url.startswith("sqlite"):
        return contextlib.nullcontext()
    with _lock:
        gate = _sqlite_write_gates.setdefault(url, threading.RLock())
    return gate


@contextlib.contextmanager
def session_scope(url: str | None = None, *, readonly: bool = False) -> Iterator[Session]:
    """A unit of work: commits on success, rolls back on error.

    `readonly=True` promises no writes; on SQLite it then runs beside writers instead
    of queueing behind them.
    """
    url = url or get_settings().resolved_database_url
    gate = contextlib.nullcontext() if readonly else _write_gate(url)
    with gate:
        session = get_sessionmaker(url, readonly=readonly)()
        try:
            yield session
            if not readonly:
                session.commit()
            # A read-only session just closes: its transaction ends with the connection's
            # return to the pool, and loaded objects stay readable (rollback would expire them).
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()


# -- after the outermost commit ------------------------------------------------------------
# Doorbells, event notifications and deferred work must happen only once what they announce
# is visible to other transactions: after the outermost commit. One rule for every caller:
# a released savepoint is not a commit; a rolled-back savepoint keeps what was registered
# (a spurious doorbell is harmless, a missed one is not); an outermost rollback drops it.
_ON_COMMIT = "forgeline.on_commit"
_ON_ROLLBACK = "forgeline.on_rollback"
_log = logging.getLogger("forgeline.db")


def on_commit(session: Session, callback: Callable[[], None], *, key: str | None = None) -> None:
    """Run `callback()` once, after `session`'s outermost transaction commits.

    With `key`, one callback per key: a later registration replaces the earlier one (for
    a notification that only needs the latest state). A failing callback is logged; the
    commit has happened, so it must not fail the caller.
    """
    _in_transaction(session)
    pending: dict[Any, Callable[[], None]] = session.info.setdefault(_ON_COMMIT, {})
    pending[key if key is not None else object()] = callback


def pending_on_commit(session: Session, key: str) -> Callable[[], None] | None:
    """The callback registered under `key` that has not run yet, if any."""
    return session.info.get(_ON_COMMIT, {}).get(key)


def on_rollback(session: Session, callback: Callable[[], None]) -> None:
    """Run `callback()` if `session`'s outermost transaction ends without committing: the
    undo of a change made outside the database (a moved git ref) that the rows record."""
    _in_transaction(session)
    session.info.setdefault(_ON_ROLLBACK, []).append(callback)


def _in_transaction(session: Session) -> None:
    # A session that has run no statement has not begun its transaction, and its rollback
    # would then end nothing: begin it, so the registration is tied to one transaction.
    if not session.in_transaction():
        session.begin()


@event.listens_for(Session, "after_commit")
def _run_on_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return
    session.info.pop(_ON_ROLLBACK, None)
    for callback in session.info.pop(_ON_COMMIT, {}).values():
        try:
            callback()
        except Exception:
            _log.warning("an after-commit action failed", exc_info=True)


@event.listens_for(Session, "after_transaction_end")
def _end_outermost(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is not None:
        return
    session.info.pop(_ON_COMMIT, None)
    for callback in reversed(session.info.pop(_ON_ROLLBACK, [])):
        try:
            callback()
        except Exception:
            _log.warning("an undo after rollback failed", exc_info=True)


QUICK_READ_MARK = "__forgeline_quick_read__"
_Handler = TypeVar("_Handler", bound=Callable[..., Any])


def quick_read(handler: _Handler) -> _Handler:
    """Marks an API handler whose only I/O is one short read-only query by key.

    The HTTP server runs such handlers on its event loop instead of a worker thread. That
    is safe because the read never waits on writers (SQLite WAL, Postgres MVCC) and holds
    the loop for well under a millisecond; a handler that may write, lock, call out or
    scan must not be marked.
    """
    setattr(handler, QUICK_READ_MARK, True)
    return handler


def is_quick_read(handler: Callable[..., Any]) -> bool:
    return bool(getattr(handler, QUICK_READ_MARK, False))


def dispose_engines() -> None:
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
        _sessionmakers.clear()


def is_postgres(session_or_engine: Session | Engine) -> bool:
    bind = (
        session_or_engine.get_bind()
        if isinstance(session_or_engine, Session)
        else session_or_engine
    )
    return bind.dialect.name == "postgresql"
