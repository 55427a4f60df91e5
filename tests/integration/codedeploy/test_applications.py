"""CodeDeploy applications and tags through boto3 against a running server."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.codedeploy.resource_helpers import (
    make_application,
    make_group,
    s3_revision,
    unique,
)
from tests.support.errors import code_of, error_of

DEFAULT_ACCOUNT = "000000000000"  # the account of the server's bootstrap credentials


@pytest.fixture(scope="module")
def deploy(forgeline: Any) -> Any:
    return forgeline.client("codedeploy")


@pytest.fixture(scope="module")
def raw(forgeline: Any) -> Any:
    """A client that sends what it is given, so the server's own checks answer."""
    return forgeline.client("codedeploy", parameter_validation=False)


def app_arn(name: str, region: str = "us-east-1", account: str = DEFAULT_ACCOUNT) -> str:
    return f"arn:aws:codedeploy:{region}:{account}:application:{name}"


def test_create_get_and_defaults(deploy: Any) -> None:
    name = unique("app")
    created = deploy.create_application(applicationName=name)
    application = deploy.get_application(applicationName=name)["application"]
    assert application["applicationId"] == created["applicationId"]
    assert application["applicationName"] == name
    assert application["computePlatform"] == "Server"
    assert application["linkedToGitHub"] is False
    assert application["createTime"].year >= 2024

    with pytest.raises(ClientError) as again:
        deploy.create_application(applicationName=name, computePlatform="Lambda")
    assert error_of(again)[0] == "ApplicationAlreadyExistsException"
    assert name in error_of(again)[1]


def test_bad_names_and_platforms_get_the_models_errors(raw: Any) -> None:
    assert code_of(raw.create_application, applicationName="a" * 101) == (
        "InvalidApplicationNameException"
    )
    assert code_of(raw.create_application, applicationName="has space") == (
        "InvalidApplicationNameException"
    )
    assert code_of(raw.create_application, applicationName="") == (
        "InvalidApplicationNameException"
    )
    assert code_of(
        raw.create_application, applicationName=unique("app"), computePlatform="Mainframe"
    ) == ("InvalidComputePlatformException")
    assert code_of(raw.get_application, applicationName=unique("missing")) == (
        "ApplicationDoesNotExistException"
    )


def test_batch_get_returns_in_request_order_and_refuses_unknown_names(deploy: Any) -> None:
    first, second = make_application(deploy), make_application(deploy, "Lambda")
    infos = deploy.batch_get_applications(applicationNames=[second, first, second])[
        "applicationsInfo"
    ]
    assert [(i["applicationName"], i["computePlatform"]) for i in infos] == [
        (second, "Lambda"),
        (first, "Server"),
    ]
    missing = unique("missing")
    with pytest.raises(ClientError) as caught:
        deploy.batch_get_applications(applicationNames=[first, missing])
    code, message = error_of(caught)
    assert code == "ApplicationDoesNotExistException" and missing in message
    too_many = [unique("x") for _ in range(101)]
    assert code_of(deploy.batch_get_applications, applicationNames=too_many) == (
        "BatchLimitExceededException"
    )


def test_list_is_sorted_and_pages_end(forgeline: Any) -> None:
    # A fresh account so the listing holds only this test's applications.
    made = forgeline.cli("accounts", "create", "--name", unique("apps"))
    assert made.returncode == 0, made.stderr
    keys = json.loads(made.stdout)
    client = forgeline.client(
        "codedeploy", credentials=(keys["accessKeyId"], keys["secretAccessKey"])
    )
    names = sorted(unique(f"n{i:03d}") for i in range(105))
    for name in names:
        client.create_application(applicationName=name)
    first = client.list_applications()
    assert first["applications"] == names[:100] and "nextToken" in first
    second = client.list_applications(nextToken=first["nextToken"])
    assert second["applications"] == names[100:] and "nextToken" not in second
    paged = [
        name
        for page in client.get_paginator("list_applications").paginate()
        for name in page["applications"]
    ]
    assert paged == names
    assert code_of(client.list_applications, nextToken="forged") == "InvalidNextTokenException"


def test_accounts_do_not_see_each_others_applications(forgeline: Any, deploy: Any) -> None:
    name = make_application(deploy)
    made = forgeline.cli("accounts", "create", "--name", unique("other"))
    keys = json.loads(made.stdout)
    other = forgeline.client(
        "codedeploy", credentials=(keys["accessKeyId"], keys["secretAccessKey"])
    )
    assert code_of(other.get_application, applicationName=name) == (
        "ApplicationDoesNotExistException"
    )
    # The same name is free in the other account; and in another region of this one.
    other.create_application(applicationName=name)
    forgeline.client("codedeploy", region="eu-west-1").create_application(applicationName=name)
    assert deploy.get_application(applicationName=name)["application"]["computePlatform"]


def test_rename_moves_the_application_its_groups_and_their_tags(deploy: Any) -> None:
    name = make_application(deploy, tags=[{"Key": "team", "Value": "web"}])
    group = make_group(deploy, name, tags=[{"Key": "tier", "Value": "front"}])
    new_name = unique("renamed")
    deploy.update_application(applicationName=name, newApplicationName=new_name)

    assert code_of(deploy.get_application, applicationName=name) == (
        "ApplicationDoesNotExistException"
    )
    assert deploy.get_application(applicationName=new_name)["application"]["applicationName"] == (
        new_name
    )
    info = deploy.get_deployment_group(applicationName=new_name, deploymentGroupName=group)
    assert info["deploymentGroupInfo"]["applicationName"] == new_name
    assert deploy.list_tags_for_resource(ResourceArn=app_arn(new_name))["Tags"] == [
        {"Key": "team", "Value": "web"}
    ]
    group_arn = app_arn(new_name).replace(":application:", ":deploymentgroup:") + f"/{group}"
    assert deploy.list_tags_for_resource(ResourceArn=group_arn)["Tags"] == [
        {"Key": "tier", "Value": "front"}
    ]

    taken = make_application(deploy)
    assert code_of(
        deploy.update_application, applicationName=new_name, newApplicationName=taken
    ) == ("ApplicationAlreadyExistsException")
    assert code_of(deploy.update_application, newApplicationName=unique("x")) == (
        "ApplicationNameRequiredException"
    )
    assert code_of(
        deploy.update_application, applicationName=unique("missing"), newApplicationName="y"
    ) == ("ApplicationDoesNotExistException")


def test_delete_takes_groups_revisions_and_tags_and_is_idempotent(deploy: Any) -> None:
    name = make_application(deploy, tags=[{"Key": "k", "Value": "v"}])
    group = make_group(deploy, name)
    deploy.register_application_revision(applicationName=name, revision=s3_revision("a.zip"))
    deploy.delete_application(applicationName=name)
    deploy.delete_application(applicationName=name)  # again: still fine

    assert code_of(deploy.get_application, applicationName=name) == (
        "ApplicationDoesNotExistException"
    )
    # Made again, the application starts empty: no groups, revisions or tags of the old one.
    deploy.create_application(applicationName=name)
    assert deploy.list_deployment_groups(applicationName=name)["deploymentGroups"] == []
    assert deploy.list_application_revisions(applicationName=name)["revisions"] == []
    assert deploy.list_tags_for_resource(ResourceArn=app_arn(name))["Tags"] == []
    assert code_of(
        deploy.get_deployment_group, applicationName=name, deploymentGroupName=group
    ) == ("DeploymentGroupDoesNotExistException")


def test_tags_on_applications(deploy: Any) -> None:
    name = make_application(deploy, tags=[{"Key": "a", "Value": "1"}])
    arn = app_arn(name)
    deploy.tag_resource(
        ResourceArn=arn, Tags=[{"Key": "b", "Value": "2"}, {"Key": "a", "Value": "3"}]
    )
    assert deploy.list_tags_for_resource(ResourceArn=arn)["Tags"] == [
        {"Key": "a", "Value": "3"},
        {"Key": "b", "Value": "2"},
    ]
    deploy.untag_resource(ResourceArn=arn, TagKeys=["a", "never-there"])
    assert deploy.list_tags_for_resource(ResourceArn=arn)["Tags"] == [{"Key": "b", "Value": "2"}]

    assert code_of(
        deploy.tag_resource, ResourceArn=arn, Tags=[{"Key": "aws:reserved", "Value": "x"}]
    ) == ("InvalidTagsToAddException")
    fifty_one = [{"Key": f"k{i}", "Value": "v"} for i in range(51)]
    assert code_of(deploy.tag_resource, ResourceArn=arn, Tags=fifty_one) == (
        "InvalidTagsToAddException"
    )
    assert code_of(deploy.tag_resource, ResourceArn=arn, Tags=[]) == "TagRequiredException"
    assert code_of(
        deploy.create_application,
        applicationName=unique("app"),
        tags=[{"Key": "aws:nope", "Value": "x"}],
    ) == ("InvalidTagsToAddException")


def test_tag_arns_are_checked(deploy: Any) -> None:
    assert code_of(deploy.list_tags_for_resource, ResourceArn="not-an-arn") == (
        "InvalidArnException"
    )
    instance_arn = f"arn:aws:codedeploy:us-east-1:{DEFAULT_ACCOUNT}:instance/host"
    assert code_of(deploy.list_tags_for_resource, ResourceArn=instance_arn) == (
        "ArnNotSupportedException"
    )
    # Writing tags needs the resource; a resource that is not there (or not the caller's)
    # lists no tags, ListTagsForResource declaring no not-found error.
    missing = app_arn(unique("missing"))
    assert code_of(deploy.tag_resource, ResourceArn=missing, Tags=[{"Key": "k", "Value": "v"}]) == (
        "ApplicationDoesNotExistException"
    )
    assert deploy.list_tags_for_resource(ResourceArn=missing)["Tags"] == []
    name = make_application(deploy, tags=[{"Key": "secret", "Value": "mine"}])
    foreign = app_arn(name, account="111122223333")
    assert code_of(deploy.tag_resource, ResourceArn=foreign, Tags=[{"Key": "k", "Value": "v"}]) == (
        "ApplicationDoesNotExistException"
    )
    assert deploy.list_tags_for_resource(ResourceArn=foreign)["Tags"] == []
    missing_group = app_arn(name).replace(":application:", ":deploymentgroup:") + "/nope"
    assert code_of(deploy.untag_resource, ResourceArn=missing_group, TagKeys=["k"]) == (
        "DeploymentGroupDoesNotExistException"
    )


def test_github_tokens_and_external_ids(deploy: Any) -> None:
    assert deploy.list_git_hub_account_token_names()["tokenNameList"] == []
    assert code_of(deploy.delete_git_hub_account_token, tokenName="mine") == (
        "GitHubAccountTokenDoesNotExistException"
    )
    assert code_of(deploy.delete_git_hub_account_token) == "GitHubAccountTokenNameRequiredException"
    deploy.delete_resources_by_external_id(externalId="stack-1")
