"""SSM Parameter Store over HTTP with boto3: versions, selectors, hierarchies, filters,
encryption at rest, accounts kept apart, and the build engine's parameter resolution."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError
from sqlalchemy import select

from forgeline.codebuild.secret_values import (
    PARAMETER_STORE_ERROR,
    SecretResolutionError,
    resolve_parameter,
)
from forgeline.core.db import session_scope
from forgeline.ssm.tables import SsmParameter, SsmParameterVersion
from tests.support.errors import error_of


@pytest.fixture
def ssm(forgeline):
    return forgeline.client("ssm")


@pytest.fixture
def root() -> str:
    """A hierarchy of its own for each test, so tests sharing the server never collide."""
    return f"/t{uuid.uuid4().hex[:10]}"


def test_put_get_versions_and_selectors(ssm, forgeline, root):
    name = f"{root}/db/url"
    first = ssm.put_parameter(Name=name, Value="one", Type="String", Description="the db")
    assert first == {
        "Version": 1,
        "Tier": "Standard",
        "ResponseMetadata": first["ResponseMetadata"],
    }

    with pytest.raises(ClientError) as exists:
        ssm.put_parameter(Name=name, Value="two", Type="String")
    assert error_of(exists)[0] == "ParameterAlreadyExists"
    assert "overwrite" in error_of(exists)[1]

    assert ssm.put_parameter(Name=name, Value="two", Overwrite=True)["Version"] == 2

    current = ssm.get_parameter(Name=name)["Parameter"]
    account = current["ARN"].split(":")[4]
    assert current["Value"] == "two"
    assert current["Version"] == 2
    assert current["Type"] == "String"  # carried over when the overwrite leaves it out
    assert current["DataType"] == "text"
    assert current["ARN"] == f"arn:aws:ssm:us-east-1:{account}:parameter{name}"
    assert "Selector" not in current

    old = ssm.get_parameter(Name=f"{name}:1")["Parameter"]
    assert (old["Value"], old["Version"], old["Selector"], old["Name"]) == ("one", 1, ":1", name)
    by_arn = ssm.get_parameter(Name=current["ARN"])["Parameter"]
    assert by_arn["Value"] == "two"

    with pytest.raises(ClientError) as missing_version:
        ssm.get_parameter(Name=f"{name}:7")
    code, message = error_of(missing_version)
    assert code == "ParameterVersionNotFound" and "version 7" in message

    with pytest.raises(ClientError) as missing:
        ssm.get_parameter(Name=f"{root}/nope")
    assert error_of(missing)[0] == "ParameterNotFound"

    history = ssm.get_parameter_history(Name=name)["Parameters"]
    assert [(h["Version"], h["Value"]) for h in history] == [(1, "one"), (2, "two")]
    assert history[1]["Description"] == "the db"  # kept from the version it replaced
    assert history[0]["LastModifiedUser"].startswith("arn:aws:")


def test_labels_select_versions(ssm, root):
    name = f"{root}/labelled"
    ssm.put_parameter(Name=name, Value="v1", Type="String")
    ssm.put_parameter(Name=name, Value="v2", Type="String", Overwrite=True)
    labelled = ssm.label_parameter_version(
        Name=name, ParameterVersion=1, Labels=["stable", "1bad", "awsy"]
    )
    assert labelled["ParameterVersion"] == 1
    assert sorted(labelled["InvalidLabels"]) == ["1bad", "awsy"]
    assert ssm.get_parameter(Name=f"{name}:stable")["Parameter"]["Value"] == "v1"

    # A label names one version: labelling version 2 moves it.
    ssm.label_parameter_version(Name=name, Labels=["stable"])
    assert ssm.get_parameter(Name=f"{name}:stable")["Parameter"]["Value"] == "v2"
    history = ssm.get_parameter_history(Name=name)["Parameters"]
    assert "Labels" not in history[0] and history[1]["Labels"] == ["stable"]

    ssm.label_parameter_version(Name=name, ParameterVersion=1, Labels=["old"])
    by_label = ssm.get_parameters_by_path(
        Path=root, ParameterFilters=[{"Key": "Label", "Values": ["old"]}]
    )["Parameters"]
    assert [(p["Name"], p["Value"], p["Version"]) for p in by_label] == [(name, "v1", 1)]

    removed = ssm.unlabel_parameter_version(Name=name, ParameterVersion=2, Labels=["stable", "x"])
    assert removed["RemovedLabels"] == ["stable"] and removed["InvalidLabels"] == ["x"]
    with pytest.raises(ClientError) as gone:
        ssm.get_parameter(Name=f"{name}:stable")
    assert error_of(gone)[0] == "ParameterVersionNotFound"


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("a/b", "ValidationException"),  # a hierarchy must start with '/'
        ("/a//b", "ValidationException"),
        ("/a/b c", "ValidationException"),
        ("awsThing", "ValidationException"),
        ("/SSM/thing", "ValidationException"),
        ("/" + "/".join(["l"] * 16), "HierarchyLevelLimitExceededException"),
        ("/" + "x" * 1000, "ValidationException"),  # too long with its ARN
    ],
)
def test_bad_names_are_refused(ssm, name, code):
    with pytest.raises(ClientError) as refused:
        ssm.put_parameter(Name=name, Value="v", Type="String")
    assert error_of(refused)[0] == code


def test_put_rules(ssm, root):
    with pytest.raises(ClientError) as no_type:
        ssm.put_parameter(Name=f"{root}/new", Value="v")
    assert error_of(no_type)[0] == "ValidationException"

    with pytest.raises(ClientError) as too_long:
        ssm.put_parameter(Name=f"{root}/big", Value="x" * 4097, Type="String")
    assert error_of(too_long)[0] == "ValidationException"
    big = ssm.put_parameter(Name=f"{root}/big", Value="x" * 4097, Type="String", Tier="Advanced")
    assert big["Tier"] == "Advanced"
    with pytest.raises(ClientError) as downgrade:
        ssm.put_parameter(Name=f"{root}/big", Value="x", Tier="Standard", Overwrite=True)
    assert "downgrade" in error_of(downgrade)[1]
    smart = ssm.put_parameter(
        Name=f"{root}/smart", Value="small", Type="String", Tier="Intelligent-Tiering"
    )
    assert smart["Tier"] == "Standard"

    ssm.put_parameter(Name=f"{root}/digits", Value="123", Type="String", AllowedPattern=r"\d+")
    with pytest.raises(ClientError) as mismatch:
        ssm.put_parameter(Name=f"{root}/digits", Value="12a", Overwrite=True)
    assert error_of(mismatch)[0] == "ParameterPatternMismatchException"
    with pytest.raises(ClientError) as bad_pattern:
        ssm.put_parameter(Name=f"{root}/p", Value="v", Type="String", AllowedPattern="(")
    assert error_of(bad_pattern)[0] == "InvalidAllowedPatternException"

    with pytest.raises(ClientError) as key_on_string:
        ssm.put_parameter(Name=f"{root}/k", Value="v", Type="String", KeyId="alias/mine")
    assert error_of(key_on_string)[0] == "ValidationException"

    ssm.put_parameter(
        Name=f"{root}/ami", Value="ami-12345678", Type="String", DataType="aws:ec2:image"
    )
    with pytest.raises(ClientError) as not_ami:
        ssm.put_parameter(
            Name=f"{root}/ami2", Value="nope", Type="String", DataType="aws:ec2:image"
        )
    assert error_of(not_ami)[0] == "ValidationException"

    ssm.put_parameter(
        Name=f"{root}/tagged", Value="v", Type="String", Tags=[{"Key": "team", "Value": "a"}]
    )
    with pytest.raises(ClientError) as tags_and_overwrite:
        ssm.put_parameter(
            Name=f"{root}/tagged",
            Value="w",
            Overwrite=True,
            Tags=[{"Key": "team", "Value": "b"}],
        )
    assert error_of(tags_and_overwrite)[0] == "ValidationException"


def test_secure_string_is_encrypted_at_rest(ssm, forgeline, root):
    name = f"{root}/token"
    plaintext = "s3cr3t-" + uuid.uuid4().hex
    ssm.put_parameter(Name=name, Value=plaintext, Type="SecureString")

    hidden = ssm.get_parameter(Name=name)["Parameter"]
    assert hidden["Type"] == "SecureString"
    assert hidden["Value"] != plaintext and plaintext not in hidden["Value"]
    base64.b64decode(hidden["Value"], validate=True)  # an opaque base64 blob, as on AWS
    shown = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]
    assert shown["Value"] == plaintext
    described = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Values": [name]}])[
        "Parameters"
    ]
    assert described[0]["KeyId"] == "alias/aws/ssm"

    with session_scope(forgeline.database_url, readonly=True) as session:
        rows = session.execute(
            select(SsmParameterVersion.value_encrypted)
            .join(SsmParameter, SsmParameter.id == SsmParameterVersion.parameter_id)
            .where(SsmParameter.name == name)
        ).all()
    assert rows
    for (stored,) in rows:
        assert plaintext not in stored
        assert plaintext not in base64.urlsafe_b64decode(stored).decode("latin-1")


def test_get_parameters_reports_invalid_names(ssm, root):
    ssm.put_parameter(Name=f"{root}/a", Value="A", Type="String")
    ssm.put_parameter(Name=f"{root}/b", Value="B", Type="StringList")
    result = ssm.get_parameters(Names=[f"{root}/a", f"{root}/b", f"{root}/zzz", f"{root}/a:9"])
    assert sorted((p["Name"], p["Value"]) for p in result["Parameters"]) == [
        (f"{root}/a", "A"),
        (f"{root}/b", "B"),
    ]
    assert sorted(result["InvalidParameters"]) == sorted([f"{root}/zzz", f"{root}/a:9"])


def test_get_parameters_by_path_pages_and_filters(ssm, root):
    names = [f"{root}/app/p{i:02d}" for i in range(13)]
    for name in names:
        ssm.put_parameter(Name=name, Value=name[-3:], Type="String")
    ssm.put_parameter(Name=f"{root}/app/deep/secret", Value="x", Type="SecureString")
    ssm.put_parameter(Name=f"{root}/application", Value="not under /app/", Type="String")
    ssm.put_parameter(Name=f"{root}/APP/upper", Value="names are case-sensitive", Type="String")

    first = ssm.get_parameters_by_path(Path=f"{root}/app")
    assert len(first["Parameters"]) == 10 and first["NextToken"]
    second = ssm.get_parameters_by_path(Path=f"{root}/app", NextToken=first["NextToken"])
    assert "NextToken" not in second
    assert [p["Name"] for p in first["Parameters"] + second["Parameters"]] == names

    everything = ssm.get_paginator("get_parameters_by_path").paginate(
        Path=f"{root}/app/", Recursive=True, WithDecryption=True, PaginationConfig={"PageSize": 4}
    )
    found = {p["Name"]: p["Value"] for page in everything for p in page["Parameters"]}
    assert set(found) == {*names, f"{root}/app/deep/secret"}
    assert found[f"{root}/app/deep/secret"] == "x"

    secure = ssm.get_parameters_by_path(
        Path=f"{root}/app",
        Recursive=True,
        ParameterFilters=[{"Key": "Type", "Values": ["SecureString"]}],
    )["Parameters"]
    assert [p["Name"] for p in secure] == [f"{root}/app/deep/secret"]

    with pytest.raises(ClientError) as bad_key:
        ssm.get_parameters_by_path(
            Path=f"{root}/app", ParameterFilters=[{"Key": "Name", "Values": ["x"]}]
        )
    assert error_of(bad_key)[0] == "InvalidFilterKey"
    with pytest.raises(ClientError) as not_a_path:
        ssm.get_parameters_by_path(Path="relative")
    assert error_of(not_a_path)[0] == "ValidationException"
    with pytest.raises(ClientError) as forged:
        ssm.get_parameters_by_path(Path=f"{root}/app", NextToken="forged")
    assert error_of(forged)[0] == "InvalidNextToken"


def test_describe_parameters_filters(ssm, root):
    ssm.put_parameter(Name=f"{root}/x/one", Value="1", Type="String")
    ssm.put_parameter(Name=f"{root}/x/two", Value="2", Type="SecureString")
    ssm.put_parameter(Name=f"{root}/x/y/three", Value="3", Type="String", Tier="Advanced")
    ssm.add_tags_to_resource(
        ResourceType="Parameter", ResourceId=f"{root}/x/one", Tags=[{"Key": "env", "Value": "prod"}]
    )

    def described(**kwargs):
        pages = ssm.get_paginator("describe_parameters").paginate(**kwargs)
        return sorted(p["Name"] for page in pages for p in page["Parameters"])

    assert described(
        ParameterFilters=[{"Key": "Name", "Option": "BeginsWith", "Values": [f"{root}/x/"]}]
    ) == [f"{root}/x/one", f"{root}/x/two", f"{root}/x/y/three"]
    assert described(ParameterFilters=[{"Key": "Path", "Values": [f"{root}/x"]}]) == [
        f"{root}/x/one",
        f"{root}/x/two",
    ]
    assert described(
        ParameterFilters=[
            {"Key": "Path", "Option": "Recursive", "Values": [f"{root}/x"]},
            {"Key": "Tier", "Values": ["Advanced"]},
        ]
    ) == [f"{root}/x/y/three"]
    assert described(
        ParameterFilters=[
            {"Key": "Path", "Option": "Recursive", "Values": [f"{root}/"]},
            {"Key": "tag:env", "Values": ["prod"]},
        ]
    ) == [f"{root}/x/one"]
    assert described(
        Filters=[
            {"Key": "Name", "Values": [f"{root}/x/t"]},
            {"Key": "Type", "Values": ["SecureString"]},
        ]
    ) == [f"{root}/x/two"]

    with pytest.raises(ClientError) as both:
        ssm.describe_parameters(
            Filters=[{"Key": "Type", "Values": ["String"]}],
            ParameterFilters=[{"Key": "Type", "Values": ["String"]}],
        )
    assert error_of(both)[0] == "ValidationException"
    with pytest.raises(ClientError) as bad_option:
        ssm.describe_parameters(
            ParameterFilters=[{"Key": "Type", "Option": "BeginsWith", "Values": ["S"]}]
        )
    assert error_of(bad_option)[0] == "InvalidFilterOption"
    with pytest.raises(ClientError) as no_values:
        ssm.describe_parameters(ParameterFilters=[{"Key": "Name"}])
    assert error_of(no_values)[0] == "InvalidFilterValue"

    metadata = ssm.describe_parameters(
        ParameterFilters=[{"Key": "Name", "Values": [f"{root}/x/one"]}]
    )["Parameters"][0]
    assert metadata["Type"] == "String" and metadata["Version"] == 1
    assert "Value" not in metadata


def test_tags_and_delete(ssm, root):
    name = f"{root}/tags"
    ssm.put_parameter(Name=name, Value="v", Type="String", Tags=[{"Key": "a", "Value": "1"}])
    ssm.add_tags_to_resource(
        ResourceType="Parameter", ResourceId=name, Tags=[{"Key": "b", "Value": "2"}]
    )
    ssm.remove_tags_from_resource(ResourceType="Parameter", ResourceId=name, TagKeys=["a"])
    tags = ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=name)["TagList"]
    assert tags == [{"Key": "b", "Value": "2"}]
    with pytest.raises(ClientError) as wrong_type:
        ssm.list_tags_for_resource(ResourceType="Document", ResourceId=name)
    assert error_of(wrong_type)[0] == "InvalidResourceType"
    with pytest.raises(ClientError) as unknown:
        ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=f"{root}/none")
    assert error_of(unknown)[0] == "InvalidResourceId"

    ssm.delete_parameter(Name=name)
    with pytest.raises(ClientError) as gone:
        ssm.get_parameter(Name=name)
    assert error_of(gone)[0] == "ParameterNotFound"
    with pytest.raises(ClientError) as again:
        ssm.delete_parameter(Name=name)
    assert error_of(again)[0] == "ParameterNotFound"

    # Recreated, it starts again at version 1 with no tags.
    assert ssm.put_parameter(Name=name, Value="v", Type="String")["Version"] == 1
    assert ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=name)["TagList"] == []

    ssm.put_parameter(Name=f"{root}/other", Value="v", Type="String")
    result = ssm.delete_parameters(Names=[name, f"{root}/other", f"{root}/missing"])
    assert sorted(result["DeletedParameters"]) == sorted([name, f"{root}/other"])
    assert result["InvalidParameters"] == [f"{root}/missing"]


def test_accounts_and_regions_are_isolated(ssm, forgeline, root):
    created = json.loads(forgeline.cli("accounts", "create", "--name", f"ssm-{root[2:]}").stdout)
    other = forgeline.client(
        "ssm", credentials=(created["accessKeyId"], created["secretAccessKey"])
    )
    west = forgeline.client("ssm", region="eu-west-1")
    name = f"{root}/shared"
    ssm.put_parameter(Name=name, Value="mine", Type="String")
    other.put_parameter(Name=name, Value="theirs", Type="String")
    assert ssm.get_parameter(Name=name)["Parameter"]["Value"] == "mine"
    assert other.get_parameter(Name=name)["Parameter"]["Value"] == "theirs"
    with pytest.raises(ClientError) as elsewhere:
        west.get_parameter(Name=name)
    assert error_of(elsewhere)[0] == "ParameterNotFound"

    # Another account's ARN doesn't reach its parameter.
    their_arn = other.get_parameter(Name=name)["Parameter"]["ARN"]
    assert ssm.get_parameters(Names=[their_arn])["InvalidParameters"] == [their_arn]
    other.delete_parameter(Name=name)
    assert ssm.get_parameter(Name=name)["Parameter"]["Value"] == "mine"


def test_resolve_parameter_for_builds(ssm, forgeline, root, server_settings):
    name = f"{root}/build/token"
    ssm.put_parameter(Name=name, Value="first", Type="SecureString")
    ssm.put_parameter(Name=name, Value="second", Overwrite=True)
    account = ssm.get_parameter(Name=name)["Parameter"]["ARN"].split(":")[4]

    with session_scope(forgeline.database_url, readonly=True) as session:
        assert resolve_parameter(session, account, "us-east-1", name) == "second"
        assert resolve_parameter(session, account, "us-east-1", f"{name}:1") == "first"
        with pytest.raises(SecretResolutionError) as missing:
            resolve_parameter(session, account, "us-east-1", f"{root}/absent")
        assert missing.value.status_code == PARAMETER_STORE_ERROR
        assert missing.value.message == f"parameter does not exist: {root}/absent"
        with pytest.raises(SecretResolutionError):
            resolve_parameter(session, account, "us-east-1", f"{name}:5")
        with pytest.raises(SecretResolutionError):  # the region is part of the lookup
            resolve_parameter(session, account, "eu-west-1", name)


def test_concurrent_overwrites_get_distinct_versions(ssm, forgeline, root):
    name = f"{root}/contended"
    writers = 8
    clients = [forgeline.client("ssm") for _ in range(writers)]

    def put(index: int) -> int:
        client = clients[index]
        for _ in range(20):  # the first put of a new name may race another's
            try:
                return client.put_parameter(
                    Name=name, Value=f"w{index}", Type="String", Overwrite=True
                )["Version"]
            except ClientError as exc:  # pragma: no cover - only under heavy contention
                if exc.response["Error"]["Code"] != "TooManyUpdates":
                    raise
        raise AssertionError("never written")

    with ThreadPoolExecutor(writers) as pool:
        versions = sorted(pool.map(put, range(writers)))
    assert versions == list(range(1, writers + 1))
    history = ssm.get_parameter_history(Name=name)["Parameters"]
    assert [h["Version"] for h in history] == versions
    assert ssm.get_parameter(Name=name)["Parameter"]["Version"] == writers


def test_the_aws_cli_reads_parameters_and_secrets(ssm, forgeline, root):
    """The AWS CLI pages through results itself: its loops must end."""
    env = dict(os.environ)
    env.update(
        AWS_SHARED_CREDENTIALS_FILE=str(forgeline.credentials_file),
        AWS_PROFILE="forgeline",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE="/dev/null",
    )
    env.pop("AWS_ACCESS_KEY_ID", None)
    env.pop("AWS_SECRET_ACCESS_KEY", None)

    def aws(*args: str) -> Any:
        result = subprocess.run(
            ["aws", "--endpoint-url", forgeline.url, *args, "--output", "json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    aws(
        "ssm",
        "put-parameter",
        "--name",
        f"{root}/cli/p00",
        "--value",
        "v0",
        "--type",
        "SecureString",
    )
    for index in range(1, 12):
        ssm.put_parameter(Name=f"{root}/cli/p{index:02d}", Value=f"v{index}", Type="SecureString")
    listed = aws("ssm", "get-parameters-by-path", "--path", f"{root}/cli", "--with-decryption")
    assert [p["Value"] for p in listed["Parameters"]] == [f"v{i}" for i in range(12)]
    described = aws(
        "ssm",
        "describe-parameters",
        "--parameter-filters",
        f"Key=Path,Option=Recursive,Values={root}/cli",
        "--page-size",
        "5",
    )
    assert len(described["Parameters"]) == 12

    secret = f"{root[1:]}/cli-secret"
    aws("secretsmanager", "create-secret", "--name", secret, "--secret-string", "from-cli")
    value = aws("secretsmanager", "get-secret-value", "--secret-id", secret)
    assert value["SecretString"] == "from-cli"
    found = aws("secretsmanager", "list-secrets", "--filters", f"Key=name,Values={secret}")
    assert [s["Name"] for s in found["SecretList"]] == [secret]
