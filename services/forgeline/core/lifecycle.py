"""Start-up and shut-down of a Forgeline server process, readiness and reset."""

from __future__ import annotations

import dataclasses
import logging
import shutil
from typing import Any

from sqlalchemy import delete, text

from forgeline.core import manifest
from forgeline.core.db import get_engine, session_scope
from forgeline.core.settings import Settings

log = logging.getLogger("forgeline.lifecycle")


def prepare_database(settings: Settings) -> Settings:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if settings.migrate_on_start:
        from forgeline.core.migrate import upgrade

        upgrade(settings.resolved_database_url)
    return settings


_server_keys: dict[tuple[str, str | None], bytes] = {}


def server_key(settings: Settings) -> bytes:
    """The key that encrypts secrets at rest, read once per process."""
    from forgeline.core.auth.crypto import load_server_key

    cache_key = (str(settings.data_dir), settings.server_key)
    key = _server_keys.get(cache_key)
    if key is None:
        key = _server_keys[cache_key] = load_server_key(settings)
    return key


@dataclasses.dataclass
class Runtime:
    settings: Settings
    worker: Any = None

    def stop(self) -> None:
        if self.worker is not None:
            # What services run beside the worker's pool (builds) ends before it stops.
            manifest.run_worker_stop_hooks()
            self.worker.stop()
            self.worker = None
        from forgeline.core.db import dispose_engines

        dispose_engines()


def start(settings: Settings, *, bootstrap: bool = True) -> Runtime:
    # Every server process (all-in-one or one `--service`) wires the hooks between
    # services, so e.g. a push to a repository starts CodeBuild's webhook builds.
    manifest.subscribe_listeners()
    from forgeline.core.auth import keys

    prepare_database(settings)
    key = server_key(settings)
    credentials = None
    if bootstrap:
        with session_scope() as session:
            credentials = keys.ensure_bootstrap_credentials(session, settings, key)
    runtime = Runtime(settings)
    if settings.worker == "embedded":
        from forgeline.core.work.embedded import start_embedded_worker

        runtime.worker = start_embedded_worker(settings)
        # Jobs run in this process: services start what runs beside them (builds).
        manifest.run_worker_start_hooks(settings)
    log.info(
        "Forgeline ready on http://%s:%s (state: %s; worker: %s; auth: %s)",
        settings.host,
        settings.port,
        _describe_db(settings),
        settings.worker,
        settings.auth,
    )
    if credentials is not None:
        log.info(
            "Try: AWS_SHARED_CREDENTIALS_FILE=%s aws --profile forgeline "
            "--endpoint-url http://%s:%s codecommit list-repositories",
            credentials.resolve(),
            settings.host,
            settings.port,
        )
    return runtime


def _describe_db(settings: Settings) -> str:
    url = settings.resolved_database_url
    return url if settings.is_sqlite else url.split("@")[-1]


def readiness(settings: Settings) -> dict[str, dict[str, Any]]:
    checks: dict[str, dict[str, Any]] = {}
    try:
        with get_engine().connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = {"ok": True}
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        checks["database"] = {"ok": False, "error": str(exc)[:200]}
    if settings.broker_url.startswith("redis"):
        try:
            import redis

            redis.Redis.from_url(settings.broker_url, socket_timeout=2).ping()
            checks["broker"] = {"ok": True}
        except Exception as exc:  # noqa: BLE001
            checks["broker"] = {"ok": False, "error": str(exc)[:200]}
    else:
        checks["broker"] = {"ok": True, "kind": "in-process"}
    return checks


def reset_state(settings: Settings) -> list[str]:
    """Wipe every resource (rows, blobs, repositories); accounts and keys stay."""
    from forgeline.core.schema import KEPT_ON_RESET, load_metadata

    metadata = load_metadata()
    wiped = []
    with session_scope() as session:
        for table in reversed(metadata.sorted_tables):
            if table.name in KEPT_ON_RESET:
                continue
            session.execute(delete(table))
            wiped.append(table.name)
    for folder in ("blobs", "repositories"):
        path = settings.data_dir / folder
        if path.exists():
            shutil.rmtree(path)
    if settings.blob_store == "s3":
        from forgeline.core.blobstore import get_blob_store

        get_blob_store(settings).delete_prefix("")
    return sorted(wiped)
