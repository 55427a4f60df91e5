"""The agents' command service against a live server, over HTTPS with the server's CA file,
driven as AWS's agent drives it: SigV4-signed JSON with signing name codedeploy-commands.

Each test registers on-premises instances through CodeDeploy's API, mints each its IAM
user's access key, and queues commands with the driver's own `queue.enqueue_command` on
the server's database (this process shares the server's state store and, where Redis
answers, its fan-out, so a command queued here rings the server's waiting polls).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import shutil
import ssl
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from forgeline.codedeploy.agent import pkcs7
from forgeline.codedeploy.commands import handout, queue, signing
from forgeline.codedeploy.orchestrator.rollout import MinimumHealthyHosts
from forgeline.codedeploy.orchestrator.state import new_deployment
from forgeline.codedeploy.tables.deployments import Deployment, HostCommand, new_deployment_id
from forgeline.core.auth import keys
from forgeline.core.auth.tables import AccessKey
from forgeline.core.db import dispose_engines, session_scope, utcnow
from forgeline.core.events.fanout import close_fanouts
from forgeline.core.lifecycle import server_key
from forgeline.core.settings import Settings, get_settings, reset_settings_cache
from tests.support import databases
from tests.support.server import ForgelineServer, free_port
from tests.support.signing import signed_headers

TARGET = "CodeDeployCommandService_v20141006"
POLL_SECONDS = 2.0
REGION = "us-east-1"
AGENT_VERSION = "OFFICIAL_1.8.1-10_deb"
S3_REVISION = {
    "revisionType": "S3",
    "s3Location": {"bucket": "releases", "key": "app/v1.tgz", "bundleType": "tgz"},
}


def _redis_url() -> str | None:
    url = f"{databases.REDIS_URL}/5"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError:
        return None
    return url


FANOUT_URL = _redis_url()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ForgelineServer]:
    env = {
        "FORGELINE_TLS_PORT": str(free_port()),
        "FORGELINE_CODEDEPLOY_POLL_SECONDS": str(POLL_SECONDS),
    }
    if FANOUT_URL is not None:
        env["FORGELINE_EVENTS_FANOUT_URL"] = FANOUT_URL
    server = ForgelineServer(tmp_path_factory.mktemp("commands"), extra_env=env)
    try:
        server.start()
        _wait_for_https(server)
        yield server
    finally:
        server.stop()


def _wait_for_https(server: ForgelineServer, timeout: float = 10.0) -> None:
    """The HTTPS port starts serving just after the HTTP one that `start` waited for."""
    url = f"https://127.0.0.1:{server.env['FORGELINE_TLS_PORT']}/health"
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(url, verify=str(server.data_dir / "tls" / "ca.pem"), timeout=1)
            return
        except httpx.ConnectError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@contextlib.contextmanager
def _state_of(server: ForgelineServer) -> Iterator[Settings]:
    """This process on the server's database, key and fan-out."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FORGELINE_DATA_DIR", str(server.data_dir))
        patch.setenv("FORGELINE_DATABASE_URL", server.database_url)
        for name in ("FORGELINE_EVENTS_FANOUT_URL", "FORGELINE_BROKER_URL"):
            if name in server.env:
                patch.setenv(name, server.env[name])
        reset_settings_cache()
        try:
            yield get_settings()
        finally:
            close_fanouts()
            dispose_engines()
    reset_settings_cache()


@pytest.fixture(scope="module")
def state(server: ForgelineServer) -> Iterator[Settings]:
    with _state_of(server) as settings:
        yield settings


# -- agents --------------------------------------------------------------------------------


class Agent:
    """Signs and sends command-service calls as one host's agent does."""

    def __init__(
        self,
        server: ForgelineServer,
        credentials: tuple[str, str],
        account_id: str,
        instance_name: str,
    ) -> None:
        self.url = f"https://127.0.0.1:{server.env['FORGELINE_TLS_PORT']}"
        self.ca_file = server.data_dir / "tls" / "ca.pem"
        self.credentials = credentials
        self.account_id = account_id
        self.instance_name = instance_name
        # The instance is registered with this IAM user, whose key the agent signs with.
        self.host = keys.principal_arn(account_id, instance_name)

    def call(self, operation: str, body: dict[str, Any]) -> httpx.Response:
        raw = json.dumps(body).encode()
        headers = signed_headers(
            self.url,
            raw,
            target=f"{TARGET}.{operation}",
            signing_name="codedeploy-commands",
            credentials=self.credentials,
            region=REGION,
            extra={"x-amz-codedeploy-agent-version": AGENT_VERSION},
        )
        return httpx.post(
            self.url + "/", content=raw, headers=headers, verify=str(self.ca_file), timeout=30
        )

    def ok(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.call(operation, body)
        assert response.status_code == 200, response.text
        return response.json()

    def poll(self, host: str | None = None) -> httpx.Response:
        return self.call("PollHostCommand", {"HostIdentifier": host or self.host})

    def ack(self, command_id: str) -> dict[str, Any]:
        diagnostics = {"Format": "JSON", "Payload": json.dumps({"IsCommandNoop": False})}
        return self.ok(
            "PutHostCommandAcknowledgement",
            {"HostCommandIdentifier": command_id, "Diagnostics": diagnostics},
        )

    def complete(self, command_id: str, status: str, code: int = 0, message: str = "") -> None:
        payload = {"error_code": code, "script_name": "", "message": message, "log": ""}
        self.ok(
            "PutHostCommandComplete",
            {
                "HostCommandIdentifier": command_id,
                "CommandStatus": status,
                "Diagnostics": {"Format": "JSON", "Payload": json.dumps(payload)},
            },
        )


def _client_error(response: httpx.Response, fragment: str) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["__type"] == "ClientException", body
    assert fragment in body["message"], body["message"]


def _account_of(session: Any, access_key_id: str) -> str:
    return session.get(AccessKey, access_key_id).account_id


@pytest.fixture
def make_agent(server: ForgelineServer, state: Settings) -> Callable[..., Agent]:
    """A new registered instance of the admin's account (or of `account_id`, with its own
    admin key) and its agent."""

    def make(account_id: str | None = None, register: bool = True) -> Agent:
        user = f"host-{uuid.uuid4().hex[:8]}"
        with session_scope() as session:
            admin_key = server.admin_credentials()
            if account_id is None:
                account_id = _account_of(session, admin_key[0])
            else:
                admin_key = keys.create_access_key(
                    session, account_id, "admin", server_key=server_key(state)
                )
            credentials = keys.create_access_key(
                session, account_id, user, server_key=server_key(state)
            )
        agent = Agent(server, credentials, account_id, user)
        if register:
            server.client("codedeploy", admin_key, REGION).register_on_premises_instance(
                instanceName=user, iamUserArn=agent.host
            )
        return agent

    return make


def _deployment(account_id: str, **values: Any) -> Deployment:
    defaults: dict[str, Any] = {
        "id": new_deployment_id(),
        "account_id": account_id,
        "region": REGION,
        "application_name": "shop",
        "application_id": str(uuid.uuid4()),
        "deployment_group_name": "web",
        "deployment_group_id": str(uuid.uuid4()),
        "deployment_config_name": "CodeDeployDefault.OneAtATime",
        "deployment_status": "InProgress",
        "revision": S3_REVISION,
        "request": {"fileExistsBehavior": "OVERWRITE"},
        # A machine state that targets no instance: the driver ignores these commands' results.
        "state": new_deployment(
            "unused", "CodeDeployDefault.OneAtATime", MinimumHealthyHosts("HOST_COUNT", 0)
        ).to_document(),
    }
    defaults.update(values)
    return Deployment(**defaults)


def enqueue(agent: Agent, *names: str) -> list[str]:
    """Queue commands for the agent's instance, in a new deployment, as the driver does."""
    with session_scope() as session:
        deployment = _deployment(agent.account_id)
        session.add(deployment)
        session.flush()
        ids = [
            queue.enqueue_command(session, deployment, agent.instance_name, name).id
            for name in names
        ]
    return ids


def command_row(command_id: str) -> HostCommand:
    with session_scope(readonly=True) as session:
        row = session.get(HostCommand, command_id)
        assert row is not None
        return row


def poll_in_background(agent: Agent) -> tuple[Any, Callable[[], float]]:
    """Start a poll; returns its future and a function giving when it returned."""
    finished: list[float] = []

    def run() -> httpx.Response:
        response = agent.poll()
        finished.append(time.monotonic())
        return response

    pool = ThreadPoolExecutor(1)
    future = pool.submit(run)
    pool.shutdown(wait=False)
    return future, lambda: finished[0]


# -- TLS -----------------------------------------------------------------------------------


def test_the_agents_get_over_tls_trusts_the_one_ca_file(server: ForgelineServer) -> None:
    url = f"https://127.0.0.1:{server.env['FORGELINE_TLS_PORT']}/"
    ca_file = server.data_dir / "tls" / "ca.pem"
    # AWS's agent starts with `GET /` over TLS; any HTTP status will do, trust is the point.
    assert httpx.get(url, verify=str(ca_file), timeout=10).status_code < 500
    with pytest.raises(httpx.ConnectError):
        httpx.get(url, verify=ssl.create_default_context(), timeout=10)
    # The server names the file at start.
    assert f"Its CA file: {ca_file}" in server.log_path.read_text()


# -- polling -------------------------------------------------------------------------------


def test_an_empty_poll_answers_nothing_after_the_long_poll(
    make_agent: Callable[..., Agent],
) -> None:
    agent = make_agent()
    started = time.monotonic()
    response = agent.poll()
    elapsed = time.monotonic() - started
    assert response.status_code == 200 and response.json() == {}
    assert POLL_SECONDS - 0.2 <= elapsed < POLL_SECONDS + 2


@pytest.mark.skipif(FANOUT_URL is None, reason="no Redis answers: rings cannot cross processes")
def test_a_queued_command_reaches_a_waiting_poll_within_200_ms(
    make_agent: Callable[..., Agent],
) -> None:
    agent = make_agent()
    agent.poll()  # the first poll of a host also warms the server's paths up
    future, returned_at = poll_in_background(agent)
    time.sleep(0.5)  # the poll is waiting now
    assert not future.done()
    (command_id,) = enqueue(agent, "DownloadBundle")
    committed = time.monotonic()
    response = future.result(timeout=10)
    assert response.status_code == 200, response.text
    command = response.json()["HostCommand"]
    assert returned_at() - committed <= 0.2, f"{returned_at() - committed:.3f} s"
    assert command["HostCommandIdentifier"] == command_id
    assert command["HostIdentifier"] == agent.host
    assert command["CommandName"] == "DownloadBundle"
    assert isinstance(command["Nonce"], int)
    assert command_row(command_id).status == "InProgress"


def test_one_command_at_a_time_and_a_completion_frees_the_host(
    make_agent: Callable[..., Agent],
) -> None:
    agent = make_agent()
    first, second = enqueue(agent, "DownloadBundle", "Install")
    taken = agent.poll().json()["HostCommand"]
    assert taken["HostCommandIdentifier"] == first
    assert agent.ack(first) == {"CommandStatus": "InProgress"}
    assert command_row(first).acknowledged_at is not None

    # The agent keeps polling while its command runs: it gets nothing more meanwhile.
    future, returned_at = poll_in_background(agent)
    time.sleep(0.5)
    assert not future.done()
    assert command_row(second).status == "Pending"

    # The completion (in the server) rings the waiting poll, which takes the next one.
    agent.complete(first, "Succeeded")
    completed = time.monotonic()
    response = future.result(timeout=10)
    assert response.json()["HostCommand"]["HostCommandIdentifier"] == second
    assert returned_at() - completed <= 0.2, f"{returned_at() - completed:.3f} s"
    assert command_row(first).status == "Succeeded"


def test_a_command_whose_handout_was_lost_is_handed_out_again(
    make_agent: Callable[..., Agent],
) -> None:
    agent = make_agent()
    (first,) = enqueue(agent, "DownloadBundle")
    assert agent.poll().json()["HostCommand"]["HostCommandIdentifier"] == first
    # The answer never reached the agent (say the server died as it went out): no ack.
    assert agent.poll().json() == {}  # soon after, the command still counts as running
    with session_scope() as session:
        row = session.get(HostCommand, first)
        assert row is not None
        row.handed_out_at = utcnow() - dt.timedelta(seconds=handout.UNACKNOWLEDGED_SECONDS + 1)
    again = agent.poll().json()["HostCommand"]
    assert again["HostCommandIdentifier"] == first
    assert agent.ack(first) == {"CommandStatus": "InProgress"}
    assert agent.poll().json() == {}  # acknowledged: never handed out a third time


def test_waiting_polls_do_not_hold_the_api_threads(
    server: ForgelineServer, make_agent: Callable[..., Agent]
) -> None:
    # More waiting polls than the server has API threads (40 by default).
    agents = [make_agent() for _ in range(3)]
    with ThreadPoolExecutor(48) as pool:
        futures = [pool.submit(agents[i % 3].poll) for i in range(48)]
        time.sleep(0.8)
        started = time.monotonic()
        server.client("codedeploy").list_applications()
        assert time.monotonic() - started < 1.0
        assert all(future.result(timeout=30).status_code == 200 for future in futures)


# -- the specification ---------------------------------------------------------------------


def test_the_specification_is_signed_pkcs7_carrying_the_deployment(
    server: ForgelineServer, state: Settings, make_agent: Callable[..., Agent], tmp_path: Path
) -> None:
    agent = make_agent()
    (command_id,) = enqueue(agent, "DownloadBundle")
    command = agent.poll().json()["HostCommand"]
    answer = agent.ok(
        "GetDeploymentSpecification",
        {"DeploymentExecutionId": command["DeploymentExecutionId"], "HostIdentifier": agent.host},
    )
    assert answer["DeploymentSystem"] == "CodeDeploy"
    envelope = answer["DeploymentSpecification"]["GenericEnvelope"]
    assert envelope["Format"] == "PKCS7/JSON"
    assert envelope["Payload"].startswith("-----BEGIN PKCS7-----")

    spec = _openssl_verified(envelope["Payload"], tmp_path)
    deployment_id = command_row(command_id).deployment_id
    assert spec["DeploymentId"] == deployment_id
    assert (spec["ApplicationName"], spec["DeploymentGroupName"]) == ("shop", "web")
    assert spec["Revision"] == {
        "RevisionType": "S3",
        "S3Revision": {"Bucket": "releases", "Key": "app/v1.tgz", "BundleType": "tgz"},
    }
    assert spec["AgentActionOverrides"] == {"AgentOverrides": {"FileExistsBehavior": "OVERWRITE"}}

    # Signed by the server's own signer, kept beside its TLS material.
    cert_file, key_file = signing.signer_files(state)
    assert cert_file.exists() and oct(key_file.stat().st_mode & 0o777) == "0o600"
    trusted = signing.get_signer(state).certificate
    assert json.loads(pkcs7.verify(pkcs7.read_pem(envelope["Payload"]), trusted)) == spec


def _openssl_verified(payload: str, folder: Path) -> dict[str, Any]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("no openssl command on this machine")
    (folder / "spec.pem").write_text(payload)
    verified = subprocess.run(
        [
            openssl,
            "smime",
            "-verify",
            "-noverify",
            "-inform",
            "PEM",
            "-in",
            str(folder / "spec.pem"),
        ],
        capture_output=True,
        timeout=30,
    )
    assert verified.returncode == 0, verified.stderr.decode()
    assert b"Verification successful" in verified.stderr
    return json.loads(verified.stdout)


def test_a_specification_only_for_hosts_of_the_deployment(
    make_agent: Callable[..., Agent],
) -> None:
    agent, bystander = make_agent(), make_agent()
    enqueue(agent, "DownloadBundle")
    execution = agent.poll().json()["HostCommand"]["DeploymentExecutionId"]
    refused = bystander.call(
        "GetDeploymentSpecification",
        {"DeploymentExecutionId": execution, "HostIdentifier": bystander.host},
    )
    _client_error(refused, "has commands for this host")
    malformed = agent.call(
        "GetDeploymentSpecification",
        {"DeploymentExecutionId": "a/b/c/d-NOPE", "HostIdentifier": agent.host},
    )
    _client_error(malformed, "No deployment execution")


# -- outcomes ------------------------------------------------------------------------------


def test_a_second_completion_keeps_the_first(make_agent: Callable[..., Agent]) -> None:
    agent = make_agent()
    (command_id,) = enqueue(agent, "ApplicationStart")
    agent.poll()
    agent.ack(command_id)
    # As AWS's agent reports a failed script: its detailed code, then the generic one.
    agent.complete(command_id, "Failed", code=4, message="Script at specified location failed")
    agent.complete(command_id, "Failed", code=5, message="generic")
    row = command_row(command_id)
    assert row.status == "Failed" and row.completed_at is not None
    assert json.loads(row.diagnostics["Payload"])["error_code"] == 4
    # A late acknowledgement or update hears the final status, so the agent skips it.
    assert agent.ack(command_id) == {"CommandStatus": "Failed"}
    assert agent.ok("PostHostCommandUpdate", {"HostCommandIdentifier": command_id}) == {
        "CommandStatus": "Failed"
    }


def test_progress_updates_are_recorded_and_cancelled_commands_end_quietly(
    state: Settings, make_agent: Callable[..., Agent]
) -> None:
    agent = make_agent()
    first, second = enqueue(agent, "BeforeInstall", "AfterInstall")
    agent.poll()
    assert agent.ok("PostHostCommandUpdate", {"HostCommandIdentifier": first}) == {
        "CommandStatus": "InProgress"
    }
    assert command_row(first).last_update_at is not None
    with session_scope() as session:
        cancelled = queue.cancel_commands(session, command_row(first).deployment_id)
    assert sorted(command.id for command in cancelled) == sorted([first, second])
    assert agent.ack(first) == {"CommandStatus": "Failed"}
    agent.complete(first, "Succeeded")  # ignored: the cancellation was the outcome
    row = command_row(first)
    assert (row.status, row.cancelled_at is not None) == ("Failed", True)
    # Nothing is left for the host.
    assert agent.poll().json() == {}


def test_a_completion_must_be_an_outcome(make_agent: Callable[..., Agent]) -> None:
    agent = make_agent()
    (command_id,) = enqueue(agent, "ValidateService")
    agent.poll()
    refused = agent.call(
        "PutHostCommandComplete", {"HostCommandIdentifier": command_id, "CommandStatus": "Pending"}
    )
    _client_error(refused, "Succeeded or Failed")
    assert command_row(command_id).status == "InProgress"


# -- identity ------------------------------------------------------------------------------


def test_another_hosts_identity_or_commands_are_refused(
    make_agent: Callable[..., Agent],
) -> None:
    agent, other = make_agent(), make_agent()
    (command_id,) = enqueue(other, "DownloadBundle")
    # Naming another host: the key's principal must be the HostIdentifier.
    _client_error(agent.poll(host=other.host), "is not the caller")
    # Another host's command reads as unknown.
    _client_error(
        agent.call("PutHostCommandAcknowledgement", {"HostCommandIdentifier": command_id}),
        "No host command",
    )
    assert command_row(command_id).status == "Pending"
    _client_error(
        agent.call("PutHostCommandAcknowledgement", {"HostCommandIdentifier": "nope"}),
        "No host command",
    )


def test_unregistered_and_deregistered_hosts_are_refused(
    server: ForgelineServer, make_agent: Callable[..., Agent]
) -> None:
    stranger = make_agent(register=False)
    _client_error(stranger.poll(), "No on-premises instance registered")

    agent = make_agent()
    server.client("codedeploy").deregister_on_premises_instance(instanceName=agent.instance_name)
    _client_error(agent.poll(), "No on-premises instance registered")


def test_another_accounts_commands_are_refused(
    state: Settings, make_agent: Callable[..., Agent]
) -> None:
    with session_scope() as session:
        other_account = keys.create_account(session, f"other-{uuid.uuid4().hex[:6]}").id
    agent = make_agent()
    outsider = make_agent(account_id=other_account)
    (command_id,) = enqueue(agent, "DownloadBundle")
    execution = agent.poll().json()["HostCommand"]["DeploymentExecutionId"]
    _client_error(
        outsider.call(
            "PutHostCommandComplete",
            {"HostCommandIdentifier": command_id, "CommandStatus": "Failed"},
        ),
        "No host command",
    )
    _client_error(
        outsider.call(
            "GetDeploymentSpecification",
            {"DeploymentExecutionId": execution, "HostIdentifier": outsider.host},
        ),
        "No deployment execution",
    )
    assert command_row(command_id).status == "InProgress"


def test_the_admin_key_is_no_agent(server: ForgelineServer) -> None:
    commands = server.client("codedeploy-commands")
    with pytest.raises(commands.exceptions.ClientException, match="is not the caller"):
        commands.poll_host_command(HostIdentifier="arn:aws:iam::000000000000:user/web-1")


# -- stopping ------------------------------------------------------------------------------


def test_a_stopping_server_answers_its_waiting_polls_at_once(tmp_path: Path) -> None:
    stopping_server = ForgelineServer(
        tmp_path,
        extra_env={
            "FORGELINE_TLS_PORT": str(free_port()),
            "FORGELINE_CODEDEPLOY_POLL_SECONDS": "30",
        },
    )
    stopping_server.start()
    _wait_for_https(stopping_server)
    try:
        with _state_of(stopping_server) as settings:
            user = "lonely-host"
            with session_scope() as session:
                account = _account_of(session, stopping_server.admin_credentials()[0])
                credentials = keys.create_access_key(
                    session, account, user, server_key=server_key(settings)
                )
        agent = Agent(stopping_server, credentials, account, user)
        stopping_server.client("codedeploy").register_on_premises_instance(
            instanceName=user, iamUserArn=agent.host
        )
        future, _ = poll_in_background(agent)
        time.sleep(0.5)
        assert not future.done()
    finally:
        started = time.monotonic()
        stopping_server.stop()
        stopped_in = time.monotonic() - started
    assert stopped_in < 5, f"the server took {stopped_in:.1f} s to stop"
    assert future.result(timeout=5).json() == {}


def test_the_signer_is_made_once_and_kept(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    first = signing.get_signer(settings).certificate
    signing._signers.clear()  # as another process would, read it from disk
    assert signing.get_signer(settings).certificate == first
    cert_file, key_file = signing.signer_files(settings)
    assert cert_file.parent == tmp_path / "codedeploy"
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
