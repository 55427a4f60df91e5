"""The agent fetches a deployment's specification once for all its lifecycle commands (it
never changes), and fetches again for another deployment or after a failed fetch."""

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

from forgeline.codedeploy.agent.client import HostCommand
from forgeline.codedeploy.agent.command_executor import CommandExecutor
from forgeline.codedeploy.agent.config import AgentConfig
from forgeline.codedeploy.agent.layout import Layout
from forgeline.codedeploy.agent.poller import Agent
from forgeline.codedeploy.agent.results import CommandResult

pytestmark = pytest.mark.no_db

HOST = "arn:aws:iam::123456789012:user/codedeploy/web-1"


def _signed(text: str) -> str:
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


class CountingClient:
    def __init__(self, bundle: Path) -> None:
        self.bundle = bundle
        self.commands: list[HostCommand] = []
        self.fetched: list[str] = []
        self.completed: list[tuple[str, CommandResult]] = []
        self.system = "CodeDeploy"

    def poll_host_command(self, host_identifier: str) -> HostCommand | None:
        return self.commands.pop(0) if self.commands else None

    def get_deployment_specification(self, execution_id: str, host: str) -> tuple[str, str, str]:
        self.fetched.append(execution_id)
        spec = {
            "DeploymentId": execution_id.rsplit("/", 1)[-1],
            "DeploymentGroupId": "group-1",
            "DeploymentGroupName": "web",
            "ApplicationName": "shop",
            "Revision": {
                "RevisionType": "Local Directory",
                "LocalRevision": {"Location": str(self.bundle), "BundleType": "directory"},
            },
        }
        return self.system, "PKCS7/JSON", _signed(json.dumps(spec))

    def put_host_command_acknowledgement(self, command_id: str, is_noop: bool) -> str:
        return "InProgress"

    def put_host_command_complete(self, command_id: str, result: CommandResult) -> None:
        self.completed.append((command_id, result))


def _command(number: int, name: str, deployment: str) -> HostCommand:
    execution = f"codedeploy/us-east-1/123456789012/{deployment}"
    return HostCommand(f"hc-{number}", HOST, execution, name, number)


@pytest.fixture
def client(tmp_path: Path) -> CountingClient:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "appspec.yml").write_text("version: 0.0\nos: linux\n")
    return CountingClient(bundle)


def _agent(tmp_path: Path, client: CountingClient) -> Agent:
    config = AgentConfig(
        endpoint="http://127.0.0.1:1",
        region="us-east-1",
        host_identifier=HOST,
        root_dir=tmp_path / "root",
        log_dir=tmp_path / "logs",
    )
    return Agent(config, client, CommandExecutor(Layout(config.root_dir)))  # type: ignore[arg-type]


def test_one_fetch_serves_every_command_of_a_deployment(tmp_path, client):
    agent = _agent(tmp_path, client)
    client.commands += [
        _command(1, "DownloadBundle", "d-AAAAAAAAA"),
        _command(2, "BeforeInstall", "d-AAAAAAAAA"),
        _command(3, "ValidateService", "d-AAAAAAAAA"),
        _command(4, "DownloadBundle", "d-BBBBBBBBB"),
    ]
    while agent.run_once():
        pass
    assert [command_id for command_id, _ in client.completed] == ["hc-1", "hc-2", "hc-3", "hc-4"]
    assert all(result.succeeded for _, result in client.completed)
    assert [execution.rsplit("/", 1)[-1] for execution in client.fetched] == [
        "d-AAAAAAAAA",
        "d-BBBBBBBBB",
    ]


def test_a_refused_specification_is_fetched_again(tmp_path, client):
    agent = _agent(tmp_path, client)
    client.system = "Elsewhere"
    client.commands.append(_command(1, "DownloadBundle", "d-AAAAAAAAA"))
    agent.run_once()
    ((_, first),) = client.completed
    assert not first.succeeded and "deployment system" in first.message
    client.system = "CodeDeploy"
    client.commands.append(_command(2, "DownloadBundle", "d-AAAAAAAAA"))
    agent.run_once()
    assert client.completed[-1][1].succeeded
    assert len(client.fetched) == 2
