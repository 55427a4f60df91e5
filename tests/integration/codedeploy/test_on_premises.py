"""On-premises instances through boto3: registration by IAM identity, tags, listing with
filters, deregistration; and the lookup the agents' command service uses."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.codedeploy.resource_helpers import unique
from tests.support.errors import code_of, error_of

DEFAULT_ACCOUNT = "000000000000"


@pytest.fixture(scope="module")
def deploy(forgeline: Any) -> Any:
    return forgeline.client("codedeploy")


def user_arn(name: str | None = None, account: str = DEFAULT_ACCOUNT) -> str:
    return f"arn:aws:iam::{account}:user/{name or unique('agent')}"


def session_arn(account: str = DEFAULT_ACCOUNT) -> str:
    return f"arn:aws:sts::{account}:assumed-role/CodeDeployHost/{unique('session')}"


def register(deploy: Any, **identity: str) -> str:
    name = unique("host")
    deploy.register_on_premises_instance(
        instanceName=name, **(identity or {"iamUserArn": user_arn()})
    )
    return name


def test_register_and_get(deploy: Any) -> None:
    arn = user_arn()
    name = unique("host")
    deploy.register_on_premises_instance(instanceName=name, iamUserArn=arn)
    info = deploy.get_on_premises_instance(instanceName=name)["instanceInfo"]
    assert info["instanceName"] == name
    assert info["iamUserArn"] == arn and "iamSessionArn" not in info
    assert info["instanceArn"] == f"arn:aws:codedeploy:us-east-1:{DEFAULT_ACCOUNT}:instance/{name}"
    assert info["tags"] == [] and "deregisterTime" not in info
    assert info["registerTime"].year >= 2024

    by_session = session_arn()
    other = register(deploy, iamSessionArn=by_session)
    assert deploy.get_on_premises_instance(instanceName=other)["instanceInfo"]["iamSessionArn"] == (
        by_session
    )


def test_registration_refusals(deploy: Any) -> None:
    taken_arn = user_arn()
    name = register(deploy, iamUserArn=taken_arn)
    with pytest.raises(ClientError) as caught:
        deploy.register_on_premises_instance(instanceName=name, iamUserArn=user_arn())
    assert error_of(caught)[0] == "InstanceNameAlreadyRegisteredException"
    assert code_of(
        deploy.register_on_premises_instance, instanceName=unique("h"), iamUserArn=taken_arn
    ) == ("IamUserArnAlreadyRegisteredException")
    taken_session = session_arn()
    register(deploy, iamSessionArn=taken_session)
    assert code_of(
        deploy.register_on_premises_instance, instanceName=unique("h"), iamSessionArn=taken_session
    ) == ("IamSessionArnAlreadyRegisteredException")

    def refused(**kwargs: str) -> str:
        return code_of(deploy.register_on_premises_instance, instanceName=unique("h"), **kwargs)

    assert refused() == "IamArnRequiredException"
    assert refused(iamUserArn=user_arn(), iamSessionArn=session_arn()) == (
        "MultipleIamArnsProvidedException"
    )
    assert refused(iamUserArn="arn:aws:iam::000000000000:role/not-a-user") == (
        "InvalidIamUserArnException"
    )
    assert refused(iamUserArn=user_arn(account="111122223333")) == "InvalidIamUserArnException"
    assert refused(iamSessionArn="arn:aws:sts::000000000000:federated-user/x") == (
        "InvalidIamSessionArnException"
    )
    assert code_of(
        deploy.register_on_premises_instance, instanceName="bad name", iamUserArn=user_arn()
    ) == ("InvalidInstanceNameException")
    assert code_of(deploy.get_on_premises_instance, instanceName=unique("nobody")) == (
        "InstanceNotRegisteredException"
    )


def test_tags_are_added_replaced_and_removed(deploy: Any) -> None:
    first, second = register(deploy), register(deploy)
    deploy.add_tags_to_on_premises_instances(
        instanceNames=[first, second],
        tags=[{"Key": "role", "Value": "web"}, {"Key": "env", "Value": "prod"}],
    )
    deploy.add_tags_to_on_premises_instances(
        instanceNames=[second], tags=[{"Key": "env", "Value": "dev"}]
    )
    tags = {
        info["instanceName"]: info["tags"]
        for info in deploy.batch_get_on_premises_instances(instanceNames=[first, second])[
            "instanceInfos"
        ]
    }
    assert tags[first] == [{"Key": "role", "Value": "web"}, {"Key": "env", "Value": "prod"}]
    assert tags[second] == [{"Key": "role", "Value": "web"}, {"Key": "env", "Value": "dev"}]

    # A tag named with a value goes only where the instance has that value.
    deploy.remove_tags_from_on_premises_instances(
        instanceNames=[first, second], tags=[{"Key": "env", "Value": "prod"}]
    )
    infos = deploy.batch_get_on_premises_instances(instanceNames=[first, second])["instanceInfos"]
    assert [info["tags"] for info in infos] == [
        [{"Key": "role", "Value": "web"}],
        [{"Key": "role", "Value": "web"}, {"Key": "env", "Value": "dev"}],
    ]

    ten_more = [{"Key": f"k{i}", "Value": "v"} for i in range(10)]
    assert code_of(
        deploy.add_tags_to_on_premises_instances, instanceNames=[first], tags=ten_more
    ) == ("TagLimitExceededException")
    assert code_of(deploy.add_tags_to_on_premises_instances, instanceNames=[first], tags=[]) == (
        "TagRequiredException"
    )
    assert code_of(
        deploy.add_tags_to_on_premises_instances,
        instanceNames=[first, unique("ghost")],
        tags=[{"Key": "a", "Value": "b"}],
    ) == ("InstanceNotRegisteredException")
    assert code_of(
        deploy.add_tags_to_on_premises_instances,
        instanceNames=[first],
        tags=[{"Key": "value-missing"}],
    ) == ("InvalidTagException")
    assert code_of(
        deploy.add_tags_to_on_premises_instances,
        instanceNames=[unique("h") for _ in range(101)],
        tags=[{"Key": "a", "Value": "b"}],
    ) == ("InstanceLimitExceededException")


def test_list_filters_by_status_and_tags(deploy: Any) -> None:
    marker = unique("fleet")
    web, db, other = register(deploy), register(deploy), register(deploy)
    deploy.add_tags_to_on_premises_instances(
        instanceNames=[web],
        tags=[{"Key": "fleet", "Value": marker}, {"Key": "role", "Value": "web"}],
    )
    deploy.add_tags_to_on_premises_instances(
        instanceNames=[db], tags=[{"Key": "fleet", "Value": marker}, {"Key": "role", "Value": "db"}]
    )
    deploy.add_tags_to_on_premises_instances(
        instanceNames=[other], tags=[{"Key": marker, "Value": "x"}]
    )

    def listed(**kwargs: Any) -> list[str]:
        pages = deploy.get_paginator("list_on_premises_instances").paginate(**kwargs)
        return [name for page in pages for name in page["instanceNames"]]

    by_value = listed(tagFilters=[{"Value": marker, "Type": "VALUE_ONLY"}])
    assert by_value == sorted([web, db])
    either = listed(
        tagFilters=[
            {"Key": "fleet", "Value": marker, "Type": "KEY_AND_VALUE"},
            {"Key": marker, "Type": "KEY_ONLY"},
        ]
    )
    assert either == sorted([web, db, other])

    deploy.deregister_on_premises_instance(instanceName=db)
    registered = listed(
        registrationStatus="Registered", tagFilters=[{"Value": marker, "Type": "VALUE_ONLY"}]
    )
    assert registered == [web]
    deregistered = listed(
        registrationStatus="Deregistered", tagFilters=[{"Value": marker, "Type": "VALUE_ONLY"}]
    )
    assert deregistered == [db]
    assert code_of(
        deploy.list_on_premises_instances, tagFilters=[{"Key": "fleet", "Type": "VALUE_ONLY"}]
    ) == ("InvalidTagFilterException")


def test_deregistered_instances_stay_visible_and_can_register_again(deploy: Any) -> None:
    arn = user_arn()
    name = register(deploy, iamUserArn=arn)
    deploy.add_tags_to_on_premises_instances(
        instanceNames=[name], tags=[{"Key": "a", "Value": "b"}]
    )
    deploy.deregister_on_premises_instance(instanceName=name)
    deploy.deregister_on_premises_instance(instanceName=name)  # twice: fine
    info = deploy.get_on_premises_instance(instanceName=name)["instanceInfo"]
    assert "deregisterTime" in info and info["iamUserArn"] == arn
    assert code_of(
        deploy.add_tags_to_on_premises_instances,
        instanceNames=[name],
        tags=[{"Key": "c", "Value": "d"}],
    ) == ("InstanceNotRegisteredException")

    # The identity is free again, and so is the name.
    deploy.register_on_premises_instance(instanceName=unique("h"), iamUserArn=arn)
    deploy.register_on_premises_instance(instanceName=name, iamUserArn=user_arn())
    info = deploy.get_on_premises_instance(instanceName=name)["instanceInfo"]
    assert "deregisterTime" not in info and info["tags"] == []


def test_batch_get_leaves_out_unknown_names(deploy: Any) -> None:
    name = register(deploy)
    infos = deploy.batch_get_on_premises_instances(instanceNames=[unique("ghost"), name])
    assert [info["instanceName"] for info in infos["instanceInfos"]] == [name]
    assert code_of(
        deploy.batch_get_on_premises_instances, instanceNames=[unique("h") for _ in range(101)]
    ) == ("BatchLimitExceededException")


def test_instances_belong_to_their_account(forgeline: Any, deploy: Any) -> None:
    made = forgeline.cli("accounts", "create", "--name", unique("hosts"))
    keys = json.loads(made.stdout)
    other = forgeline.client(
        "codedeploy", credentials=(keys["accessKeyId"], keys["secretAccessKey"])
    )
    name = register(deploy)
    assert code_of(other.get_on_premises_instance, instanceName=name) == (
        "InstanceNotRegisteredException"
    )
    # The same name in the other account, with that account's identity.
    other.register_on_premises_instance(
        instanceName=name, iamUserArn=user_arn(account=keys["accountId"])
    )


def test_the_command_service_finds_instances_by_host_identifier(
    deploy: Any, server_settings: None
) -> None:
    from forgeline.codedeploy.ops.lookups import find_instance_by_host_identifier
    from forgeline.core.db import session_scope

    user, role_session = user_arn(), session_arn()
    by_user = register(deploy, iamUserArn=user)
    by_session = register(deploy, iamSessionArn=role_session)
    with session_scope(readonly=True) as session:
        found = find_instance_by_host_identifier(session, DEFAULT_ACCOUNT, "us-east-1", user)
        assert found is not None and found.name == by_user and found.host_identifier == user
        found = find_instance_by_host_identifier(
            session, DEFAULT_ACCOUNT, "us-east-1", role_session
        )
        assert found is not None and found.name == by_session
        assert find_instance_by_host_identifier(session, "111122223333", "us-east-1", user) is None
        assert find_instance_by_host_identifier(session, DEFAULT_ACCOUNT, "eu-west-1", user) is None
    deploy.deregister_on_premises_instance(instanceName=by_user)
    with session_scope(readonly=True) as session:
        assert find_instance_by_host_identifier(session, DEFAULT_ACCOUNT, "us-east-1", user) is None
