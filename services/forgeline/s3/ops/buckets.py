"""Bucket operations: create, head, delete, locate and list buckets."""

from __future__ import annotations

import base64
import binascii
import threading

from forgeline.s3 import buckets, objects
from forgeline.s3.buckets import Bucket
from forgeline.s3.errors import S3Error
from forgeline.s3.exchange import S3Request, S3Response
from forgeline.s3.multipart import UPLOADS_PREFIX
from forgeline.s3.xmlio import child_text, document, node, parse

LEGACY_REGION = "us-east-1"  # where re-creating your own bucket answers 200, as on AWS
_MAX_CONFIGURATION_BYTES = 64 * 1024

# Creation is check-then-write; within one process this lock makes it one step.
_create_lock = threading.Lock()


def create_bucket(request: S3Request) -> S3Response:
    name = request.bucket
    buckets.validate_bucket_name(name)
    region = _requested_region(request)
    with _create_lock:
        existing = buckets.get_bucket(request.store, name)
        if existing is not None:
            if existing.account_id != request.caller.account_id:
                raise S3Error(
                    "BucketAlreadyExists",
                    "The requested bucket name is not available. The bucket namespace is "
                    "shared by all users of the system. Please select a different name and "
                    "try again.",
                    409,
                    BucketName=name,
                )
            if existing.region != LEGACY_REGION or region != LEGACY_REGION:
                raise S3Error(
                    "BucketAlreadyOwnedByYou",
                    "Your previous request to create the named bucket succeeded and you "
                    "already own it.",
                    409,
                    BucketName=name,
                )
        else:
            buckets.save_bucket(
                request.store,
                Bucket(
                    name=name,
                    account_id=request.caller.account_id,
                    region=region,
                    created=objects.now(),
                ),
            )
    return S3Response(headers={"Location": f"/{name}"})


def _requested_region(request: S3Request) -> str:
    """The bucket's region: the location constraint, which must match the endpoint's region."""
    body = request.body.read_all(_MAX_CONFIGURATION_BYTES)
    constraint = ""
    if body.strip():
        root = parse(body)
        if root.tag != "CreateBucketConfiguration":
            raise S3Error(
                "MalformedXML",
                "The XML you provided was not well-formed or did not validate against our "
                "published schema",
            )
        constraint = (child_text(root, "LocationConstraint") or "").strip()
    signed_region = request.caller.region
    if constraint == LEGACY_REGION:
        raise S3Error(
            "InvalidLocationConstraint",
            "The specified location-constraint is not valid",
            LocationConstraint=constraint,
        )
    if not constraint:
        if signed_region != LEGACY_REGION:
            raise S3Error(
                "IllegalLocationConstraintException",
                "The unspecified location constraint is incompatible for the region "
                "specific endpoint this request was sent to.",
            )
        return LEGACY_REGION
    if constraint != signed_region:
        raise S3Error(
            "IllegalLocationConstraintException",
            f"The {constraint} location constraint is incompatible for the region specific "
            "endpoint this request was sent to.",
        )
    return constraint


def head_bucket(request: S3Request) -> S3Response:
    bucket = buckets.owned_bucket(request.store, request.bucket, request.caller.account_id)
    return S3Response(headers={"x-amz-bucket-region": bucket.region})


def get_bucket_location(request: S3Request) -> S3Response:
    bucket = buckets.owned_bucket(request.store, request.bucket, request.caller.account_id)
    region = "" if bucket.region == LEGACY_REGION else bucket.region
    return S3Response.xml(document(node("LocationConstraint", region or None)))


def get_bucket_versioning(request: S3Request) -> S3Response:
    buckets.owned_bucket(request.store, request.bucket, request.caller.account_id)
    # Versioning is never enabled here: the configuration is empty, as for a new bucket.
    return S3Response.xml(document(node("VersioningConfiguration")))


def delete_bucket(request: S3Request) -> S3Response:
    store = request.store
    name = request.bucket
    buckets.owned_bucket(store, name, request.caller.account_id)
    if objects.bucket_has_objects(store, name):
        raise S3Error(
            "BucketNotEmpty",
            "The bucket you tried to delete is not empty",
            409,
            BucketName=name,
        )
    store.delete_prefix(f"{UPLOADS_PREFIX}{name}/")
    store.delete_prefix(f"{objects.SIDECAR_PREFIX}{name}/")
    buckets.forget_bucket(store, name)
    return S3Response(status=204)


def list_buckets(request: S3Request) -> S3Response:
    account = request.caller.account_id
    prefix = request.query.get("prefix", "")
    region = request.query.get("bucket-region")
    limit = request.int_param("max-buckets", 10000, low=1, high=10000)
    after = decode_token(request.query.get("continuation-token"), "continuation-token")
    mine = [
        bucket
        for bucket in buckets.all_buckets(request.store)
        if bucket.account_id == account
        and bucket.name.startswith(prefix)
        and (region is None or bucket.region == region)
        and bucket.name > after
    ]
    page, more = mine[:limit], len(mine) > limit
    listed = node(
        "Buckets",
        [
            node("Bucket", None, Name=b.name, CreationDate=b.created, BucketRegion=b.region)
            for b in page
        ],
    )
    root = node("ListAllMyBucketsResult", listed)
    root.append(node("Owner", None, ID=buckets.canonical_user_id(account), DisplayName=account))
    if more:
        root.append(node("ContinuationToken", encode_token(page[-1].name)))
    if prefix:
        root.append(node("Prefix", prefix))
    return S3Response.xml(document(root))


def encode_token(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii")


def decode_token(token: str | None, name: str) -> str:
    if not token:
        return ""
    try:
        decoded = base64.b64decode(token.encode("ascii"), altchars=b"-_", validate=True)
        if not decoded:
            raise ValueError(token)
        return decoded.decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        raise S3Error(
            "InvalidArgument",
            "The continuation token provided is incorrect",
            ArgumentName=name,
            ArgumentValue=token,
        ) from None
