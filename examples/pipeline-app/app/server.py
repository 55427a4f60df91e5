#!/usr/bin/env python3
"""pipeline-app: answers its version on / and its health on /health.

PIPELINE_APP_PORT chooses the port (default 8080), so several copies can run on one
machine (one per agent in the example).
"""

import http.server
import os
from pathlib import Path

HERE = Path(__file__).resolve().parent


def answer(path: str) -> bytes:
    if path == "/health":
        return (HERE / "HEALTH").read_text().strip().encode()
    return f"pipeline-app {(HERE / 'VERSION').read_text().strip()}".encode()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = answer(self.path)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


if __name__ == "__main__":
    port = int(os.environ.get("PIPELINE_APP_PORT", "8080"))
    http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
