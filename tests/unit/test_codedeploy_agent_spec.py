"""The deployment specification: its JSON, and its PKCS7/JSON envelope signed in memory the
way the command service signs it (content attached, signer certificate embedded)."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from forgeline.codedeploy.agent.spec import (
    LocalRevision,
    S3Revision,
    SpecError,
    open_envelope,
    parse_spec,
)

SPEC = {
    "DeploymentId": "d-ABCDEFGH1",
    "DeploymentGroupId": "9a7c1e52-7d4c-4f0e-a6a1-0d3c2b1a9e8f",
    "DeploymentGroupName": "web-fleet",
    "ApplicationName": "shop",
    "DeploymentCreator": "user",
    "DeploymentType": "IN_PLACE",
    "Revision": {
        "RevisionType": "S3",
        "S3Revision": {
            "Bucket": "releases",
            "Key": "shop/v1.zip",
            "BundleType": "zip",
            "ETag": '"e1"',
        },
    },
    "AgentActionOverrides": {"AgentOverrides": {"FileExistsBehavior": "overwrite"}},
}


def test_an_s3_specification():
    spec = parse_spec(json.dumps(SPEC))
    assert spec.deployment_id == "d-ABCDEFGH1"
    assert spec.revision == S3Revision("releases", "shop/v1.zip", "zip", None, '"e1"')
    assert spec.file_exists_behavior == "OVERWRITE"
    assert spec.hook_environment("AfterInstall") == {
        "LIFECYCLE_EVENT": "AfterInstall",
        "DEPLOYMENT_ID": "d-ABCDEFGH1",
        "APPLICATION_NAME": "shop",
        "DEPLOYMENT_GROUP_NAME": "web-fleet",
        "DEPLOYMENT_GROUP_ID": "9a7c1e52-7d4c-4f0e-a6a1-0d3c2b1a9e8f",
        "BUNDLE_BUCKET": "releases",
        "BUNDLE_KEY": "shop/v1.zip",
        "BUNDLE_ETAG": "e1",
    }


def test_a_deployment_arn_and_a_local_revision():
    data = {
        **SPEC,
        "DeploymentId": "arn:aws:codedeploy:us-east-1:123456789012:deployment/d-XYZ",
        "Revision": {
            "RevisionType": "Local Directory",
            "LocalRevision": {"Location": "/src/app", "BundleType": "directory"},
        },
        "AgentActionOverrides": None,
    }
    spec = parse_spec(json.dumps(data))
    assert spec.deployment_id == "d-XYZ"
    assert spec.revision == LocalRevision("/src/app", "directory")
    assert spec.file_exists_behavior is None
    assert "BUNDLE_BUCKET" not in spec.hook_environment("ApplicationStart")


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"DeploymentId": None}, "no DeploymentId"),
        ({"DeploymentGroupName": ""}, "no DeploymentGroupName"),
        ({"DeploymentGroupId": "../../etc"}, "not a plain identifier"),
        ({"DeploymentId": "d-1/../../x"}, "not a plain identifier"),
        ({"Revision": None}, "no Revision"),
        ({"Revision": {"RevisionType": "S3"}}, "no S3Revision"),
        (
            {
                "Revision": {
                    "RevisionType": "S3",
                    "S3Revision": {"Bucket": "b", "Key": "k", "BundleType": "rar"},
                }
            },
            "tar, tgz or zip",
        ),
        ({"Revision": {"RevisionType": "FTP"}}, "unsupported RevisionType"),
        ({"AgentActionOverrides": {"AgentOverrides": {"FileExistsBehavior": "MERGE"}}}, "DISALLOW"),
        ({"AppSpecFilename": "../appspec.yml"}, "outside the bundle"),
    ],
)
def test_specification_errors(change, words):
    with pytest.raises(SpecError, match=words):
        parse_spec(json.dumps({**SPEC, **change}))


def test_not_json():
    with pytest.raises(SpecError, match="not JSON"):
        parse_spec("{nope")
    with pytest.raises(SpecError, match="JSON object"):
        parse_spec("[]")


# --- envelopes --------------------------------------------------------------------------------


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(subject: str, key, issuer: str | None = None, issuer_key=None, ca=False):
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer or subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    return builder.sign(issuer_key or key, hashes.SHA256())


@pytest.fixture(scope="module")
def signer():
    key = ec.generate_private_key(ec.SECP256R1())
    return key, _certificate("deploy-signer", key)


def sign(content: bytes, key, cert, *options: pkcs7.PKCS7Options) -> str:
    builder = pkcs7.PKCS7SignatureBuilder().set_data(content).add_signer(cert, key, hashes.SHA256())
    return builder.sign(serialization.Encoding.PEM, [pkcs7.PKCS7Options.Binary, *options]).decode()


def test_a_signed_specification_verifies_against_its_signer(signer):
    key, cert = signer
    payload = sign(json.dumps(SPEC).encode(), key, cert)
    spec = open_envelope("PKCS7/JSON", payload, signer_certificate=cert)
    assert spec.deployment_group_name == "web-fleet"
    # Without a signer certificate configured the content is only read.
    assert open_envelope("PKCS7/JSON", payload).deployment_id == "d-ABCDEFGH1"


def test_an_rsa_signer_issued_by_the_trusted_ca_and_no_signed_attributes():
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = _certificate("deploy-ca", ca_key, ca=True)
    leaf_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf = _certificate("deploy-signer", leaf_key, issuer="deploy-ca", issuer_key=ca_key)
    for options in ((), (pkcs7.PKCS7Options.NoAttributes,)):
        payload = sign(json.dumps(SPEC).encode(), leaf_key, leaf, *options)
        assert (
            open_envelope("PKCS7/JSON", payload, signer_certificate=ca).application_name == "shop"
        )


def test_a_stranger_signer_is_refused(signer):
    _, trusted = signer
    other_key = ec.generate_private_key(ec.SECP256R1())
    payload = sign(json.dumps(SPEC).encode(), other_key, _certificate("mallory", other_key))
    with pytest.raises(SpecError, match="signed by CN=mallory"):
        open_envelope("PKCS7/JSON", payload, signer_certificate=trusted)


def test_tampered_content_is_refused(signer):
    key, cert = signer
    original = json.dumps(SPEC).encode()
    payload = sign(original, key, cert)
    body = "".join(payload.strip().splitlines()[1:-1])
    raw = base64.b64decode(body)
    forged = raw.replace(b"web-fleet", b"web-fleeT")
    assert forged != raw
    forged_pem = (
        "-----BEGIN PKCS7-----\n" + base64.b64encode(forged).decode() + "\n-----END PKCS7-----\n"
    )
    with pytest.raises(SpecError, match="does not match its signed digest"):
        open_envelope("PKCS7/JSON", forged_pem, signer_certificate=cert)


def test_envelope_formats():
    text = json.dumps(SPEC)
    with pytest.raises(SpecError, match="accepted only locally"):
        open_envelope("TEXT/JSON", text)
    assert open_envelope("TEXT/JSON", text, allow_text=True).deployment_id == "d-ABCDEFGH1"
    with pytest.raises(SpecError, match="unsupported deployment specification format"):
        open_envelope("XML", text)
    with pytest.raises(SpecError, match="not PEM"):
        open_envelope("PKCS7/JSON", text)
    with pytest.raises(SpecError, match="not a PKCS#7 SignedData"):
        open_envelope("PKCS7/JSON", "-----BEGIN PKCS7-----\nAAAA\n-----END PKCS7-----\n")
