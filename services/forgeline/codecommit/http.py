"""Routes the repo service serves besides the CodeCommit API: git smart HTTP."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.routing import Route

from forgeline.codecommit.git_http import GitHttpApp
from forgeline.core.settings import Settings


def mount(app: FastAPI, settings: Settings) -> None:
    # A plain ASGI endpoint (not a request/response function): both bodies stream.
    route = Route("/v1/repos/{git_path:path}", GitHttpApp(settings), include_in_schema=False)
    app.router.routes.append(route)
