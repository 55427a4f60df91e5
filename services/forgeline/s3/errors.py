"""S3's errors: a code, a message, an HTTP status and a few extra fields, sent as XML.

S3 does not share the JSON services' error shape, so its errors are their own class; the
endpoint renders them as `<Error><Code>…</Code><Message>…</Message>…</Error>`.
"""

from __future__ import annotations


class S3Error(Exception):
    def __init__(self, code: str, message: str, status: int = 400, **fields: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.fields = fields


def no_such_bucket(bucket: str) -> S3Error:
    return S3Error("NoSuchBucket", "The specified bucket does not exist", 404, BucketName=bucket)


def no_such_key(key: str) -> S3Error:
    return S3Error("NoSuchKey", "The specified key does not exist.", 404, Key=key)


def no_such_upload(upload_id: str) -> S3Error:
    return S3Error(
        "NoSuchUpload",
        "The specified upload does not exist. The upload ID may be invalid, or the upload "
        "may have been aborted or completed.",
        404,
        UploadId=upload_id,
    )


def access_denied(message: str = "Access Denied") -> S3Error:
    return S3Error("AccessDenied", message, 403)


def invalid_argument(message: str, name: str, value: str) -> S3Error:
    return S3Error("InvalidArgument", message, 400, ArgumentName=name, ArgumentValue=value)


def invalid_request(message: str) -> S3Error:
    return S3Error("InvalidRequest", message, 400)


def malformed_xml() -> S3Error:
    return S3Error(
        "MalformedXML",
        "The XML you provided was not well-formed or did not validate against our published schema",
    )


def not_implemented(what: str) -> S3Error:
    return S3Error(
        "NotImplemented",
        f"{what} is not implemented by Forgeline's S3 endpoint.",
        501,
    )


def bad_digest(what: str) -> S3Error:
    return S3Error("BadDigest", f"The {what} you specified did not match the calculated checksum.")


def precondition_failed(condition: str) -> S3Error:
    return S3Error(
        "PreconditionFailed",
        "At least one of the pre-conditions you specified did not hold",
        412,
        Condition=condition,
    )
