#!/usr/bin/env python3
"""A tiny HTTP service that answers with the version it was deployed as."""

import http.server
import os
import pathlib

HERE = pathlib.Path(__file__).resolve().parent
VERSION = (HERE / "VERSION").read_text().strip()


class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"hello-service {VERSION}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


if __name__ == "__main__":
    port = int(os.environ.get("HELLO_PORT", "8080"))
    http.server.ThreadingHTTPServer(("127.0.0.1", port), Hello).serve_forever()
