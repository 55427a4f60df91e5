"""Removing a container the runner (or its namespace pool) made, whatever state it is in."""

from __future__ import annotations

from typing import Any


def remove_quietly(api: Any, container_id: str) -> None:
    """Force-remove CONTAINER_ID with its anonymous volumes; gone already is fine."""
    import docker

    try:
        api.remove_container(container_id, force=True, v=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:
        # "removal already in progress" (two cleanups racing) is as good as done.
        if exc.status_code != 409:
            raise
