"""The bucket registry: which buckets exist, who owns them, and where.

Buckets need no table: each is a small JSON record in the blob store at
`s3meta/buckets/<name>.json` (account, region, creation date). Bucket names are global,
as on AWS; the owning account is the only one that may use a bucket.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import ipaddress
import json
import re

from forgeline.core.blobstore import BlobNotFound, BlobStore
from forgeline.s3.errors import S3Error, access_denied, no_such_bucket

META_PREFIX = "s3meta/"
REGISTRY_PREFIX = META_PREFIX + "buckets/"

_NAME_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


@dataclasses.dataclass(frozen=True)
class Bucket:
    name: str
    account_id: str
    region: str
    created: dt.datetime

    def to_json(self) -> str:
        return json.dumps(
            {
                "name": self.name,
                "account_id": self.account_id,
                "region": self.region,
                "created": self.created.isoformat(),
            }
        )


def canonical_user_id(account_id: str) -> str:
    """A stable 64-hex owner id per account, shaped like S3's canonical user ids."""
    return hashlib.sha256(f"forgeline-account:{account_id}".encode()).hexdigest()


def bucket_name_problem(name: str) -> str | None:
    """Why `name` is not a valid bucket name under S3's general-purpose rules, or None."""
    if not 3 <= len(name) <= 63:
        return "Bucket names must be between 3 and 63 characters long."
    if not _NAME_RE.fullmatch(name):
        return (
            "Bucket names may contain only lowercase letters, numbers, dots and hyphens, "
            "and must begin and end with a letter or number."
        )
    if ".." in name:
        return "Bucket names must not contain two adjacent periods."
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        pass
    else:
        return "Bucket names must not be formatted as an IP address."
    if name.startswith(_RESERVED_PREFIXES) or name.endswith(_RESERVED_SUFFIXES):
        return "Bucket names must not use a reserved prefix or suffix."
    return None


def validate_bucket_name(name: str) -> None:
    problem = bucket_name_problem(name)
    if problem is not None:
        raise S3Error(
            "InvalidBucketName", f"The specified bucket is not valid. {problem}", BucketName=name
        )


def _record_key(name: str) -> str:
    return f"{REGISTRY_PREFIX}{name}.json"


def get_bucket(store: BlobStore, name: str) -> Bucket | None:
    if bucket_name_problem(name) is not None:
        return None
    try:
        record = json.loads(store.read_bytes(_record_key(name)))
    except BlobNotFound:
        return None
    return Bucket(
        name=record["name"],
        account_id=record["account_id"],
        region=record["region"],
        created=dt.datetime.fromisoformat(record["created"]),
    )


def owned_bucket(store: BlobStore, name: str, account_id: str) -> Bucket:
    """The bucket, if it exists and `account_id` owns it; else NoSuchBucket or AccessDenied."""
    bucket = get_bucket(store, name)
    if bucket is None:
        raise no_such_bucket(name)
    if bucket.account_id != account_id:
        raise access_denied()
    return bucket


def save_bucket(store: BlobStore, bucket: Bucket) -> None:
    store.put(_record_key(bucket.name), bucket.to_json().encode())


def forget_bucket(store: BlobStore, name: str) -> None:
    store.delete(_record_key(name))


def all_buckets(store: BlobStore) -> list[Bucket]:
    found = []
    for info in store.list(REGISTRY_PREFIX):
        name = info.key[len(REGISTRY_PREFIX) :].removesuffix(".json")
        bucket = get_bucket(store, name)
        if bucket is not None:
            found.append(bucket)
    return sorted(found, key=lambda bucket: bucket.name)
