"""What differs between the JSON flavours the models ask for: the JSON version, and the
error header of "query compatible" APIs.

Most APIs speak JSON 1.1. CloudWatch's model speaks JSON 1.0 (`metadata.jsonVersion`) and
is `awsQueryCompatible`: it moved from the query protocol and kept the query error codes
(`ResourceNotFound`, `InvalidFormat`), which its error shapes do not all share
(`InvalidFormatFault`). AWS sends the query code in `x-amzn-query-error:
<code>;<Sender|Receiver>` beside `__type`; botocore prefers it, so a client catches the
modelled exception class by the code it knows.
"""

from __future__ import annotations

import functools

from botocore.model import ServiceModel

DEFAULT_JSON_VERSION = "1.1"
QUERY_ERROR_HEADER = "x-amzn-query-error"


def content_type(model: ServiceModel | None) -> str:
    """The content type of this API's answers (the one its clients send)."""
    version = model.metadata.get("jsonVersion", DEFAULT_JSON_VERSION) if model else None
    return f"application/x-amz-json-{version or DEFAULT_JSON_VERSION}"


def error_headers(model: ServiceModel | None, code: str, status: int) -> dict[str, str]:
    """Headers an error answer carries besides its body: the query error code, for an
    error the query-compatible model declares (other errors have no query code)."""
    if model is None:
        return {}
    query_code = _query_codes(model).get(code)
    if query_code is None:
        return {}
    fault = "Receiver" if status >= 500 else "Sender"
    return {QUERY_ERROR_HEADER: f"{query_code};{fault}"}


@functools.cache
def _query_codes(model: ServiceModel) -> dict[str, str]:
    """Error shape name -> its query error code; empty for an API that is not query compatible."""
    if not model.is_query_compatible:
        return {}
    return {shape.name: str(shape.error_code) for shape in model.error_shapes}
