"""The deployment operations' own rules through boto3 (no agents needed): what
CreateDeployment refuses, how deployments are read and listed, what StopDeployment,
ContinueDeployment and the instance/target reads answer, and a deployment whose group
reaches no instance failing as AWS's does (NO_INSTANCES)."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import pytest

from tests.integration.codedeploy.resource_helpers import (
    make_application,
    make_group,
    s3_revision,
    unique,
)
from tests.support.errors import code_of


@pytest.fixture(scope="module")
def deploy(forgeline: Any) -> Any:
    return forgeline.client("codedeploy")


@pytest.fixture(scope="module")
def raw(forgeline: Any) -> Any:
    return forgeline.client("codedeploy", parameter_validation=False)


def nobody_group(client: Any) -> tuple[str, str]:
    """An application and a group whose tags select no instance."""
    application = make_application(client)
    group = make_group(
        client,
        application,
        onPremisesInstanceTagFilters=[
            {"Key": "Role", "Value": unique("nobody"), "Type": "KEY_AND_VALUE"}
        ],
    )
    return application, group


def finished(client: Any, deployment_id: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        info = client.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
        if info["status"] in ("Succeeded", "Failed", "Stopped"):
            return info
        assert time.monotonic() < deadline, info
        time.sleep(0.1)


def test_a_group_with_no_instances_fails_with_no_instances(deploy: Any) -> None:
    application, group = nobody_group(deploy)
    deployment_id = deploy.create_deployment(
        applicationName=application,
        deploymentGroupName=group,
        revision=s3_revision("app/v1.zip"),
        description="first",
    )["deploymentId"]
    assert deployment_id.startswith("d-") and len(deployment_id) == 11
    info = finished(deploy, deployment_id)
    assert info["status"] == "Failed"
    assert info["errorInformation"]["code"] == "NO_INSTANCES"
    assert info["description"] == "first"
    assert info["creator"] == "user"
    assert info["deploymentConfigName"] == "CodeDeployDefault.OneAtATime"
    assert info["revision"]["s3Location"]["key"] == "app/v1.zip"
    assert info["deploymentOverview"] == {
        "Pending": 0,
        "InProgress": 0,
        "Succeeded": 0,
        "Failed": 0,
        "Skipped": 0,
        "Ready": 0,
    }
    assert deploy.list_deployment_instances(deploymentId=deployment_id)["instancesList"] == []
    assert deploy.list_deployment_targets(deploymentId=deployment_id)["targetIds"] == []
    # The revision a deployment names is registered and marked used, as AWS does.
    revision = deploy.get_application_revision(
        applicationName=application, revision=s3_revision("app/v1.zip")
    )["revisionInfo"]
    assert revision["deploymentGroups"] == [group]
    assert "firstUsedTime" in revision
    group_info = deploy.get_deployment_group(
        applicationName=application, deploymentGroupName=group
    )["deploymentGroupInfo"]
    assert group_info["lastAttemptedDeployment"]["deploymentId"] == deployment_id
    assert group_info["lastAttemptedDeployment"]["status"] == "Failed"
    assert "lastSuccessfulDeployment" not in group_info

    # Finished: it cannot be stopped or continued.
    assert (
        code_of(deploy.stop_deployment, deploymentId=deployment_id)
        == "DeploymentAlreadyCompletedException"
    )
    assert (
        code_of(deploy.continue_deployment, deploymentId=deployment_id)
        == "DeploymentAlreadyCompletedException"
    )


def test_create_deployment_refuses_what_aws_refuses(deploy: Any, raw: Any) -> None:
    application, group = nobody_group(deploy)
    revision = s3_revision("app/v1.zip")
    create = deploy.create_deployment
    assert (
        code_of(
            create, applicationName=unique("missing"), deploymentGroupName=group, revision=revision
        )
        == "ApplicationDoesNotExistException"
    )
    assert (
        code_of(create, applicationName=application, deploymentGroupName="nope", revision=revision)
        == "DeploymentGroupDoesNotExistException"
    )
    assert (
        code_of(raw.create_deployment, applicationName=application, revision=revision)
        == "DeploymentGroupNameRequiredException"
    )
    assert (
        code_of(create, applicationName=application, deploymentGroupName=group)
        == "RevisionRequiredException"
    )
    assert (
        code_of(
            create,
            applicationName=application,
            deploymentGroupName=group,
            revision=revision,
            deploymentConfigName="NoSuchConfig",
        )
        == "DeploymentConfigDoesNotExistException"
    )
    assert (
        code_of(
            create,
            applicationName=application,
            deploymentGroupName=group,
            revision=revision,
            deploymentConfigName="CodeDeployDefault.LambdaAllAtOnce",
        )
        == "InvalidDeploymentConfigNameException"
    )
    assert (
        code_of(
            raw.create_deployment,
            applicationName=application,
            deploymentGroupName=group,
            revision={"revisionType": "S3", "s3Location": {"bucket": "b"}},
        )
        == "InvalidRevisionException"
    )
    assert (
        code_of(
            create,
            applicationName=application,
            deploymentGroupName=group,
            revision=revision,
            description="x" * 1025,
        )
        == "DescriptionTooLongException"
    )
    assert (
        code_of(
            create,
            applicationName=application,
            deploymentGroupName=group,
            revision=revision,
            autoRollbackConfiguration={"enabled": True, "events": []},
        )
        == "InvalidAutoRollbackConfigException"
    )


def test_reads_and_lists(deploy: Any, raw: Any) -> None:
    application, group = nobody_group(deploy)
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    ids = []
    for key in ("a.zip", "b.zip"):
        deployment_id = deploy.create_deployment(
            applicationName=application, deploymentGroupName=group, revision=s3_revision(key)
        )["deploymentId"]
        finished(deploy, deployment_id)
        ids.append(deployment_id)
    listed = deploy.list_deployments(applicationName=application, deploymentGroupName=group)
    assert listed["deployments"] == ids[::-1]  # newest first
    failed_only = deploy.list_deployments(
        applicationName=application, deploymentGroupName=group, includeOnlyStatuses=["Succeeded"]
    )
    assert failed_only["deployments"] == []
    in_range = deploy.list_deployments(
        applicationName=application,
        deploymentGroupName=group,
        createTimeRange={"start": before, "end": dt.datetime.now(dt.UTC)},
    )
    assert sorted(in_range["deployments"]) == sorted(ids)
    assert ids[0] in deploy.list_deployments()["deployments"]
    batch = deploy.batch_get_deployments(deploymentIds=[ids[1], ids[0], "d-AAAAAAAAA"])
    assert [info["deploymentId"] for info in batch["deploymentsInfo"]] == [ids[1], ids[0]]

    assert code_of(deploy.get_deployment, deploymentId="d-AAAAAAAAA") == (
        "DeploymentDoesNotExistException"
    )
    assert code_of(deploy.get_deployment, deploymentId="nonsense") == "InvalidDeploymentIdException"
    assert (
        code_of(deploy.batch_get_deployments, deploymentIds=[f"d-{n:09d}" for n in range(26)])
        == "BatchLimitExceededException"
    )
    assert (
        code_of(deploy.list_deployments, applicationName=application)
        == "DeploymentGroupNameRequiredException"
    )
    assert (
        code_of(raw.list_deployments, includeOnlyStatuses=["Sleeping"])
        == "InvalidDeploymentStatusException"
    )
    assert (
        code_of(deploy.get_deployment_instance, deploymentId=ids[0], instanceId="not-an-instance")
        == "InstanceDoesNotExistException"
    )
    assert (
        code_of(deploy.get_deployment_target, deploymentId=ids[0], targetId="not-a-target")
        == "DeploymentTargetDoesNotExistException"
    )
    assert (
        code_of(raw.list_deployment_targets, deploymentId=ids[0], targetFilters={"Color": ["x"]})
        == "InvalidTargetFilterNameException"
    )
    assert (
        code_of(
            deploy.put_lifecycle_event_hook_execution_status,
            deploymentId=ids[0],
            lifecycleEventHookExecutionId="hook-1",
            status="Succeeded",
        )
        == "UnsupportedActionForDeploymentTypeException"
    )


def test_deployments_are_private_to_their_account(forgeline: Any, deploy: Any) -> None:
    application, group = nobody_group(deploy)
    deployment_id = deploy.create_deployment(
        applicationName=application, deploymentGroupName=group, revision=s3_revision("p.zip")
    )["deploymentId"]
    other = forgeline.cli("accounts", "create", "--name", unique("other"))
    assert other.returncode == 0, other.stderr
    created = json.loads(other.stdout)
    key = created["accessKeyId"], created["secretAccessKey"]
    stranger = forgeline.client("codedeploy", credentials=key)
    assert code_of(stranger.get_deployment, deploymentId=deployment_id) == (
        "DeploymentDoesNotExistException"
    )
    assert deployment_id not in stranger.list_deployments()["deployments"]
