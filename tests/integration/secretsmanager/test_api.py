"""Secrets Manager over HTTP with boto3: versions and staging labels, scheduled deletion,
listing, encryption at rest, accounts kept apart, and the build engine's secret resolution."""

from __future__ import annotations

import base64
import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError
from sqlalchemy import select

from forgeline.codebuild.secret_values import (
    SECRETS_MANAGER_ERROR,
    SecretResolutionError,
    parse_secret_reference,
    resolve_secret,
)
from forgeline.core.db import session_scope
from forgeline.secretsmanager.tables import Secret, SecretVersion
from tests.support.errors import error_of

NOT_FOUND = "Secrets Manager can't find the specified secret."
MARKED = "You can't perform this operation on the secret because it was marked for deletion."


@pytest.fixture
def sm(forgeline):
    return forgeline.client("secretsmanager")


@pytest.fixture
def prefix() -> str:
    """A name prefix of its own for each test, so tests sharing the server never collide."""
    return f"t{uuid.uuid4().hex[:10]}"


def test_create_get_and_arn_forms(sm, prefix):
    name = f"{prefix}/db-creds"
    created = sm.create_secret(
        Name=name, SecretString='{"user":"app","password":"pw"}', Description="database"
    )
    arn = created["ARN"]
    assert created["Name"] == name and created["VersionId"]
    head, suffix = arn.rsplit("-", 1)
    assert head.endswith(f":secret:{name}") and len(suffix) == 6
    assert arn.startswith("arn:aws:secretsmanager:us-east-1:")

    for secret_id in (name, arn, head):  # name, full ARN, partial ARN
        value = sm.get_secret_value(SecretId=secret_id)
        assert value["SecretString"] == '{"user":"app","password":"pw"}'
        assert value["VersionStages"] == ["AWSCURRENT"]
        assert value["VersionId"] == created["VersionId"]
        assert value["ARN"] == arn

    with pytest.raises(ClientError) as exists:
        sm.create_secret(Name=name, SecretString="x")
    assert error_of(exists) == (
        "ResourceExistsException",
        f"The operation failed because the secret {name} already exists.",
    )
    with pytest.raises(ClientError) as missing:
        sm.get_secret_value(SecretId=f"{prefix}/nothing")
    assert error_of(missing) == ("ResourceNotFoundException", NOT_FOUND)
    with pytest.raises(ClientError) as both:
        sm.create_secret(Name=f"{prefix}/both", SecretString="x", SecretBinary=b"y")
    assert error_of(both)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as bad_name:
        sm.create_secret(Name=f"{prefix}/bad name", SecretString="x")
    assert error_of(bad_name)[0] == "InvalidParameterException"


def test_create_is_idempotent_on_its_token(sm, prefix):
    token = str(uuid.uuid4())
    first = sm.create_secret(Name=f"{prefix}/t", SecretString="v", ClientRequestToken=token)
    again = sm.create_secret(Name=f"{prefix}/t", SecretString="v", ClientRequestToken=token)
    assert (again["ARN"], again["VersionId"]) == (first["ARN"], token)


def test_versions_and_staging_labels(sm, prefix):
    name = f"{prefix}/rotating"
    v1 = sm.create_secret(Name=name, SecretString="one")["VersionId"]
    v2 = sm.put_secret_value(SecretId=name, SecretString="two")
    assert v2["VersionStages"] == ["AWSCURRENT"]
    v2 = v2["VersionId"]

    assert sm.get_secret_value(SecretId=name)["SecretString"] == "two"
    previous = sm.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")
    assert (previous["SecretString"], previous["VersionId"]) == ("one", v1)
    assert sm.get_secret_value(SecretId=name, VersionId=v1)["SecretString"] == "one"
    assert sm.describe_secret(SecretId=name)["VersionIdsToStages"] == {
        v1: ["AWSPREVIOUS"],
        v2: ["AWSCURRENT"],
    }

    # A put that is a retry (same token, same value) changes nothing; a different value fails.
    token = str(uuid.uuid4())
    v3 = sm.put_secret_value(SecretId=name, SecretString="three", ClientRequestToken=token)
    retry = sm.put_secret_value(SecretId=name, SecretString="three", ClientRequestToken=token)
    assert retry["VersionId"] == v3["VersionId"] == token
    with pytest.raises(ClientError) as changed:
        sm.put_secret_value(SecretId=name, SecretString="other", ClientRequestToken=token)
    assert error_of(changed)[0] == "ResourceExistsException"
    stages = sm.describe_secret(SecretId=name)["VersionIdsToStages"]
    assert stages == {v2: ["AWSPREVIOUS"], token: ["AWSCURRENT"]}  # v1 is deprecated now

    # A pending version doesn't disturb AWSCURRENT.
    pending = sm.put_secret_value(SecretId=name, SecretString="four", VersionStages=["AWSPENDING"])[
        "VersionId"
    ]
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "three"
    assert sm.get_secret_value(SecretId=name, VersionStage="AWSPENDING")["SecretString"] == "four"

    # Promoting it moves AWSCURRENT, and the old current becomes AWSPREVIOUS.
    with pytest.raises(ClientError) as not_referenced:
        sm.update_secret_version_stage(
            SecretId=name, VersionStage="AWSCURRENT", MoveToVersionId=pending
        )
    assert error_of(not_referenced)[0] == "InvalidParameterException"
    sm.update_secret_version_stage(
        SecretId=name, VersionStage="AWSCURRENT", MoveToVersionId=pending, RemoveFromVersionId=token
    )
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "four"
    assert sm.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")["VersionId"] == token

    listed = sm.list_secret_version_ids(SecretId=name)["Versions"]
    assert {v["VersionId"] for v in listed} == {token, pending}
    everything = sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)["Versions"]
    assert {v["VersionId"] for v in everything} == {v1, v2, token, pending}

    with pytest.raises(ClientError) as no_stage:
        sm.get_secret_value(SecretId=name, VersionStage="NOPE")
    assert error_of(no_stage) == (
        "ResourceNotFoundException",
        "Secrets Manager can't find the specified secret value for staging label: NOPE",
    )
    with pytest.raises(ClientError) as no_version:
        sm.get_secret_value(SecretId=name, VersionId="0" * 32)
    assert error_of(no_version)[0] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as mismatched:
        sm.get_secret_value(SecretId=name, VersionId=v1, VersionStage="AWSCURRENT")
    assert error_of(mismatched)[0] == "InvalidRequestException"


def test_binary_secrets_and_update(sm, prefix):
    name = f"{prefix}/binary"
    sm.create_secret(Name=name, SecretBinary=b"\x00\x01binary\xff")
    value = sm.get_secret_value(SecretId=name)
    assert value["SecretBinary"] == b"\x00\x01binary\xff" and "SecretString" not in value

    updated = sm.update_secret(SecretId=name, Description="now text", SecretString="text")
    assert updated["VersionId"]
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "text"
    described = sm.describe_secret(SecretId=name)
    assert described["Description"] == "now text"
    assert sorted(described["VersionIdsToStages"].values()) == [["AWSCURRENT"], ["AWSPREVIOUS"]]

    metadata_only = sm.update_secret(SecretId=name, Description="again")
    assert "VersionId" not in metadata_only
    with pytest.raises(ClientError) as neither:
        sm.put_secret_value(SecretId=name)
    assert error_of(neither)[0] == "InvalidRequestException"


def test_delete_restore_and_force_delete(sm, prefix):
    name = f"{prefix}/doomed"
    sm.create_secret(Name=name, SecretString="v")
    with pytest.raises(ClientError) as short_window:
        sm.delete_secret(SecretId=name, RecoveryWindowInDays=3)
    assert error_of(short_window)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as both:
        sm.delete_secret(SecretId=name, RecoveryWindowInDays=7, ForceDeleteWithoutRecovery=True)
    assert error_of(both)[0] == "InvalidParameterException"

    deleted = sm.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    window = deleted["DeletionDate"] - sm.describe_secret(SecretId=name)["DeletedDate"]
    assert round(window.total_seconds() / 86400) == 7
    with pytest.raises(ClientError) as marked:
        sm.get_secret_value(SecretId=name)
    assert error_of(marked) == ("InvalidRequestException", MARKED)
    with pytest.raises(ClientError) as marked_put:
        sm.put_secret_value(SecretId=name, SecretString="w")
    assert error_of(marked_put) == ("InvalidRequestException", MARKED)
    with pytest.raises(ClientError) as recreate:
        sm.create_secret(Name=name, SecretString="w")
    assert error_of(recreate)[0] == "InvalidRequestException"

    listed = [
        s["Name"]
        for s in sm.list_secrets(Filters=[{"Key": "name", "Values": [prefix]}])["SecretList"]
    ]
    assert listed == []
    planned = sm.list_secrets(
        Filters=[{"Key": "name", "Values": [prefix]}], IncludePlannedDeletion=True
    )["SecretList"]
    assert [s["Name"] for s in planned] == [name] and "DeletedDate" in planned[0]

    sm.restore_secret(SecretId=name)
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "v"
    assert "DeletedDate" not in sm.describe_secret(SecretId=name)

    sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    with pytest.raises(ClientError) as gone:
        sm.describe_secret(SecretId=name)
    assert error_of(gone) == ("ResourceNotFoundException", NOT_FOUND)
    recreated = sm.create_secret(Name=name, SecretString="fresh")
    assert sm.get_secret_value(SecretId=recreated["ARN"])["SecretString"] == "fresh"


def test_list_secrets_filters_sorting_and_paging(sm, prefix):
    for index, (suffix, description, tags) in enumerate(
        [
            ("alpha", "Primary database", [{"Key": "team", "Value": "data"}]),
            ("beta", "cache password", [{"Key": "team", "Value": "web"}]),
            ("gamma", "Unrelated", []),
        ]
    ):
        sm.create_secret(
            Name=f"{prefix}/{suffix}", SecretString=str(index), Description=description, Tags=tags
        )

    def names(**kwargs):
        pages = sm.get_paginator("list_secrets").paginate(**kwargs)
        return [s["Name"] for page in pages for s in page["SecretList"]]

    mine = [{"Key": "name", "Values": [prefix]}]
    assert names(Filters=mine, SortBy="name") == [
        f"{prefix}/alpha",
        f"{prefix}/beta",
        f"{prefix}/gamma",
    ]
    assert names(Filters=mine, SortBy="name", SortOrder="desc") == [
        f"{prefix}/gamma",
        f"{prefix}/beta",
        f"{prefix}/alpha",
    ]
    assert names(Filters=mine, SortBy="name", PaginationConfig={"PageSize": 1}) == [
        f"{prefix}/alpha",
        f"{prefix}/beta",
        f"{prefix}/gamma",
    ]
    assert names(Filters=[*mine, {"Key": "description", "Values": ["primary"]}]) == [
        f"{prefix}/alpha"
    ]
    assert names(Filters=[*mine, {"Key": "tag-key", "Values": ["team"]}], SortBy="name") == [
        f"{prefix}/alpha",
        f"{prefix}/beta",
    ]
    assert names(Filters=[*mine, {"Key": "tag-value", "Values": ["!web"]}], SortBy="name") == [
        f"{prefix}/alpha",
        f"{prefix}/gamma",
    ]
    assert names(Filters=[*mine, {"Key": "all", "Values": ["password"]}]) == [f"{prefix}/beta"]

    entry = sm.list_secrets(Filters=[{"Key": "name", "Values": [f"{prefix}/alpha"]}])["SecretList"][
        0
    ]
    assert entry["Tags"] == [{"Key": "team", "Value": "data"}]
    assert list(entry["SecretVersionsToStages"].values()) == [["AWSCURRENT"]]
    assert "SecretString" not in entry

    with pytest.raises(ClientError) as forged:
        sm.list_secrets(NextToken="forged")
    assert error_of(forged)[0] == "InvalidNextTokenException"


def test_tags(sm, prefix):
    name = f"{prefix}/tagged"
    sm.create_secret(Name=name, SecretString="v", Tags=[{"Key": "a", "Value": "1"}])
    sm.tag_resource(SecretId=name, Tags=[{"Key": "b", "Value": "2"}])
    sm.untag_resource(SecretId=name, TagKeys=["a"])
    assert sm.describe_secret(SecretId=name)["Tags"] == [{"Key": "b", "Value": "2"}]
    with pytest.raises(ClientError) as reserved:
        sm.tag_resource(SecretId=name, Tags=[{"Key": "aws:owner", "Value": "x"}])
    assert error_of(reserved)[0] == "InvalidParameterException"


def test_values_are_encrypted_at_rest(sm, forgeline, prefix):
    plaintext = "p@ss-" + uuid.uuid4().hex
    binary = b"bin-" + uuid.uuid4().hex.encode()
    sm.create_secret(Name=f"{prefix}/s", SecretString=plaintext)
    sm.create_secret(Name=f"{prefix}/b", SecretBinary=binary)
    with session_scope(forgeline.database_url, readonly=True) as session:
        stored = session.execute(
            select(SecretVersion.value_encrypted)
            .join(Secret, Secret.id == SecretVersion.secret_id)
            .where(Secret.name.in_([f"{prefix}/s", f"{prefix}/b"]))
        ).all()
    assert len(stored) == 2
    for (ciphertext,) in stored:
        raw = base64.urlsafe_b64decode(ciphertext)
        for secret in (plaintext.encode(), binary, base64.b64encode(binary)):
            assert secret not in ciphertext.encode() and secret not in raw


def test_accounts_are_isolated(sm, forgeline, prefix):
    created = json.loads(forgeline.cli("accounts", "create", "--name", f"sm-{prefix}").stdout)
    other = forgeline.client(
        "secretsmanager", credentials=(created["accessKeyId"], created["secretAccessKey"])
    )
    name = f"{prefix}/shared"
    mine = sm.create_secret(Name=name, SecretString="mine")
    theirs = other.create_secret(Name=name, SecretString="theirs")
    assert mine["ARN"] != theirs["ARN"]
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "mine"
    assert other.get_secret_value(SecretId=name)["SecretString"] == "theirs"
    with pytest.raises(ClientError) as cross:
        sm.get_secret_value(SecretId=theirs["ARN"])
    assert error_of(cross) == ("ResourceNotFoundException", NOT_FOUND)
    names = [s["Name"] for s in other.list_secrets()["SecretList"]]
    assert names == [name]
    west = forgeline.client("secretsmanager", region="eu-west-1")
    with pytest.raises(ClientError):
        west.describe_secret(SecretId=name)


def test_parse_secret_reference():
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db-AbCdEf"
    assert parse_secret_reference("app/db") == ("app/db", "", "", "")
    assert parse_secret_reference("app/db:password") == ("app/db", "password", "", "")
    assert parse_secret_reference("app/db::AWSPREVIOUS") == ("app/db", "", "AWSPREVIOUS", "")
    assert parse_secret_reference(f"{arn}:user::v1") == (arn, "user", "", "v1")
    assert parse_secret_reference(arn) == (arn, "", "", "")
    for bad in ("", ":key", "a:b:c:d:e", "arn:aws:secretsmanager:us-east-1"):
        with pytest.raises(SecretResolutionError):
            parse_secret_reference(bad)


def test_resolve_secret_for_builds(sm, forgeline, prefix, server_settings):
    name = f"{prefix}/build"
    first = sm.create_secret(Name=name, SecretString=json.dumps({"user": "u1", "port": 5432}))
    second = sm.put_secret_value(SecretId=name, SecretString=json.dumps({"user": "u2"}))
    sm.create_secret(Name=f"{prefix}/plain", SecretString="just text")
    sm.create_secret(Name=f"{prefix}/bin", SecretBinary=b"\x00")
    account = first["ARN"].split(":")[4]

    with session_scope(forgeline.database_url, readonly=True) as session:

        def resolve(reference: str) -> str:
            return resolve_secret(session, account, "us-east-1", reference)

        assert json.loads(resolve(name)) == {"user": "u2"}
        assert resolve(f"{name}:user") == "u2"
        assert resolve(f"{name}:user:AWSPREVIOUS") == "u1"
        assert resolve(f"{name}:port:AWSPREVIOUS") == "5432"
        assert resolve(f"{name}:user::{first['VersionId']}") == "u1"
        assert resolve(f"{first['ARN']}:user") == "u2"
        assert resolve(f"{first['ARN']}:user::{second['VersionId']}") == "u2"
        assert resolve(f"{prefix}/plain") == "just text"

        failures = {
            f"{prefix}/absent": "ResourceNotFoundException: " + NOT_FOUND,
            f"{name}:missing": f"json key missing not found in secret {name}",
            f"{prefix}/plain:key": "is not a JSON object",
            f"{name}::AWSPENDING": "staging label: AWSPENDING",
            f"{prefix}/bin": "binary",
        }
        for reference, expected in failures.items():
            with pytest.raises(SecretResolutionError) as failed:
                resolve(reference)
            assert failed.value.status_code == SECRETS_MANAGER_ERROR
            assert expected in failed.value.message, reference

    sm.delete_secret(SecretId=name)
    with session_scope(forgeline.database_url, readonly=True) as session:
        with pytest.raises(SecretResolutionError) as marked:
            resolve_secret(session, account, "us-east-1", name)
        assert MARKED in marked.value.message


def test_concurrent_puts_leave_one_current_and_one_previous(sm, forgeline, prefix):
    name = f"{prefix}/contended"
    sm.create_secret(Name=name, SecretString="start")
    writers = 8
    clients = [forgeline.client("secretsmanager") for _ in range(writers)]

    def put(index: int) -> str:
        return clients[index].put_secret_value(SecretId=name, SecretString=f"w{index}")["VersionId"]

    with ThreadPoolExecutor(writers) as pool:
        written = set(pool.map(put, range(writers)))
    stages = sm.describe_secret(SecretId=name)["VersionIdsToStages"]
    labels = sorted(label for version_labels in stages.values() for label in version_labels)
    assert labels == ["AWSCURRENT", "AWSPREVIOUS"]
    current = sm.get_secret_value(SecretId=name)
    assert current["VersionId"] in written
    assert len(sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)["Versions"]) == 9


def test_reads_record_the_day_of_last_access(sm, prefix):
    name = f"{prefix}/accessed"
    sm.create_secret(Name=name, SecretString="v")
    assert "LastAccessedDate" not in sm.describe_secret(SecretId=name)
    sm.get_secret_value(SecretId=name)
    accessed = sm.describe_secret(SecretId=name)["LastAccessedDate"]
    assert (accessed.hour, accessed.minute, accessed.second) == (0, 0, 0)
    version = sm.list_secret_version_ids(SecretId=name)["Versions"][0]
    assert version["LastAccessedDate"] == accessed


def test_batch_get_secret_value(sm, prefix):
    first = sm.create_secret(Name=f"{prefix}/one", SecretString="1")
    sm.create_secret(Name=f"{prefix}/two", SecretBinary=b"2")
    sm.create_secret(Name=f"{prefix}/empty")  # no value yet
    sm.create_secret(Name=f"{prefix}/doomed", SecretString="x")
    sm.delete_secret(SecretId=f"{prefix}/doomed")

    by_id = sm.batch_get_secret_value(
        SecretIdList=[first["ARN"], f"{prefix}/two", f"{prefix}/absent", f"{prefix}/doomed"]
    )
    values = {entry["Name"]: entry for entry in by_id["SecretValues"]}
    assert values[f"{prefix}/one"]["SecretString"] == "1"
    assert values[f"{prefix}/two"]["SecretBinary"] == b"2"
    assert values[f"{prefix}/one"]["VersionStages"] == ["AWSCURRENT"]
    assert {(e["SecretId"], e["ErrorCode"]) for e in by_id["Errors"]} == {
        (f"{prefix}/absent", "ResourceNotFoundException"),
        (f"{prefix}/doomed", "InvalidRequestException"),
    }

    pages, token = [], None
    while True:
        page = sm.batch_get_secret_value(
            Filters=[{"Key": "name", "Values": [prefix]}],
            MaxResults=1,
            **({"NextToken": token} if token else {}),
        )
        pages.append(page)
        token = page.get("NextToken")
        if not token:
            break
    assert len(pages) == 3  # one, two, empty: the deleted secret isn't listed
    names = [entry["Name"] for page in pages for entry in page["SecretValues"]]
    assert names == [f"{prefix}/one", f"{prefix}/two"]
    errors_seen = [error["ErrorCode"] for page in pages for error in page["Errors"]]
    assert errors_seen == ["ResourceNotFoundException"]

    with pytest.raises(ClientError) as both:
        sm.batch_get_secret_value(
            SecretIdList=[f"{prefix}/one"], Filters=[{"Key": "name", "Values": [prefix]}]
        )
    assert error_of(both)[0] == "InvalidParameterException"
