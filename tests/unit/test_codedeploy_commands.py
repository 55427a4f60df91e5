"""The agents' command service, its pure parts: the deployment specification and its
signed envelope, agents' diagnostics, execution ids and the per-host doorbell."""

from __future__ import annotations

import json
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from forgeline.codedeploy.agent import pkcs7
from forgeline.codedeploy.agent.spec import S3Revision, open_envelope
from forgeline.codedeploy.commands import handout, signing
from forgeline.codedeploy.commands.diagnostics import read_report
from forgeline.codedeploy.commands.doorbell import HostDoorbell, host_key
from forgeline.codedeploy.commands.spec import DeploymentFacts, SpecError, build_spec, spec_json
from forgeline.core.events.fanout import InProcessFanout

S3_REVISION = {
    "revisionType": "S3",
    "s3Location": {
        "bucket": "releases",
        "key": "app/v2.zip",
        "bundleType": "zip",
        "version": "3",
        "eTag": '"abc"',
    },
}


def facts(**overrides) -> DeploymentFacts:
    values = {
        "deployment_id": "d-ABCDEFGH1",
        "deployment_group_id": "5e2b1c6e-0000-4000-8000-000000000001",
        "deployment_group_name": "web",
        "application_name": "shop",
        "revision": S3_REVISION,
    }
    values.update(overrides)
    return DeploymentFacts(**values)


# -- the specification ---------------------------------------------------------------------


def test_spec_names_what_the_agent_reads():
    spec = build_spec(facts())
    assert spec == {
        "DeploymentId": "d-ABCDEFGH1",
        "DeploymentGroupId": "5e2b1c6e-0000-4000-8000-000000000001",
        "DeploymentGroupName": "web",
        "ApplicationName": "shop",
        "DeploymentCreator": "user",
        "DeploymentType": "IN_PLACE",
        "Revision": {
            "RevisionType": "S3",
            "S3Revision": {
                "Bucket": "releases",
                "Key": "app/v2.zip",
                "BundleType": "zip",
                "Version": "3",
                "ETag": '"abc"',
            },
        },
    }
    # With it, AWS's agent fails Install outside local mode.
    assert "AllPossibleLifecycleEvents" not in spec


def test_spec_carries_the_file_exists_override_and_rollback_creator():
    spec = build_spec(
        facts(
            file_exists_behavior="OVERWRITE", creator="codeDeployRollback", appspec_filename="a.yml"
        )
    )
    assert spec["AgentActionOverrides"] == {"AgentOverrides": {"FileExistsBehavior": "OVERWRITE"}}
    assert spec["DeploymentCreator"] == "codeDeployRollback"
    assert spec["AppSpecFilename"] == "a.yml"
    with pytest.raises(SpecError, match="fileExistsBehavior"):
        build_spec(facts(file_exists_behavior="CLOBBER"))


def test_spec_of_a_github_revision():
    revision = {
        "revisionType": "GitHub",
        "gitHubLocation": {"repository": "octo/site", "commitId": "0123abcd"},
    }
    assert build_spec(facts(revision=revision))["Revision"] == {
        "RevisionType": "GitHub",
        "GitHubRevision": {"Account": "octo", "Repository": "site", "CommitId": "0123abcd"},
    }


@pytest.mark.parametrize(
    "revision, complaint",
    [
        (
            {"revisionType": "S3", "s3Location": {"bucket": "b", "key": "k", "bundleType": "YAML"}},
            "tar, tgz or zip",
        ),
        ({"revisionType": "S3", "s3Location": {"bundleType": "zip"}}, "bucket and key"),
        ({"revisionType": "String", "string": {"content": "{}"}}, "not deployed by agents"),
        (
            {"revisionType": "GitHub", "gitHubLocation": {"repository": "nodash"}},
            "owner/repository",
        ),
        ({}, "not deployed by agents"),
    ],
)
def test_revisions_an_agent_cannot_deploy_are_refused(revision, complaint):
    with pytest.raises(SpecError, match=complaint):
        build_spec(facts(revision=revision))


def test_signed_envelope_carries_the_spec_and_verifies_with_the_signer():
    signer = signing.new_signer()
    payload = signer.sign(spec_json(facts(file_exists_behavior="RETAIN")))
    assert payload.startswith("-----BEGIN PKCS7-----")

    message = pkcs7.read_pem(payload)
    # The signer's certificate travels inside, and the content is attached.
    assert [cert.fingerprint(hashes.SHA256()) for cert in message.certificates] == [
        signer.certificate.fingerprint(hashes.SHA256())
    ]
    content = pkcs7.verify(message, signer.certificate)
    assert json.loads(content)["AgentActionOverrides"]["AgentOverrides"] == {
        "FileExistsBehavior": "RETAIN"
    }
    # What our agent makes of it: the same deployment.
    spec = open_envelope(signing.SIGNED_FORMAT, payload, signer_certificate=signer.certificate)
    assert spec.deployment_id == "d-ABCDEFGH1"
    assert spec.file_exists_behavior == "RETAIN"
    assert spec.revision == S3Revision("releases", "app/v2.zip", "zip", "3", '"abc"')


def test_an_envelope_from_another_signer_does_not_verify():
    payload = signing.new_signer().sign(spec_json(facts()))
    other = signing.new_signer().certificate
    with pytest.raises(pkcs7.SignedDataError):
        pkcs7.verify(pkcs7.read_pem(payload), other)


def test_the_signer_certificate_is_self_signed_for_signing():
    certificate = signing.new_signer().certificate
    assert certificate.issuer == certificate.subject
    usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_cert_sign


# -- agents' diagnostics -------------------------------------------------------------------


def _envelope(**payload) -> dict[str, str]:
    return {"Format": "JSON", "Payload": json.dumps(payload)}


@pytest.mark.parametrize(
    "code, expected",
    [
        (0, "Success"),
        (1, "ScriptMissing"),
        (2, "ScriptNotExecutable"),
        (3, "ScriptTimedOut"),
        (4, "ScriptFailed"),
        (5, "UnknownError"),
        (6, "ScriptFailed"),
        (7, "UnknownError"),
    ],
)
def test_agent_error_codes_map_to_lifecycle_error_codes(code, expected):
    report = read_report(
        _envelope(error_code=code, script_name="s.sh", message="m", log="l"), succeeded=code == 0
    )
    assert (report.error_code, report.script_name, report.message, report.log_tail) == (
        expected,
        "s.sh",
        "m",
        "l",
    )


def test_unreadable_diagnostics_still_make_a_report():
    assert read_report(None, succeeded=True).error_code == "Success"
    failed = read_report({"Format": "JSON", "Payload": "not json"}, succeeded=False)
    assert failed.error_code == "UnknownError" and failed.message
    assert (
        read_report(_envelope(error_code="Unknown"), succeeded=False).error_code == "UnknownError"
    )
    assert (
        read_report({"Format": "TEXT", "Payload": "x"}, succeeded=False).error_code
        == "UnknownError"
    )


def test_the_log_tail_keeps_the_end():
    report = read_report(_envelope(error_code=4, log="x" * 5000 + "END"), succeeded=False)
    assert len(report.log_tail) == 2048 and report.log_tail.endswith("END")
    assert report.to_botocore()["errorCode"] == "ScriptFailed"


# -- execution ids -------------------------------------------------------------------------


def test_execution_ids_name_a_deployment_of_one_account_and_region():
    execution = handout.execution_id("111122223333", "eu-west-1", "d-ABCDEFGH1")
    # Four slash-separated parts, as the command service's ids have them.
    assert len(execution.split("/")) == 4
    assert handout.deployment_id_of(execution, "111122223333", "eu-west-1") == "d-ABCDEFGH1"
    assert handout.deployment_id_of(execution, "444455556666", "eu-west-1") is None
    assert handout.deployment_id_of(execution, "111122223333", "us-east-1") is None
    assert handout.deployment_id_of("d-ABCDEFGH1", "111122223333", "eu-west-1") is None


# -- the doorbell --------------------------------------------------------------------------


def test_host_keys_tell_hosts_accounts_and_regions_apart():
    host = "arn:aws:iam::111122223333:user/web-1"
    key = host_key("111122223333", "us-east-1", host)
    assert 0 < key < 2**63
    assert key == host_key("111122223333", "us-east-1", host)
    assert key != host_key("111122223333", "us-east-1", host + "x")
    assert key != host_key("111122223333", "eu-west-1", host)
    assert key != host_key("444455556666", "us-east-1", host)


def test_a_ring_wakes_the_waiters_of_its_host_only():
    fanout = InProcessFanout()
    doorbell = HostDoorbell(fanout)
    woken: list[str] = []
    ready = threading.Barrier(3)

    def wait(name: str, key: int) -> None:
        with doorbell.listening(key) as bell:
            ready.wait()
            if bell.wait(5):
                woken.append(name)

    threads = [
        threading.Thread(target=wait, args=("one", 1)),
        threading.Thread(target=wait, args=("two", 2)),
    ]
    for thread in threads:
        thread.start()
    ready.wait()
    doorbell.ring(1)
    threads[0].join(5)
    assert woken == ["one"]
    doorbell.wake_everyone()
    threads[1].join(5)
    assert sorted(woken) == ["one", "two"]
    # A finished waiter leaves nothing behind.
    assert doorbell._waiters == {}
