"""Fan-out: tells waiting readers and subscribers that new events have been committed.

It is only a doorbell. The `events` table is the truth; a message carries the highest
committed id so subscribers can decide whether to look, and a lost or spurious message
costs at most one extra query. Readers therefore also poll slowly as a fallback.

Two implementations share one interface: in-process (one process, e.g. the embedded
SQLite mode) and Redis pub/sub (several processes, e.g. API replicas and workers).
"""

from __future__ import annotations

import abc
import logging
import threading
from collections.abc import Callable

import redis

from forgeline.core.settings import Settings, get_settings

logger = logging.getLogger(__name__)

CHANNEL = "forgeline:events"

Callback = Callable[[int], None]
Unsubscribe = Callable[[], None]


class Fanout(abc.ABC):
    """Delivers "events up to id N are committed" to callbacks and to blocked waiters.

    Waiters use a generation counter rather than event ids: ids from different databases
    may share one fan-out, and a generation only has to say "something happened since".
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._generation = 0
        self._callbacks: list[Callback] = []

    @abc.abstractmethod
    def notify(self, max_id: int) -> None:
        """Announce that events up to `max_id` are committed."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections and threads; the fan-out must not be used afterwards."""

    def subscribe(self, callback: Callback) -> Unsubscribe:
        """Call `callback(max_id)` on every notification; returns a function that stops it.

        Callbacks run on the notifying thread (in-process) or the listener thread (Redis):
        they must be quick and must not block, e.g. enqueue a task and return.
        """
        with self._condition:
            self._callbacks.append(callback)

        def unsubscribe() -> None:
            with self._condition:
                if callback in self._callbacks:
                    self._callbacks.remove(callback)

        return unsubscribe

    @property
    def generation(self) -> int:
        with self._condition:
            return self._generation

    def wait(self, generation: int, timeout: float) -> int:
        """Block until a notification newer than `generation` arrives or `timeout` passes.

        Returns the current generation. Read it before looking at the table, then wait
        on it, so a notification landing between the two is not slept through.
        """
        with self._condition:
            self._condition.wait_for(lambda: self._generation != generation, timeout)
            return self._generation

    def _deliver(self, max_id: int | None) -> None:
        """Wake waiters and, when the id is known, call subscribers."""
        with self._condition:
            self._generation += 1
            self._condition.notify_all()
            callbacks = list(self._callbacks)
        if max_id is None:
            return
        for callback in callbacks:
            try:
                callback(max_id)
            except Exception:
                logger.exception("event subscriber %r failed", callback)


class InProcessFanout(Fanout):
    """Fan-out within one process: notify() delivers directly."""

    def notify(self, max_id: int) -> None:
        self._deliver(max_id)

    def close(self) -> None:
        with self._condition:
            self._callbacks.clear()


class RedisFanout(Fanout):
    """Fan-out between processes over Redis pub/sub on channel `forgeline:events`.

    A local notify() is published to Redis and comes back through this process's own
    listener like anyone else's, so every process sees the same stream of messages.
    """

    _LISTEN_TIMEOUT = 0.25
    _RECONNECT_DELAY = 0.5

    def __init__(self, url: str, ready_timeout: float = 5.0, channel: str = CHANNEL) -> None:
        super().__init__()
        self.url = url
        self.channel = channel
        self._client = redis.Redis.from_url(
            url, socket_connect_timeout=2, socket_timeout=5, client_name="forgeline-events"
        )
        self._stopped = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(
            target=self._listen_forever, name="forgeline-events-fanout", daemon=True
        )
        self._thread.start()
        # Messages published before SUBSCRIBE is confirmed are not delivered to us.
        if not self._ready.wait(ready_timeout):
            logger.warning("event fan-out at %s not ready; readers fall back to polling", url)

    def notify(self, max_id: int) -> None:
        try:
            self._client.publish(self.channel, str(max_id))
        except redis.RedisError:
            logger.warning("event fan-out publish failed; readers fall back to polling")

    def close(self) -> None:
        self._stopped.set()
        self._thread.join(self._LISTEN_TIMEOUT + 1.0)
        self._client.close()

    def _listen_forever(self) -> None:
        while not self._stopped.is_set():
            pubsub = self._client.pubsub()
            try:
                pubsub.subscribe(self.channel)
                self._listen(pubsub)
            except Exception as error:  # keep listening whatever broke; readers still poll
                logger.warning("event fan-out listener failed (%s); reconnecting", error)
                self._stopped.wait(self._RECONNECT_DELAY)
            finally:
                pubsub.close()

    def _listen(self, pubsub: redis.client.PubSub) -> None:
        while not self._stopped.is_set():
            message = pubsub.get_message(timeout=self._LISTEN_TIMEOUT)
            if message is None:
                continue
            if message["type"] == "subscribe":
                # Messages sent while we were disconnected are gone: wake readers so they
                # look at the table once instead of waiting for their fallback poll.
                if self._ready.is_set():
                    self._deliver(None)
                self._ready.set()
            elif message["type"] == "message":
                max_id = _parse_id(message["data"])
                if max_id is not None:
                    self._deliver(max_id)


def _parse_id(data: bytes | str) -> int | None:
    try:
        return int(data)
    except (TypeError, ValueError):
        logger.warning("ignoring malformed event fan-out message %r", data)
        return None


def create_fanout(url: str | None, channel: str = CHANNEL) -> Fanout:
    """A new fan-out for `url`: in-process for None, Redis pub/sub for redis:// URLs.

    Another `channel` makes a doorbell of its own (e.g. for CodeDeploy's host commands),
    which neither wakes nor is woken by the events' readers."""
    if url is None:
        return InProcessFanout()
    if url.startswith(("redis://", "rediss://")):
        return RedisFanout(url, channel=channel)
    raise ValueError(f"unsupported event fan-out URL {url!r}: expected redis:// or none")


_lock = threading.Lock()
_fanouts: dict[tuple[str | None, str], Fanout] = {}


def get_fanout(settings: Settings | None = None, channel: str = CHANNEL) -> Fanout:
    """The process-wide fan-out for the configured URL and `channel`, created on first use."""
    url = (settings or get_settings()).resolved_fanout_url
    with _lock:
        fanout = _fanouts.get((url, channel))
        if fanout is None:
            fanout = create_fanout(url, channel)
            _fanouts[(url, channel)] = fanout
        return fanout


def close_fanouts() -> None:
    """Close every process-wide fan-out (shutdown, tests)."""
    with _lock:
        fanouts = list(_fanouts.values())
        _fanouts.clear()
    for fanout in fanouts:
        fanout.close()
