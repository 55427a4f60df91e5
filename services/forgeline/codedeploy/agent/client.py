"""The client of the CodeDeploy command service: JSON 1.1 `POST /` with
`X-Amz-Target: CodeDeployCommandService_v20141006.<Op>`, signed with SigV4 (signing name
`codedeploy-commands`, the agent-version header signed too), over HTTPS verified against
the configured CA file (plain HTTP only when the endpoint says http:)."""

from __future__ import annotations

import dataclasses
import json
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from forgeline.codedeploy.agent.results import CommandResult

TARGET_PREFIX = "CodeDeployCommandService_v20141006"
SIGNING_NAME = "codedeploy-commands"
CONTENT_TYPE = "application/x-amz-json-1.1"
AGENT_VERSION_HEADER = "x-amz-codedeploy-agent-version"


def agent_version() -> str:
    try:
        return f"FORGELINE_{metadata.version('forgeline')}"
    except metadata.PackageNotFoundError:
        return "FORGELINE_unknown"


class CommandServiceError(Exception):
    """The service answered with an error (ClientException, ServerException, …)."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message
        self.status = status


class EndpointNotTrusted(Exception):
    """The HTTPS endpoint's certificate does not verify against the agent's CA file."""


@dataclasses.dataclass(frozen=True)
class HostCommand:
    host_command_identifier: str
    host_identifier: str
    deployment_execution_id: str
    command_name: str
    nonce: int | None = None


class CommandServiceClient:
    def __init__(
        self,
        endpoint: str,
        region: str,
        access_key_id: str,
        secret_access_key: str,
        *,
        ca_file: Path | None = None,
        timeout: float = 90.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.region = region
        self._credentials = Credentials(access_key_id, secret_access_key)
        verify: bool | str = str(ca_file) if ca_file else True
        # The read timeout covers a long poll; connecting should never take that long.
        self._http = httpx.Client(
            verify=verify, timeout=httpx.Timeout(timeout, connect=10.0), transport=transport
        )
        self._version = agent_version()

    def close(self) -> None:
        self._http.close()

    # -- operations ------------------------------------------------------------------------
    def poll_host_command(self, host_identifier: str) -> HostCommand | None:
        answer = self.call("PollHostCommand", {"HostIdentifier": host_identifier})
        command = answer.get("HostCommand")
        if not command:
            return None
        return HostCommand(
            host_command_identifier=command["HostCommandIdentifier"],
            host_identifier=command.get("HostIdentifier", ""),
            deployment_execution_id=command["DeploymentExecutionId"],
            command_name=command["CommandName"],
            nonce=command.get("Nonce"),
        )

    def get_deployment_specification(
        self, deployment_execution_id: str, host_identifier: str
    ) -> tuple[str, str, str]:
        """(DeploymentSystem, envelope Format, envelope Payload)."""
        answer = self.call(
            "GetDeploymentSpecification",
            {"DeploymentExecutionId": deployment_execution_id, "HostIdentifier": host_identifier},
        )
        envelope = (answer.get("DeploymentSpecification") or {}).get("GenericEnvelope") or {}
        return (
            answer.get("DeploymentSystem", ""),
            envelope.get("Format", ""),
            envelope.get("Payload", ""),
        )

    def put_host_command_acknowledgement(
        self, host_command_identifier: str, is_noop: bool
    ) -> str | None:
        """The command's status as the server sees it (Succeeded/Failed: skip it)."""
        answer = self.call(
            "PutHostCommandAcknowledgement",
            {
                "HostCommandIdentifier": host_command_identifier,
                "Diagnostics": {
                    "Format": "JSON",
                    "Payload": json.dumps({"IsCommandNoop": is_noop}),
                },
            },
        )
        return answer.get("CommandStatus")

    def put_host_command_complete(
        self, host_command_identifier: str, result: CommandResult
    ) -> None:
        self.call(
            "PutHostCommandComplete",
            {
                "HostCommandIdentifier": host_command_identifier,
                "CommandStatus": result.command_status,
                "Diagnostics": {"Format": "JSON", "Payload": result.payload()},
            },
        )

    def post_host_command_update(self, host_command_identifier: str) -> str | None:
        """Tell the server the command is still running (the agent is alive)."""
        answer = self.call(
            "PostHostCommandUpdate",
            {"HostCommandIdentifier": host_command_identifier},
        )
        return answer.get("CommandStatus")

    def check_endpoint(self) -> None:
        """What AWS's agent does at start: an HTTPS GET / whose certificate must verify
        (any HTTP status will do); raises EndpointNotTrusted if it does not."""
        if not self.endpoint.startswith("https://"):
            return
        try:
            self._http.get(self.endpoint + "/")
        except httpx.ConnectError as exc:
            if "CERTIFICATE_VERIFY_FAILED" in str(exc) or "certificate" in str(exc).lower():
                raise EndpointNotTrusted(
                    f"the certificate of {self.endpoint} is not trusted: {exc} "
                    "(set ca_file in the agent config to the CA that signed it)"
                ) from None
            # Not reachable yet: the poll loop backs off and tries again.

    # -- the wire --------------------------------------------------------------------------
    def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps(params).encode("utf-8")
        request = AWSRequest(
            method="POST",
            url=self.endpoint + "/",
            data=body,
            headers={
                "Content-Type": CONTENT_TYPE,
                "X-Amz-Target": f"{TARGET_PREFIX}.{operation}",
                AGENT_VERSION_HEADER: self._version,
            },
        )
        SigV4Auth(self._credentials, SIGNING_NAME, self.region).add_auth(request)
        response = self._http.post(
            self.endpoint + "/", content=body, headers=dict(request.headers.items())
        )
        if response.status_code == 200:
            return response.json() if response.content else {}
        raise _error_from(response)


def _error_from(response: httpx.Response) -> CommandServiceError:
    try:
        data = response.json()
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    code = str(data.get("__type") or response.headers.get("x-amzn-ErrorType") or "")
    code = code.rsplit("#", 1)[-1].split(":", 1)[0] or f"HTTP{response.status_code}"
    message = str(data.get("message") or data.get("Message") or response.text[:200])
    return CommandServiceError(code, message, response.status_code)
