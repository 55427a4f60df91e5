"""Pipeline webhooks through boto3 and plain HTTP: PutWebhook answers the URL Forgeline
serves; a signed call that passes the filters starts the pipeline (trigger Webhook), a
badly signed one is refused and one that fails the filters starts nothing."""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest

from tests.support.errors import code_of

SECRET = "webhook-secret"


@pytest.fixture(scope="module")
def pipelines(forgeline: Any) -> Any:
    return forgeline.client("codepipeline")


def declaration(name: str, bucket: str) -> dict[str, Any]:
    kind = {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"}
    approval = {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"}
    return {
        "name": name,
        "roleArn": "arn:aws:iam::000000000000:role/pipeline",
        "artifactStore": {"type": "S3", "location": bucket},
        "stages": [
            {"name": "Source", "actions": [{
                "name": "Get", "actionTypeId": kind, "outputArtifacts": [{"name": "Src"}],
                "configuration": {"S3Bucket": bucket, "S3ObjectKey": "src.zip",
                                  "PollForSourceChanges": "false"}}]},
            {"name": "Hold", "actions": [{"name": "Wait", "actionTypeId": approval}]},
        ],
    }  # fmt: skip


def call(url: str, body: dict[str, Any], secret: str = SECRET) -> tuple[int, dict[str, Any]]:
    data = json.dumps(body).encode()
    signature = hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()
    request = urllib.request.Request(
        url, data=data, method="POST",
        headers={"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={signature}"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_a_signed_matching_call_starts_the_pipeline(forgeline: Any, pipelines: Any) -> None:
    name, bucket = f"hook-{uuid.uuid4().hex[:8]}", f"hook-{uuid.uuid4().hex[:8]}"
    forgeline.client("s3").create_bucket(Bucket=bucket)
    pipelines.create_pipeline(pipeline=declaration(name, bucket))
    webhook = pipelines.put_webhook(
        webhook={
            "name": f"{name}-hook",
            "targetPipeline": name,
            "targetAction": "Get",
            "filters": [{"jsonPath": "$.ref", "matchEquals": "refs/heads/{S3ObjectKey}"}],
            "authentication": "GITHUB_HMAC",
            "authenticationConfiguration": {"SecretToken": SECRET},
        },
        tags=[{"key": "team", "value": "web"}],
    )["webhook"]
    url = webhook["url"]
    assert url.startswith(forgeline.url) and "/webhooks/codepipeline/trigger?t=" in url
    listed = {w["definition"]["name"]: w for w in pipelines.list_webhooks()["webhooks"]}
    assert listed[f"{name}-hook"]["url"] == url

    before = len(
        pipelines.list_pipeline_executions(pipelineName=name)["pipelineExecutionSummaries"]
    )
    status, answer = call(url, {"ref": "refs/heads/src.zip"})
    assert status == 200 and "pipelineExecutionId" in answer
    summaries = pipelines.list_pipeline_executions(pipelineName=name)["pipelineExecutionSummaries"]
    assert len(summaries) == before + 1
    assert summaries[0]["trigger"]["triggerType"] == "Webhook"
    triggered = {w["definition"]["name"]: w for w in pipelines.list_webhooks()["webhooks"]}
    assert "lastTriggered" in triggered[f"{name}-hook"]

    assert call(url, {"ref": "refs/heads/other"})[0] == 200  # filtered out: nothing starts
    assert call(url, {"ref": "refs/heads/src.zip"}, secret="wrong")[0] == 403
    after = pipelines.list_pipeline_executions(pipelineName=name)["pipelineExecutionSummaries"]
    assert len(after) == before + 1

    pipelines.register_webhook_with_third_party(webhookName=f"{name}-hook")
    pipelines.delete_webhook(name=f"{name}-hook")
    assert call(url, {"ref": "refs/heads/src.zip"})[0] == 404
    assert code_of(pipelines.register_webhook_with_third_party, webhookName=f"{name}-hook") == (
        "WebhookNotFoundException"
    )


def test_bad_definitions_are_refused(pipelines: Any) -> None:
    base = {
        "name": "bad",
        "targetPipeline": "nope",
        "targetAction": "Get",
        "filters": [{"jsonPath": "$.ref"}],
        "authentication": "GITHUB_HMAC",
        "authenticationConfiguration": {},
    }
    assert code_of(pipelines.put_webhook, webhook=base) == (
        "InvalidWebhookAuthenticationParametersException"
    )
    broken = {**base, "authentication": "UNAUTHENTICATED", "filters": [{"jsonPath": "ref"}]}
    assert code_of(pipelines.put_webhook, webhook=broken) == "InvalidWebhookFilterPatternException"
    missing = {**base, "authentication": "UNAUTHENTICATED"}
    assert code_of(pipelines.put_webhook, webhook=missing) == "PipelineNotFoundException"
