"""In-place deployments for real: the example HTTP service (examples/hello-service) goes out
through CodeDeploy's API to a fleet of `forgeline agent` processes on this machine, each
with its own root and port, and the tests watch what the hosts and the API show.

These run once (on the suite's Postgres pass): a deployment's rules are the pure
orchestrator's, unit-tested without I/O; what is proved here is the whole path through
the server, the worker, the agents and the hosts.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import http.server
import json
import signal
import stat
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from forgeline.core.events import EventReader, to_eventbridge
from tests.integration.codedeploy.fleet import (
    LIFECYCLE,
    FleetAgent,
    finished,
    fleet,
    targets,
    upload_release,
    wait_until,
)
from tests.support.server import ForgelineServer, free_port

pytestmark = pytest.mark.db("postgres")

APP = "hello"
BUCKET = "hello-releases"
ROLE = "arn:aws:iam::123456789012:role/CodeDeployRole"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ForgelineServer]:
    env = {
        "FORGELINE_TLS_PORT": str(free_port()),
        # A killed agent is noticed within seconds, not minutes (silence plus a poll's wait).
        "FORGELINE_CODEDEPLOY_AGENT_SILENCE_SECONDS": "4",
        "FORGELINE_CODEDEPLOY_POLL_SECONDS": "2",
    }
    server = ForgelineServer(tmp_path_factory.mktemp("deployments"), extra_env=env)
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def codedeploy(server: ForgelineServer) -> Any:
    client = server.client("codedeploy")
    client.create_application(applicationName=APP, computePlatform="Server")
    s3 = server.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture(scope="module")
def hosts(
    server: ForgelineServer, codedeploy: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[FleetAgent]]:
    """Four agents, tagged for the `web` deployment group."""
    root = tmp_path_factory.mktemp("fleet")
    with fleet(server, root, "web-", 4, {"Role": "web"}) as agents:
        yield agents


def group(codedeploy: Any, name: str, config: str, **extra: Any) -> str:
    with contextlib.suppress(codedeploy.exceptions.DeploymentGroupAlreadyExistsException):
        codedeploy.create_deployment_group(
            applicationName=APP,
            deploymentGroupName=name,
            serviceRoleArn=ROLE,
            deploymentConfigName=config,
            onPremisesInstanceTagFilters=[
                {"Key": "Role", "Value": extra.pop("role", "web"), "Type": "KEY_AND_VALUE"}
            ],
            **extra,
        )
        return name
    codedeploy.update_deployment_group(
        applicationName=APP, currentDeploymentGroupName=name, deploymentConfigName=config, **extra
    )
    return name


def release(server: ForgelineServer, version: str, **options: Any) -> dict[str, Any]:
    return upload_release(server, BUCKET, version, **options)


def deploy(codedeploy: Any, group_name: str, revision: dict[str, Any], **extra: Any) -> str:
    return codedeploy.create_deployment(
        applicationName=APP, deploymentGroupName=group_name, revision=revision, **extra
    )["deploymentId"]


def most_at_once(instances: dict[str, dict[str, Any]]) -> int:
    """The largest number of instances whose lifecycles overlapped in time."""
    spans = []
    for target in instances.values():
        times = [
            (event["startTime"], event["endTime"])
            for event in target["lifecycleEvents"]
            if "startTime" in event and "endTime" in event
        ]
        if times:
            spans.append((min(t[0] for t in times), max(t[1] for t in times)))
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


def test_half_at_a_time_installs_the_service_on_every_host(server, codedeploy, hosts):
    name = group(codedeploy, "web", "CodeDeployDefault.HalfAtATime")
    deployment_id = deploy(codedeploy, name, release(server, "v1"))
    waiter = codedeploy.get_waiter("deployment_successful")
    waiter.wait(deploymentId=deployment_id, WaiterConfig={"Delay": 1, "MaxAttempts": 120})

    info = codedeploy.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
    assert info["deploymentOverview"]["Succeeded"] == 4
    assert info["deploymentConfigName"] == "CodeDeployDefault.HalfAtATime"
    assert all(host.answer() == "hello-service v1" for host in hosts)
    server_py = hosts[0].destination_root / "opt" / "hello-service" / "server.py"
    assert stat.S_IMODE(server_py.stat().st_mode) == 0o755  # the appspec's permissions
    instances = targets(codedeploy, deployment_id)
    assert set(instances) == {host.name for host in hosts}
    assert most_at_once(instances) <= 2
    for target in instances.values():
        events = target["lifecycleEvents"]
        assert [event["lifecycleEventName"] for event in events] == LIFECYCLE
        # The first revision on a host has no previous one to stop.
        assert events[0]["status"] == "Skipped"
        assert [event["status"] for event in events[1:]] == ["Succeeded"] * 6
    record = hosts[0].log.read_text()
    assert "running ValidateService" in record

    summary = codedeploy.get_deployment_instance(deploymentId=deployment_id, instanceId="web-0")
    assert summary["instanceSummary"]["status"] == "Succeeded"
    listed = codedeploy.list_deployments(applicationName=APP, deploymentGroupName=name)
    assert deployment_id in listed["deployments"]
    group_info = codedeploy.get_deployment_group(applicationName=APP, deploymentGroupName=name)
    assert group_info["deploymentGroupInfo"]["lastSuccessfulDeployment"]["deploymentId"] == (
        deployment_id
    )

    reader = EventReader(f"test-{deployment_id}", server.database_url)
    events = []
    while batch := reader.read(limit=1000, source="aws.codedeploy"):
        events += [
            to_eventbridge(e) for e in batch if e.detail.get("deploymentId") == deployment_id
        ]
    deployment_states = [
        e["detail"]["state"]
        for e in events
        if e["detail-type"] == "CodeDeploy Deployment State-change Notification"
    ]
    assert deployment_states == ["START", "SUCCESS"]
    instance_states = sorted(
        (e["detail"]["instanceId"], e["detail"]["state"])
        for e in events
        if e["detail-type"] == "CodeDeploy Instance State-change Notification"
    )
    assert instance_states == sorted(
        (host.name, state) for host in hosts for state in ("START", "SUCCESS")
    )
    assert all(e["detail"]["application"] == APP for e in events)


def test_failed_validation_rolls_back_to_the_last_good_revision(server, codedeploy, hosts):
    name = group(
        codedeploy,
        "web",
        "CodeDeployDefault.OneAtATime",
        autoRollbackConfiguration={"enabled": True, "events": ["DEPLOYMENT_FAILURE"]},
    )
    good = release(server, "v2")
    finished(codedeploy, deploy(codedeploy, name, good))
    assert all(host.answer() == "hello-service v2" for host in hosts)

    bad_id = deploy(codedeploy, name, release(server, "v3", validate_exit=3))
    bad = finished(codedeploy, bad_id)
    assert bad["status"] == "Failed"
    assert bad["errorInformation"]["code"] == "HEALTH_CONSTRAINTS"
    instances = targets(codedeploy, bad_id)
    failed = [t for t in instances.values() if t["status"] == "Failed"]
    assert len(failed) == 1  # one at a time: the first failure ends it
    validate = failed[0]["lifecycleEvents"][-1]
    assert validate["lifecycleEventName"] == "ValidateService"
    assert validate["diagnostics"]["errorCode"] == "ScriptFailed"
    assert validate["diagnostics"]["scriptName"] == "scripts/validate.sh"
    assert "validation refused" in validate["diagnostics"]["logTail"]
    assert sorted(t["status"] for t in instances.values()) == ["Failed"] + ["Skipped"] * 3

    rollback_id = bad["rollbackInfo"]["rollbackDeploymentId"]
    rollback = finished(codedeploy, rollback_id)
    assert rollback["status"] == "Succeeded"
    assert rollback["creator"] == "codeDeployRollback"
    assert rollback["rollbackInfo"]["rollbackTriggeringDeploymentId"] == bad_id
    assert rollback["revision"]["s3Location"]["key"] == good["s3Location"]["key"]
    assert all(host.answer() == "hello-service v2" for host in hosts)


def test_custom_host_count_keeps_three_healthy(server, codedeploy, hosts):
    config = f"KeepThree-{uuid.uuid4().hex[:6]}"
    codedeploy.create_deployment_config(
        deploymentConfigName=config, minimumHealthyHosts={"type": "HOST_COUNT", "value": 3}
    )
    name = group(
        codedeploy,
        "web",
        "CodeDeployDefault.AllAtOnce",
        autoRollbackConfiguration={"enabled": False},
    )
    # The deployment's own configuration overrides the group's.
    deployment_id = deploy(codedeploy, name, release(server, "v4"), deploymentConfigName=config)
    with pytest.raises(ClientError) as in_use:
        codedeploy.delete_deployment_config(deploymentConfigName=config)
    assert in_use.value.response["Error"]["Code"] == "DeploymentConfigInUseException"
    info = finished(codedeploy, deployment_id)
    assert info["status"] == "Succeeded", info
    assert info["deploymentConfigName"] == config
    assert most_at_once(targets(codedeploy, deployment_id)) == 1
    assert all(host.answer() == "hello-service v4" for host in hosts)
    codedeploy.delete_deployment_config(deploymentConfigName=config)  # finished: free to go


def test_stop_with_rollback_returns_the_fleet_to_the_last_good_revision(server, codedeploy, hosts):
    name = group(codedeploy, "web", "CodeDeployDefault.AllAtOnce")
    slow_id = deploy(codedeploy, name, release(server, "v5", slow_hook=8))
    wait_until(
        lambda: (
            codedeploy.get_deployment(deploymentId=slow_id)["deploymentInfo"]["deploymentOverview"][
                "InProgress"
            ]
            == 4
        ),
        30,
        what="all four hosts to be deploying",
    )
    stopped = codedeploy.stop_deployment(deploymentId=slow_id, autoRollbackEnabled=True)
    assert stopped["status"] == "Succeeded"
    info = codedeploy.get_deployment(deploymentId=slow_id)["deploymentInfo"]
    assert info["status"] == "Stopped"
    assert info["errorInformation"]["code"] == "MANUAL_STOP"
    with pytest.raises(ClientError) as refused:
        codedeploy.stop_deployment(deploymentId=slow_id)
    assert refused.value.response["Error"]["Code"] == "DeploymentAlreadyCompletedException"

    rollback = finished(codedeploy, info["rollbackInfo"]["rollbackDeploymentId"], timeout=180)
    assert rollback["status"] == "Succeeded", rollback
    assert all(host.answer() == "hello-service v4" for host in hosts)


def test_an_alarm_in_alarm_state_stops_the_deployment(server, codedeploy, hosts):
    cloudwatch = server.client("cloudwatch")
    alarm = f"hello-errors-{uuid.uuid4().hex[:6]}"
    cloudwatch.put_metric_alarm(
        AlarmName=alarm,
        MetricName="Errors",
        Namespace="Hello",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    name = group(
        codedeploy,
        "web",
        "CodeDeployDefault.OneAtATime",
        alarmConfiguration={"enabled": True, "alarms": [{"name": alarm}]},
    )
    deployment_id = deploy(codedeploy, name, release(server, "v6", slow_hook=8))
    wait_until(
        lambda: (
            codedeploy.get_deployment(deploymentId=deployment_id)["deploymentInfo"][
                "deploymentOverview"
            ]["InProgress"]
            == 1
        ),
        30,
        what="the first host to be deploying",
    )
    cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="errors spiked")
    info = finished(codedeploy, deployment_id, timeout=15)
    assert info["status"] == "Stopped"
    assert info["errorInformation"]["code"] == "ALARM_ACTIVE"
    assert alarm in info["errorInformation"]["message"]
    cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="OK", StateReason="recovered")
    group(codedeploy, "web", "CodeDeployDefault.OneAtATime", alarmConfiguration={"enabled": False})


def test_a_killed_agent_fails_its_instance(server, codedeploy, tmp_path):
    with fleet(server, tmp_path, "lonely-", 1, {"Role": "lonely"}) as (host,):
        name = group(codedeploy, "lonely", "CodeDeployDefault.AllAtOnce", role="lonely")
        deployment_id = deploy(codedeploy, name, release(server, "v1", slow_hook=60))
        wait_until(
            lambda: any(
                event.get("lifecycleEventName") == "BeforeInstall"
                and event.get("status") == "InProgress"
                for event in targets(codedeploy, deployment_id)
                .get(host.name, {})
                .get("lifecycleEvents", [])
            ),
            60,
            what="BeforeInstall to run",
        )
        killed_at = dt.datetime.now(dt.UTC)
        host.kill()
        info = finished(codedeploy, deployment_id, timeout=30)
    assert info["status"] == "Failed"
    assert info["completeTime"] - killed_at < dt.timedelta(seconds=20)
    target = targets(codedeploy, deployment_id)[host.name]
    assert target["status"] == "Failed"
    before_install = target["lifecycleEvents"][2]
    assert before_install["status"] == "Failed"


def test_create_deployment_refuses_a_second_active_deployment(server, codedeploy, hosts):
    name = group(codedeploy, "web", "CodeDeployDefault.OneAtATime")
    first = deploy(codedeploy, name, release(server, "v7"))
    with pytest.raises(ClientError) as refused:
        deploy(codedeploy, name, release(server, "v8"))
    assert refused.value.response["Error"]["Code"] == "DeploymentLimitExceededException"
    assert first in refused.value.response["Error"]["Message"]
    assert finished(codedeploy, first)["status"] == "Succeeded"


class _Hooks(http.server.BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((dict(self.headers.items()), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_group_triggers_deliver_signed_webhooks(server, codedeploy, hosts):
    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hooks)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{receiver.server_address[1]}/codedeploy"
    try:
        name = group(
            codedeploy,
            "web",
            "CodeDeployDefault.AllAtOnce",
            triggerConfigurations=[
                {
                    "triggerName": "to-chat",
                    "triggerTargetArn": url,
                    "triggerEvents": ["DeploymentStart", "DeploymentSuccess", "InstanceSuccess"],
                }
            ],
        )
        deployment_id = deploy(codedeploy, name, release(server, "v9"))
        assert finished(codedeploy, deployment_id)["status"] == "Succeeded"
        wait_until(lambda: len(_Hooks.received) >= 6, 30, what="six webhook deliveries")
    finally:
        receiver.shutdown()
        group(codedeploy, "web", "CodeDeployDefault.AllAtOnce", triggerConfigurations=[])
    account = codedeploy.get_on_premises_instance(instanceName="web-0")["instanceInfo"][
        "instanceArn"
    ].split(":")[4]
    secret = server.cli(
        "deploy",
        "trigger-secret",
        "--account-id",
        account,
        "--application-name",
        APP,
        "--deployment-group-name",
        "web",
    ).stdout.strip()
    events = []
    for headers, body in _Hooks.received:
        expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        assert headers["X-Forgeline-Signature"] == expected
        message = json.loads(body)
        assert message["deploymentId"] == deployment_id
        assert message["eventTriggerName"] == "to-chat"
        events.append(headers["X-Forgeline-Event"])
    assert sorted(events) == ["DeploymentStart", "DeploymentSuccess"] + ["InstanceSuccess"] * 4


def test_a_server_killed_mid_deployment_loses_nothing(server, codedeploy, hosts):
    name = group(codedeploy, "web", "CodeDeployDefault.OneAtATime")
    deployment_id = deploy(codedeploy, name, release(server, "v10", slow_hook=2))
    wait_until(
        lambda: (
            codedeploy.get_deployment(deploymentId=deployment_id)["deploymentInfo"][
                "deploymentOverview"
            ]["Succeeded"]
            >= 1
        ),
        60,
        what="the first host to be done",
    )
    server.end_processes(signal.SIGKILL)
    server.start()
    client = server.client("codedeploy")
    info = finished(client, deployment_id)
    assert info["status"] == "Succeeded", json.dumps(
        [info, targets(client, deployment_id)], default=str, indent=1
    )
    assert info["deploymentOverview"]["Succeeded"] == 4
    assert all(host.answer() == "hello-service v10" for host in hosts)
