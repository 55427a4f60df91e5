"""Which S3 operation a path-style request names: method, bucket, key and subresources."""

from __future__ import annotations

from collections.abc import Callable

from forgeline.s3.errors import S3Error, not_implemented
from forgeline.s3.exchange import S3Request, S3Response
from forgeline.s3.ops import buckets as ops_buckets
from forgeline.s3.ops import listing as ops_listing
from forgeline.s3.ops import multipart as ops_multipart
from forgeline.s3.ops import objects as ops_objects

Handler = Callable[[S3Request], S3Response]

# Query parameters that select another S3 API on the same path ("?tagging", "?acl" …).
# Those not routed below answer NotImplemented rather than being mistaken for a plain
# GET or PUT of the object or bucket.
_SUBRESOURCES = (
    "accelerate",
    "acl",
    "analytics",
    "attributes",
    "cors",
    "encryption",
    "intelligent-tiering",
    "inventory",
    "legal-hold",
    "lifecycle",
    "location",
    "logging",
    "metadataTable",
    "metrics",
    "notification",
    "object-lock",
    "ownershipControls",
    "policy",
    "policyStatus",
    "publicAccessBlock",
    "replication",
    "requestPayment",
    "restore",
    "retention",
    "select",
    "session",
    "tagging",
    "torrent",
    "uploads",
    "uploadId",
    "versioning",
    "versions",
    "website",
    "delete",
    "renameObject",
)


def route(
    method: str, bucket: str, key: str, query: dict[str, str], headers: dict[str, str]
) -> tuple[str, Handler]:
    """(operation name, handler) for the request; NotImplemented for other S3 APIs."""
    subresources = {name for name in _SUBRESOURCES if name in query}
    if not bucket:
        if method == "GET" and not subresources:
            return "ListBuckets", ops_buckets.list_buckets
        raise _method_not_allowed(method)
    if not key:
        found = _bucket_operation(method, query, subresources)
    else:
        found = _object_operation(method, query, headers, subresources)
    if found is None:
        described = ", ".join(sorted(subresources)) or method
        raise not_implemented(f"The S3 API selected by {method} with {described}")
    return found


def _bucket_operation(
    method: str, query: dict[str, str], subresources: set[str]
) -> tuple[str, Handler] | None:
    if method == "GET":
        if not subresources:
            if query.get("list-type") == "2":
                return "ListObjectsV2", ops_listing.list_objects_v2
            return "ListObjects", ops_listing.list_objects
        if subresources == {"location"}:
            return "GetBucketLocation", ops_buckets.get_bucket_location
        if subresources == {"versioning"}:
            return "GetBucketVersioning", ops_buckets.get_bucket_versioning
        if subresources == {"uploads"}:
            return "ListMultipartUploads", ops_multipart.list_multipart_uploads
        return None
    if subresources and method != "POST":
        return None
    if method == "PUT":
        return "CreateBucket", ops_buckets.create_bucket
    if method == "HEAD":
        return "HeadBucket", ops_buckets.head_bucket
    if method == "DELETE":
        return "DeleteBucket", ops_buckets.delete_bucket
    if method == "POST" and subresources == {"delete"}:
        return "DeleteObjects", ops_objects.delete_objects
    if method == "POST" and not subresources:
        raise not_implemented("Browser-based uploads (POST Object)")
    return None


def _object_operation(
    method: str, query: dict[str, str], headers: dict[str, str], subresources: set[str]
) -> tuple[str, Handler] | None:
    if subresources == {"uploadId"}:
        if method == "PUT":
            if "x-amz-copy-source" in headers:
                return "UploadPartCopy", ops_multipart.upload_part_copy
            return "UploadPart", ops_multipart.upload_part
        if method == "POST":
            return "CompleteMultipartUpload", ops_multipart.complete_multipart_upload
        if method == "DELETE":
            return "AbortMultipartUpload", ops_multipart.abort_multipart_upload
        if method == "GET":
            return "ListParts", ops_multipart.list_parts
        return None
    if subresources == {"uploads"}:
        return (
            ("CreateMultipartUpload", ops_multipart.create_multipart_upload)
            if (method == "POST")
            else None
        )
    if subresources:
        return None
    if "versionId" in query and query["versionId"] not in ("", "null"):
        raise S3Error(
            "NoSuchVersion",
            "The specified version does not exist.",
            404,
            VersionId=query["versionId"],
        )
    if method == "PUT":
        if "x-amz-copy-source" in headers:
            return "CopyObject", ops_objects.copy_object
        return "PutObject", ops_objects.put_object
    if method == "GET":
        return "GetObject", ops_objects.get_object
    if method == "HEAD":
        return "HeadObject", ops_objects.head_object
    if method == "DELETE":
        return "DeleteObject", ops_objects.delete_object
    return None


def _method_not_allowed(method: str) -> S3Error:
    return S3Error(
        "MethodNotAllowed",
        "The specified method is not allowed against this resource.",
        405,
        Method=method,
        ResourceType="SERVICE",
    )
