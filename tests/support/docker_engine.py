"""Whether a Docker engine answers on this machine, asked once per test run."""

from __future__ import annotations

import functools


@functools.cache
def engine_answers() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=5)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False
