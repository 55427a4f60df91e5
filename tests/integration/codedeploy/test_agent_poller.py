"""The agent loop's decisions, with a recording command-service client (the wire itself is
covered by test_agent_server.py against a live server): skipped commands, no-op
completion, a result kept until the server takes it, one it refuses for good, and a
command that names another host."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from forgeline.codedeploy.agent.client import CommandServiceError, HostCommand
from forgeline.codedeploy.agent.command_executor import CommandExecutor
from forgeline.codedeploy.agent.config import AgentConfig
from forgeline.codedeploy.agent.layout import Layout
from forgeline.codedeploy.agent.poller import Agent
from forgeline.codedeploy.agent.results import CommandResult, ErrorCode

pytestmark = pytest.mark.no_db

HOST = "arn:aws:iam::123456789012:user/codedeploy/web-1"


def signed(text: str) -> str:
    """Signed as the command service signs (any signer: this agent pins none)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "signer")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    builder = (
        pkcs7.PKCS7SignatureBuilder().set_data(text.encode()).add_signer(cert, key, hashes.SHA256())
    )
    return builder.sign(serialization.Encoding.PEM, [pkcs7.PKCS7Options.Binary]).decode()


class RecordingClient:
    def __init__(self, bundle: Path, ack: str = "InProgress", sign: bool = False) -> None:
        self.bundle = bundle
        self.ack = ack
        self.sign = sign
        self.commands: list[HostCommand] = []
        self.completed: list[tuple[str, CommandResult]] = []
        self.complete_errors: list[CommandServiceError] = []
        self.acks: list[tuple[str, bool]] = []

    def poll_host_command(self, host_identifier: str) -> HostCommand | None:
        return self.commands.pop(0) if self.commands else None

    def get_deployment_specification(self, execution_id: str, host: str) -> tuple[str, str, str]:
        spec = {
            "DeploymentId": execution_id,
            "DeploymentGroupId": "group-1",
            "DeploymentGroupName": "web",
            "ApplicationName": "shop",
            "Revision": {
                "RevisionType": "Local Directory",
                "LocalRevision": {"Location": str(self.bundle), "BundleType": "directory"},
            },
        }
        if self.sign:
            return "CodeDeploy", "PKCS7/JSON", signed(json.dumps(spec))
        # TEXT/JSON is refused outside deploy-local: the agent must say so, not run it.
        return "CodeDeploy", "TEXT/JSON", json.dumps(spec)

    def put_host_command_acknowledgement(self, command_id: str, is_noop: bool) -> str:
        self.acks.append((command_id, is_noop))
        return self.ack

    def put_host_command_complete(self, command_id: str, result: CommandResult) -> None:
        if self.complete_errors:
            raise self.complete_errors.pop(0)
        self.completed.append((command_id, result))


def command(name: str, number: int = 1, host: str = HOST) -> HostCommand:
    return HostCommand(f"hc-{number}", host, f"d-EXEC{number:05d}", name, number)


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    tree = tmp_path / "bundle"
    tree.mkdir()
    (tree / "appspec.yml").write_text("version: 0.0\nos: linux\n")
    return tree


def agent_for(tmp_path: Path, client: RecordingClient) -> Agent:
    config = AgentConfig(
        endpoint="http://127.0.0.1:1",
        region="us-east-1",
        host_identifier=HOST,
        root_dir=tmp_path / "root",
        log_dir=tmp_path / "logs",
    )
    executor = CommandExecutor(Layout(config.root_dir))
    return Agent(config, client, executor)  # type: ignore[arg-type]


def test_a_text_specification_from_a_server_is_refused_and_reported(tmp_path, bundle):
    client = RecordingClient(bundle)
    client.commands.append(command("DownloadBundle"))
    assert agent_for(tmp_path, client).run_once()
    ((command_id, result),) = client.completed
    assert command_id == "hc-1"
    assert result.error_code == ErrorCode.UNKNOWN_ERROR
    assert "accepted only locally" in result.message


@pytest.mark.parametrize("status", ["Succeeded", "Failed"])
def test_a_command_the_server_already_settled_is_skipped(tmp_path, bundle, status):
    client = RecordingClient(bundle, ack=status)
    client.commands.append(command("Install"))
    agent_for(tmp_path, client).run_once()
    assert client.completed == []


def test_a_hook_with_no_scripts_is_acknowledged_as_a_no_op(tmp_path, bundle):
    client = RecordingClient(bundle, sign=True)
    agent = agent_for(tmp_path, client)
    client.commands.append(command("DownloadBundle"))
    agent.run_once()
    client.ack = "Failed"  # the server gave up on it: a no-op is completed anyway
    client.commands.append(command("ValidateService"))
    agent.run_once()
    assert client.acks == [("hc-1", False), ("hc-1", True)]
    assert [result.message for _, result in client.completed] == [
        "Succeeded:",
        "Succeeded: CompletedNoopCommand",
    ]


def test_a_result_is_kept_until_the_server_takes_it(tmp_path, bundle):
    client = RecordingClient(bundle)
    client.commands.append(command("ValidateService"))
    client.complete_errors.append(CommandServiceError("ServerException", "busy", 500))
    agent = agent_for(tmp_path, client)
    with pytest.raises(CommandServiceError):
        agent.run_once()
    assert client.completed == []
    agent.deliver_undelivered()
    ((command_id, result),) = client.completed
    assert command_id == "hc-1" and result.error_code == ErrorCode.UNKNOWN_ERROR
    agent.deliver_undelivered()
    assert len(client.completed) == 1  # delivered once


def test_a_result_the_server_refuses_for_good_is_dropped(tmp_path, bundle):
    client = RecordingClient(bundle)
    client.commands.append(command("ValidateService"))
    client.complete_errors.append(CommandServiceError("ClientException", "no such command", 400))
    agent = agent_for(tmp_path, client)
    agent.run_once()
    agent.deliver_undelivered(after_restart=True)
    assert client.completed == []


def test_a_command_for_another_host_is_ignored(tmp_path, bundle):
    client = RecordingClient(bundle)
    client.commands.append(command("Install", host="arn:aws:iam::123456789012:user/other"))
    agent_for(tmp_path, client).run_once()
    assert client.acks == [] and client.completed == []


def test_a_command_cut_off_is_reported_failed_after_restart(tmp_path, bundle):
    client = RecordingClient(bundle)
    agent = agent_for(tmp_path, client)
    agent.tracker.begin(command("BeforeInstall", 7))
    agent.deliver_undelivered()  # not a restart: it may still be running
    assert client.completed == []
    agent.deliver_undelivered(after_restart=True)
    ((command_id, result),) = client.completed
    assert command_id == "hc-7" and result.error_code == ErrorCode.FAILED_AFTER_RESTART
