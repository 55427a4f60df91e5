"""AWS's own wording for errors whose message it fixes, keyed by (API, error code).

Where AWS answers an error with a specific, unchanging message, clients and tests compare
it; the validator and handlers take the message from here instead of a generic one. Only
messages seen from AWS belong here (trailing spaces included: they are AWS's).
"""

from __future__ import annotations

_MESSAGES: dict[tuple[str, str], str] = {
    ("codecommit", "InvalidRepositoryNameException"): (
        "The repository name is not valid. Repository names can be any valid combination "
        "of letters, numbers, periods, underscores, and dashes between 1 and 100 characters "
        "in length. Names are case sensitive. For more information, see Limits in the AWS "
        "CodeCommit User Guide. "
    ),
}


def aws_message(api: str, code: str) -> str | None:
    """AWS's fixed message for this error of this API (botocore model name), if it has one."""
    return _MESSAGES.get((api, code))
