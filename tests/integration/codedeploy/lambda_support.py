"""What the Lambda deployment tests share: HTTP backends standing for a function's
versions, and a server standing for hook functions that answers each invocation with
PutLifecycleEventHookExecutionStatus through boto3, as a real validation function does."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from forgeline.core.functions import FUNCTION_HEADER
from tests.support.server import free_port


class _Quiet(http.server.BaseHTTPRequestHandler):
    def log_message(self, *_: object) -> None:
        pass


class VersionBackend:
    """Answers every GET with its version's text (what a function version returns)."""

    def __init__(self, text: str) -> None:
        body = text.encode()

        class Handler(_Quiet):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class HookFunctions:
    """Stands for every hook function: records each invocation (function, payload, time)
    and reports the verdict set for the function (Succeeded unless told otherwise) with
    PutLifecycleEventHookExecutionStatus, from another thread, after answering 200."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any], float]] = []
        self.reports: list[dict[str, Any]] = []
        self.verdicts: dict[str, str | None] = {}  # function -> status; None: never reports
        self.client_factory: Callable[[], Any] | None = None
        owner = self

        class Handler(_Quiet):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", "0"))
                payload = json.loads(self.rfile.read(length))
                function = self.headers.get(FUNCTION_HEADER, "")
                owner.calls.append((function, payload, time.time()))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                threading.Thread(target=owner._report, args=(function, payload)).start()

        self.port = free_port()
        self.routes = json.dumps({"*": f"http://127.0.0.1:{self.port}/{{function}}"})
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def _report(self, function: str, payload: dict[str, Any]) -> None:
        status = self.verdicts.get(function, "Succeeded")
        if status is None or self.client_factory is None:
            return
        answer = self.client_factory().put_lifecycle_event_hook_execution_status(
            deploymentId=payload["DeploymentId"],
            lifecycleEventHookExecutionId=payload["LifecycleEventHookExecutionId"],
            status=status,
        )
        self.reports.append({"function": function, "status": status, "answer": answer})

    def functions_called(self) -> list[str]:
        return [function for function, _, _ in self.calls]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def lambda_appspec(
    function: str, alias: str, current: str, target: str, hooks: dict[str, str] | None = None
) -> str:
    """A Lambda AppSpec (YAML) for the revision's AppSpecContent."""
    lines = [
        "version: 0.0",
        "Resources:",
        "  - app:",
        "      Type: AWS::Lambda::Function",
        "      Properties:",
        f"        Name: {function}",
        f"        Alias: {alias}",
        f'        CurrentVersion: "{current}"',
        f'        TargetVersion: "{target}"',
    ]
    if hooks:
        lines.append("Hooks:")
        lines.extend(f"  - {event}: {name}" for event, name in hooks.items())
    return "\n".join(lines) + "\n"


def appspec_revision(content: str) -> dict[str, Any]:
    return {"revisionType": "AppSpecContent", "appSpecContent": {"content": content}}
