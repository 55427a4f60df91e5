"""Routes the build service serves besides the CodeBuild API: a build's log as plain text.

    GET /logs/builds/<build uuid>?token=<token>

It is the target of `Build.logs.deepLink` (see log_links.py): the whole log, streamed
line by line as CloudWatch Logs stores it, readable with a browser or curl.
"""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import FastAPI, Query
from fastapi.responses import PlainTextResponse, StreamingResponse
from sqlalchemy import select
from starlette.responses import Response

from forgeline.codebuild import builds, log_links
from forgeline.codebuild.tables.builds import Build
from forgeline.core.db import session_scope
from forgeline.core.settings import Settings
from forgeline.logs import store as logstore


def mount(app: FastAPI, settings: Settings) -> None:
    @app.get(log_links.ROUTE_PREFIX + "/{build_uuid}", include_in_schema=False)
    def build_log(build_uuid: str, token: str = Query(default="")) -> Response:
        from forgeline.core.lifecycle import server_key

        found, stream_id = _stream_of(build_uuid, token, server_key(settings))
        if not found:
            # One answer for a wrong token and a missing build: neither says which it was.
            return PlainTextResponse("No such build log.\n", status_code=404)
        return StreamingResponse(
            _lines(stream_id, settings), media_type="text/plain; charset=utf-8"
        )


def _stream_of(build_uuid: str, token: str, key: bytes) -> tuple[bool, int | None]:
    """(whether the build exists and the token is its own, its log stream's id if any)."""
    with session_scope(readonly=True) as session:
        build = session.scalar(select(Build).where(Build.uuid == build_uuid))
        if build is None or not log_links.token_matches(key, build.id, token):
            return False, None
        if not builds.logs_enabled(build):
            return True, None
        group_name, stream_name = builds.log_group_and_stream(build)
        group = logstore.find_group(session, build.account_id, build.region, group_name)
        stream = logstore.find_stream(session, group, stream_name) if group else None
        return True, None if stream is None else int(stream.id)


def _lines(stream_id: int | None, settings: Settings) -> Iterator[bytes]:
    # No stream yet (the build has not started) or logs turned off: an empty log.
    if stream_id is None:
        return
    for message in logstore.iter_messages(stream_id, database_url=settings.resolved_database_url):
        yield (message + "\n").encode()
