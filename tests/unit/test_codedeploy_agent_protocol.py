"""The agent's side of the wire, without a network: what the command-service client sends
(checked with Forgeline's own SigV4 verifier), how it reads errors, the result payloads
and their error codes, the 2 KiB log tail, deploy-local's event order rules and the
agent config."""

from __future__ import annotations

import json

import httpx
import pytest

from forgeline.codedeploy.agent.client import (
    AGENT_VERSION_HEADER,
    CommandServiceClient,
    CommandServiceError,
)
from forgeline.codedeploy.agent.config import ConfigError, config_from_mapping, config_to_mapping
from forgeline.codedeploy.agent.deploy_local import LocalDeployError, check_events
from forgeline.codedeploy.agent.events import LOCAL_DEFAULT_EVENTS
from forgeline.codedeploy.agent.results import (
    LOG_TAIL_CHARS,
    CommandResult,
    ErrorCode,
    LogTail,
    succeeded,
)
from forgeline.core.auth.sigv4 import IncomingRequest, parse_authorization, verify

KEY, SECRET = "AKIAAGENTKEY00000001", "agent-secret-0000000000000000000000000000"


class Recorder:
    """An httpx transport that keeps the requests and answers from a list."""

    def __init__(self, *answers: httpx.Response) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answers.pop(0)


def client_with(recorder: Recorder) -> CommandServiceClient:
    return CommandServiceClient(
        "https://deploy.example.test:4751",
        "eu-west-1",
        KEY,
        SECRET,
        transport=httpx.MockTransport(recorder),
    )


def test_requests_are_json_1_1_signed_for_codedeploy_commands():
    command = {
        "HostCommandIdentifier": "hc-1",
        "HostIdentifier": "arn:aws:iam::123456789012:user/codedeploy/web-1",
        "DeploymentExecutionId": "exec-1",
        "CommandName": "Install",
        "Nonce": 3,
    }
    recorder = Recorder(httpx.Response(200, json={"HostCommand": command}))
    polled = client_with(recorder).poll_host_command(command["HostIdentifier"])

    assert polled is not None and polled.command_name == "Install" and polled.nonce == 3
    request = recorder.requests[0]
    assert request.method == "POST" and request.url.path == "/"
    assert request.headers["X-Amz-Target"] == "CodeDeployCommandService_v20141006.PollHostCommand"
    assert request.headers["Content-Type"] == "application/x-amz-json-1.1"
    assert json.loads(request.content) == {"HostIdentifier": command["HostIdentifier"]}
    incoming = IncomingRequest(
        "POST", request.url.raw_path, "", list(request.headers.multi_items()), request.content
    )
    parsed = parse_authorization(incoming)
    assert (parsed.access_key_id, parsed.region, parsed.service) == (
        KEY,
        "eu-west-1",
        "codedeploy-commands",
    )
    assert AGENT_VERSION_HEADER in parsed.signed_headers
    assert verify(parsed, SECRET, incoming)
    assert not verify(parsed, "another-secret", incoming)


def test_nothing_to_do_and_the_other_operations():
    recorder = Recorder(
        httpx.Response(200, json={}),
        httpx.Response(
            200,
            json={
                "DeploymentSystem": "CodeDeploy",
                "DeploymentSpecification": {
                    "GenericEnvelope": {"Format": "PKCS7/JSON", "Payload": "-----BEGIN PKCS7-----"}
                },
            },
        ),
        httpx.Response(200, json={"CommandStatus": "InProgress"}),
        httpx.Response(200, content=b""),
    )
    client = client_with(recorder)
    assert client.poll_host_command("arn") is None
    assert client.get_deployment_specification("exec-1", "arn") == (
        "CodeDeploy",
        "PKCS7/JSON",
        "-----BEGIN PKCS7-----",
    )
    assert client.put_host_command_acknowledgement("hc-1", False) == "InProgress"
    failure = CommandResult(
        ErrorCode.SCRIPT_FAILED, "s.sh", "failed with exit code 1", "[stdout]x\n"
    )
    client.put_host_command_complete("hc-1", failure)

    sent = [json.loads(r.content) for r in recorder.requests]
    assert sent[1] == {"DeploymentExecutionId": "exec-1", "HostIdentifier": "arn"}
    assert sent[2] == {
        "HostCommandIdentifier": "hc-1",
        "Diagnostics": {"Format": "JSON", "Payload": '{"IsCommandNoop": false}'},
    }
    assert sent[3]["CommandStatus"] == "Failed"
    assert sent[3]["Diagnostics"]["Format"] == "JSON"
    assert json.loads(sent[3]["Diagnostics"]["Payload"]) == {
        "error_code": 4,
        "script_name": "s.sh",
        "message": "failed with exit code 1",
        "log": "[stdout]x\n",
    }


@pytest.mark.parametrize(
    ("response", "code", "status"),
    [
        (
            httpx.Response(400, json={"__type": "ClientException", "message": "no"}),
            "ClientException",
            400,
        ),
        (
            httpx.Response(500, json={"__type": "com.amazonaws#ServerException", "message": "x"}),
            "ServerException",
            500,
        ),
        (httpx.Response(503, text="<html>down</html>"), "HTTP503", 503),
    ],
)
def test_errors(response, code, status):
    with pytest.raises(CommandServiceError) as raised:
        client_with(Recorder(response)).poll_host_command("arn")
    assert (raised.value.code, raised.value.status) == (code, status)


def test_error_codes_and_payloads():
    assert [code.value for code in ErrorCode] == list(range(8))
    assert ErrorCode.OUTPUTS_LEFT_OPEN == 6 and ErrorCode.FAILED_AFTER_RESTART == 7
    ok = succeeded()
    assert ok.command_status == "Succeeded"
    assert json.loads(ok.payload()) == {
        "error_code": 0,
        "script_name": "",
        "message": "Succeeded:",
        "log": "",
    }
    assert CommandResult(ErrorCode.SCRIPT_TIMED_OUT, "a", "m", "").command_status == "Failed"


def test_the_log_tail_keeps_the_newest_whole_lines():
    tail = LogTail()
    for number in range(1000):
        tail.append(f"[stdout]line {number}\n")
    text = tail.text()
    assert len(text) <= LOG_TAIL_CHARS
    assert text.startswith("[stdout]line ") and text.endswith("line 999\n")
    tail.append("x" * 5000)
    assert tail.text() == "x" * LOG_TAIL_CHARS


def test_local_event_order():
    assert check_events(None) == LOCAL_DEFAULT_EVENTS
    assert LOCAL_DEFAULT_EVENTS[0] == "ApplicationStop"
    assert "BeforeAllowTraffic" not in LOCAL_DEFAULT_EVENTS
    fine = ("ApplicationStop", "DownloadBundle", "Install", "AfterInstall", "MyCustomEvent")
    assert check_events(fine) == fine
    for wrong in (
        ("BeforeInstall",),
        ("Install", "DownloadBundle"),
        ("DownloadBundle", "ApplicationStart", "Install"),
        ("DownloadBundle", "rm -rf"),
    ):
        with pytest.raises(LocalDeployError):
            check_events(wrong)


def test_agent_config():
    config = config_from_mapping(
        {
            "endpoint": "https://deploy.example.test:4751/",
            "region": "us-east-1",
            "host_identifier": "arn:aws:iam::123456789012:user/codedeploy/web-1",
            "access_key_id": KEY,
            "secret_access_key": SECRET,
            "root_dir": "/var/lib/forgeline-agent",
            "poll": {"backoff_max_seconds": 10},
        }
    )
    assert config.endpoint == "https://deploy.example.test:4751"
    assert config.bundle_endpoint == config.endpoint
    assert str(config.log_dir) == "/var/lib/forgeline-agent/logs"
    assert config.poll.backoff_max_seconds == 10 and config.poll.timeout_seconds == 90
    assert config.credentials() == (KEY, SECRET)
    assert config_from_mapping(config_to_mapping(config)) == config
    for bad, words in (
        ({"endpoint": "deploy:4751"}, "http"),
        ({"host_identifier": None}, "needs host_identifier"),
        ({"colour": "blue"}, "unknown keys: colour"),
        ({"max_revisions": 0}, "max_revisions"),
        ({"poll": {"sometimes": 1}}, "poll"),
    ):
        with pytest.raises(ConfigError, match=words):
            config_from_mapping({**config_to_mapping(config), **bad})
