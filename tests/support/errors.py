"""The AWS error a boto3 call answered with, for tests that check refusals."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError


def code_of(call: Callable[..., Any], **kwargs: Any) -> str:
    """Call `call(**kwargs)`, which must raise a ClientError, and return its error code."""
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return error_code(caught)


def error_code(caught: pytest.ExceptionInfo[ClientError]) -> str:
    return str(caught.value.response["Error"]["Code"])


def error_of(caught: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    """The error's code and message (empty when the answer had none)."""
    error = caught.value.response["Error"]
    return error["Code"], error.get("Message", "")
