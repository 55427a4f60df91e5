"""AWS JSON 1.1 responses: the body, its content type and the request id header."""

from __future__ import annotations

import json
from typing import Any

from fastapi.responses import Response


def aws_json_response(status: int, body: dict[str, Any], request_id: str) -> Response:
    try:
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    except UnicodeEncodeError:
        # Text no UTF-8 can hold (a lone surrogate) still goes out as valid JSON, escaped.
        payload = json.dumps(body, separators=(",", ":")).encode()
    return Response(
        payload,
        status_code=status,
        media_type="application/x-amz-json-1.1",
        headers={"x-amzn-RequestId": request_id},
    )
