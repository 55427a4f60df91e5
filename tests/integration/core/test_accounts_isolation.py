"""Accounts are real: keys map to accounts, and two accounts never see each other's resources."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from tests.support.server import running_server


@pytest.fixture
def second_account(forgeline):
    result = forgeline.cli("accounts", "create", "--name", "tenant-b")
    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)
    assert len(created["accountId"]) == 12 and created["accountId"].isdigit()
    return created


def test_same_names_in_two_accounts_stay_apart(forgeline, second_account):
    a = forgeline.client("codecommit")
    b = forgeline.client(
        "codecommit", credentials=(second_account["accessKeyId"], second_account["secretAccessKey"])
    )
    made_a = a.create_repository(repositoryName="shared-name", repositoryDescription="from A")
    made_b = b.create_repository(repositoryName="shared-name", repositoryDescription="from B")
    try:
        meta_a, meta_b = made_a["repositoryMetadata"], made_b["repositoryMetadata"]
        assert meta_a["repositoryId"] != meta_b["repositoryId"]
        assert meta_b["accountId"] == second_account["accountId"]
        assert (
            meta_b["Arn"]
            == f"arn:aws:codecommit:us-east-1:{second_account['accountId']}:shared-name"
        )
        assert (
            a.get_repository(repositoryName="shared-name")["repositoryMetadata"][
                "repositoryDescription"
            ]
            == "from A"
        )
        assert (
            b.get_repository(repositoryName="shared-name")["repositoryMetadata"][
                "repositoryDescription"
            ]
            == "from B"
        )

        b.create_repository(repositoryName="only-in-b")
        names_a = {r["repositoryName"] for r in a.list_repositories()["repositories"]}
        assert "only-in-b" not in names_a
        with pytest.raises(ClientError) as missing:
            a.get_repository(repositoryName="only-in-b")
        assert missing.value.response["Error"]["Code"] == "RepositoryDoesNotExistException"

        # Reaching across by ARN is refused too.
        with pytest.raises(ClientError) as cross:
            a.tag_resource(resourceArn=meta_b["Arn"], tags={"owner": "A"})
        assert cross.value.response["Error"]["Code"] == "RepositoryDoesNotExistException"
        assert b.list_tags_for_resource(resourceArn=meta_b["Arn"])["tags"] == {}

        # Deleting in one account leaves the other's namesake alone.
        assert (
            a.delete_repository(repositoryName="shared-name")["repositoryId"]
            == meta_a["repositoryId"]
        )
        assert (
            b.get_repository(repositoryName="shared-name")["repositoryMetadata"]["repositoryId"]
            == meta_b["repositoryId"]
        )
    finally:
        a.delete_repository(repositoryName="shared-name")
        b.delete_repository(repositoryName="shared-name")
        b.delete_repository(repositoryName="only-in-b")


def test_regions_are_scoped_too(forgeline):
    east = forgeline.client("codecommit", region="us-east-1")
    west = forgeline.client("codecommit", region="eu-west-1")
    made = west.create_repository(repositoryName="regional")
    try:
        assert made["repositoryMetadata"]["Arn"].startswith("arn:aws:codecommit:eu-west-1:")
        assert "regional" not in {
            r["repositoryName"] for r in east.list_repositories()["repositories"]
        }
    finally:
        west.delete_repository(repositoryName="regional")


def test_deleted_key_is_refused(forgeline, second_account):
    key = second_account["accessKeyId"]
    client = forgeline.client("codecommit", credentials=(key, second_account["secretAccessKey"]))
    assert client.list_repositories()["repositories"] == []
    listed = json.loads(forgeline.cli("keys", "list").stdout)
    assert key in {row["accessKeyId"] for row in listed}
    assert all("secret" not in json.dumps(row).lower() for row in listed)
    assert forgeline.cli("keys", "delete", key).returncode == 0
    # The server caches secrets for a few seconds; a deleted key is refused once that passes.
    import time

    deadline = time.monotonic() + 15
    while True:
        try:
            client.list_repositories()
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "UnrecognizedClientException"
            break
        assert time.monotonic() < deadline, "deleted key still accepted"
        time.sleep(0.5)


def test_permissive_mode_maps_unknown_keys_to_the_default_account(tmp_path):
    with running_server(
        tmp_path,
        auth="permissive",
        redis_db=3,
        extra_env={"FORGELINE_DEFAULT_ACCOUNT": "111122223333"},
    ) as server:
        anyone = server.client("codecommit", credentials=("AKIDANYTHING", "whatever-secret"))
        made = anyone.create_repository(repositoryName="suite-repo")["repositoryMetadata"]
        assert made["accountId"] == "111122223333"
        # A key the server knows is still verified: a wrong secret is refused.
        key, _ = server.admin_credentials()
        impostor = server.client("codecommit", credentials=(key, "not-the-secret"))
        with pytest.raises(ClientError) as refused:
            impostor.list_repositories()
        assert refused.value.response["Error"]["Code"] == "InvalidSignatureException"


def test_encryption_key_is_kept_as_metadata(forgeline):
    import uuid

    client = forgeline.client("codecommit")
    name = f"kms-{uuid.uuid4().hex[:8]}"
    made = client.create_repository(repositoryName=name)["repositoryMetadata"]
    try:
        changed = client.update_repository_encryption_key(
            repositoryName=name, kmsKeyId="alias/team-key"
        )
        assert changed["repositoryId"] == made["repositoryId"]
        assert changed["kmsKeyId"] == "alias/team-key"
        assert changed.get("originalKmsKeyId") == made.get("kmsKeyId")
        assert (
            client.get_repository(repositoryName=name)["repositoryMetadata"]["kmsKeyId"]
            == "alias/team-key"
        )
        with pytest.raises(ClientError) as bad:
            client.update_repository_encryption_key(repositoryName=name, kmsKeyId="not a key!")
        assert bad.value.response["Error"]["Code"] == "EncryptionKeyInvalidIdException"
    finally:
        client.delete_repository(repositoryName=name)
