"""CodeCommit repositories: create, read, list, rename, describe, delete, tag."""

from __future__ import annotations

import functools
import re
import uuid
from urllib.parse import urlsplit

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from forgeline.codecommit import storage
from forgeline.codecommit.generated import errors, shapes
from forgeline.codecommit.tables.repositories import Repository
from forgeline.core import tagging
from forgeline.core.context import RequestContext
from forgeline.core.db import get_engine, is_postgres, utcnow
from forgeline.core.protocol.messages import aws_message
from forgeline.core.settings import get_settings

TAG_ERRORS = tagging.TagErrors(
    too_many="TooManyTagsException",
    reserved_key="InvalidSystemTagUsageException",
    invalid="InvalidTagsMapException",
)
# CodeCommit's quota of repositories per account (AWS: 5,000, raisable; we keep the default).
MAX_REPOSITORIES = 5000
LIST_PAGE_SIZE = 1000
INVALID_NAME_MESSAGE = aws_message("codecommit", "InvalidRepositoryNameException") or ""


def check_name(name: str) -> None:
    """AWS's rules beyond the model's pattern: whole-name match, no `.git` suffix."""
    if (
        not name
        or len(name) > 100
        or name.endswith(".git")
        or not all(ch.isalnum() and ch.isascii() or ch in "._-" for ch in name)
    ):
        raise errors.InvalidRepositoryNameException(INVALID_NAME_MESSAGE)


_KMS_KEY_ID = re.compile(
    r"(?:arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(?:key/[A-Za-z0-9-]+|alias/[\w/.-]+))"
    r"|(?:alias/[\w/.-]+)|(?:[A-Za-z0-9-]{1,128})"
)


def check_kms_key_id(key_id: str) -> None:
    """A KMS key id, key ARN, alias name or alias ARN. Forgeline keeps it as metadata:
    repositories are stored on the server's disk, not encrypted with a KMS key."""
    if not _KMS_KEY_ID.fullmatch(key_id):
        raise errors.EncryptionKeyInvalidIdException(
            f"{key_id!r} is not a valid KMS key identifier."
        )


# Built once: composing the expression on every call costs more than running the query.
_FIND = select(Repository).where(
    Repository.account_id == bindparam("account_id"),
    Repository.region == bindparam("region"),
    Repository.name == bindparam("name"),
)
_READ = select(*Repository.__table__.columns).where(
    Repository.__table__.c.account_id == bindparam("account_id"),
    Repository.__table__.c.region == bindparam("region"),
    Repository.__table__.c.name == bindparam("name"),
)


def _key(ctx: RequestContext, name: str) -> dict[str, str]:
    return {"account_id": ctx.account_id, "region": ctx.region, "name": name}


def find(session: Session, ctx: RequestContext, name: str) -> Repository | None:
    return session.scalars(_FIND, _key(ctx, name)).first()


def get(session: Session, ctx: RequestContext, name: str) -> Repository:
    check_name(name)
    repository = find(session, ctx, name)
    if repository is None:
        raise errors.RepositoryDoesNotExistException(f"{name} does not exist")
    return repository


def read(ctx: RequestContext, name: str) -> Repository:
    """`get` for callers that only read: a detached Repository, loaded without an ORM session.

    GetRepository is the most frequent call there is; a bare connection costs a fraction of
    a session's setup, identity map and loading.
    """
    check_name(name)
    engine = get_engine(readonly=True)
    with engine.connect() as connection:
        if is_postgres(engine):
            # One statement needs no transaction around it: spares BEGIN and ROLLBACK,
            # two of the round trips to the server.
            connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        row = connection.execute(_READ, _key(ctx, name)).first()
    if row is None:
        raise errors.RepositoryDoesNotExistException(f"{name} does not exist")
    return Repository(**row._mapping)


def metadata(repository: Repository) -> shapes.RepositoryMetadata:
    settings = get_settings()
    base = settings.public_url or f"http://{settings.host}:{settings.port}"
    # What a repository does not have (a description, a branch, a key) is left out.
    found: shapes.RepositoryMetadata = {
        "accountId": repository.account_id,
        "repositoryId": repository.id,
        "repositoryName": repository.name,
    }
    if repository.description is not None:
        found["repositoryDescription"] = repository.description
    if repository.default_branch is not None:
        found["defaultBranch"] = repository.default_branch
    found["lastModifiedDate"] = repository.updated_at
    found["creationDate"] = repository.created_at
    found["cloneUrlHttp"] = f"{base.rstrip('/')}/v1/repos/{repository.name}"
    found["cloneUrlSsh"] = f"ssh://{_ssh_host(base)}/v1/repos/{repository.name}"
    found["Arn"] = repository.arn()
    if repository.kms_key_id is not None:
        found["kmsKeyId"] = repository.kms_key_id
    return found


@functools.lru_cache(maxsize=8)
def _ssh_host(base_url: str) -> str:
    """The host of the HTTP clone URL, without its port (that port speaks HTTP, not SSH).

    AWS always returns cloneUrlSsh and clients read it; Forgeline serves no SSH, so the
    URL only names the same host, as AWS's names its git endpoint.
    """
    host = urlsplit(base_url).hostname or "localhost"
    return f"[{host}]" if ":" in host else host


def create(
    session: Session, ctx: RequestContext, params: shapes.CreateRepositoryInput
) -> Repository:
    name = params["repositoryName"]
    check_name(name)
    tags = params.get("tags") or {}
    tagging.validate_tags(tags, TAG_ERRORS)
    if find(session, ctx, name) is not None:
        raise errors.RepositoryNameExistsException(f"Repository named {name} already exists")
    count = (
        session.query(Repository).filter_by(account_id=ctx.account_id, region=ctx.region).count()
    )
    if count >= MAX_REPOSITORIES:
        raise errors.RepositoryLimitExceededException(
            f"The account has reached its limit of {MAX_REPOSITORIES} repositories in {ctx.region}."
        )
    kms_key_id = params.get("kmsKeyId")
    if kms_key_id:
        check_kms_key_id(kms_key_id)
    now = utcnow()
    repository = Repository(
        id=str(uuid.uuid4()),
        account_id=ctx.account_id,
        region=ctx.region,
        name=name,
        description=params.get("repositoryDescription"),
        kms_key_id=kms_key_id,
        created_at=now,
        updated_at=now,
    )
    session.add(repository)
    try:
        session.flush()
    except IntegrityError:
        raise errors.RepositoryNameExistsException(
            f"Repository named {name} already exists"
        ) from None
    if tags:
        tagging.put_tags(session, ctx.account_id, repository.arn(), tags, TAG_ERRORS)
    # The directory is made last: if the transaction fails it is an orphan, never a half-row.
    storage.create_bare(get_settings(), repository.id)
    return repository


def delete(session: Session, ctx: RequestContext, name: str) -> str | None:
    check_name(name)
    repository = find(session, ctx, name)
    if repository is None:
        return None  # AWS answers a null id for a repository that is already gone.
    tagging.delete_all_tags(session, repository.arn())
    session.delete(repository)
    session.flush()
    storage.delete(get_settings(), repository.id)
    return repository.id


def rename(session: Session, ctx: RequestContext, old: str, new: str) -> None:
    repository = get(session, ctx, old)
    check_name(new)
    if old == new:
        return
    if find(session, ctx, new) is not None:
        raise errors.RepositoryNameExistsException(f"Repository named {new} already exists")
    old_arn = repository.arn()
    tags = tagging.get_tags(session, old_arn)
    tagging.delete_all_tags(session, old_arn)
    repository.name = new
    repository.updated_at = utcnow()
    session.flush()
    if tags:
        tagging.put_tags(session, ctx.account_id, repository.arn(), tags, TAG_ERRORS)


def by_arn(session: Session, ctx: RequestContext, arn: str) -> Repository:
    parts = arn.split(":")
    if len(parts) != 6 or parts[:3] != ["arn", "aws", "codecommit"] or not parts[5]:
        raise errors.InvalidResourceArnException(
            f"{arn!r} is not a valid CodeCommit repository ARN."
        )
    region, account, name = parts[3], parts[4], parts[5]
    if region != ctx.region or account != ctx.account_id:
        raise errors.RepositoryDoesNotExistException(f"{name} does not exist")
    return get(session, ctx, name)
