"""Authentication errors, with the codes, statuses and messages AWS JSON services answer.

They derive from the protocol layer's `AwsError`, so the dispatcher serializes them
like any other error: `{"__type": code, "message": ...}` with HTTP 403.
"""

from __future__ import annotations

from forgeline.core.protocol.errors import AwsError


class AuthError(AwsError):
    """Base of every authentication failure (all are HTTP 403)."""

    status = 403
    default_message = ""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(self.default_message if message is None else message)


class MissingAuthenticationTokenException(AuthError):
    """The request carries no SigV4 authentication at all."""

    code = "MissingAuthenticationTokenException"
    default_message = "Missing Authentication Token"


class UnrecognizedClientException(AuthError):
    """The access key id is unknown (or inactive)."""

    code = "UnrecognizedClientException"
    default_message = "The security token included in the request is invalid."


class InvalidSignatureException(AuthError):
    """The signature does not match the one computed with the key's secret."""

    code = "InvalidSignatureException"
    default_message = (
        "The request signature we calculated does not match the signature you provided. "
        "Check your AWS Secret Access Key and signing method. "
        "Consult the service documentation for details."
    )


class IncompleteSignatureException(AuthError):
    """SigV4 authentication is present but malformed or missing a part."""

    code = "IncompleteSignatureException"
    default_message = "The request signature does not conform to AWS standards."


class RequestExpired(InvalidSignatureException):
    """The signing time is outside the accepted window.

    AWS JSON services answer this as `InvalidSignatureException` with a
    "Signature expired: ..." message, which is what clients look for.
    """
