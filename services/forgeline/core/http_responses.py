"""AWS JSON responses: the body, its content type and the request id header."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from fastapi.responses import Response

JSON_1_1 = "application/x-amz-json-1.1"


def aws_json_response(
    status: int,
    body: dict[str, Any],
    request_id: str,
    *,
    content_type: str = JSON_1_1,
    headers: Mapping[str, str] | None = None,
) -> Response:
    try:
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    except UnicodeEncodeError:
        # Text no UTF-8 can hold (a lone surrogate) still goes out as valid JSON, escaped.
        payload = json.dumps(body, separators=(",", ":")).encode()
    return Response(
        payload,
        status_code=status,
        media_type=content_type,
        headers={**(headers or {}), "x-amzn-RequestId": request_id},
    )
