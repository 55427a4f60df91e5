"""A pipeline webhook's rules: JSON paths, filters with {Key} placeholders, and the three
kinds of authentication."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from forgeline.codepipeline import webhook_rules as rules

PUSH = {"ref": "refs/heads/main", "commits": [{"id": "abc"}], "repository": {"full-name": "o/r"}}


def test_paths_select_members_and_indexes() -> None:
    assert rules.select(PUSH, "$.ref") == "refs/heads/main"
    assert rules.select(PUSH, "$.commits[0].id") == "abc"
    assert rules.select(PUSH, "$.repository['full-name']") == "o/r"
    assert rules.select(PUSH, "$.commits[3]") is rules._MISSING


@pytest.mark.parametrize("path", ["ref", "$..ref", "$.ref[*]", "$.a b"])
def test_paths_outside_the_subset_are_refused(path: str) -> None:
    with pytest.raises(rules.FilterPatternError):
        rules.parse_path(path)


def test_filters_expand_the_action_configuration() -> None:
    filters = [{"jsonPath": "$.ref", "matchEquals": "refs/heads/{Branch}"}]
    assert rules.matches(PUSH, filters, {"Branch": "main"})
    assert not rules.matches(PUSH, filters, {"Branch": "dev"})
    assert rules.matches(PUSH, [{"jsonPath": "$.commits"}], {})
    assert not rules.matches(PUSH, [{"jsonPath": "$.missing"}], {})


def test_github_hmac_checks_the_signature() -> None:
    body = b'{"ref": "refs/heads/main"}'
    signature = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    config = {"SecretToken": "s3cret"}
    rules.authenticate(
        "GITHUB_HMAC", config, body, {"x-hub-signature-256": f"sha256={signature}"}, ""
    )
    with pytest.raises(rules.AuthenticationError):
        rules.authenticate("GITHUB_HMAC", config, body, {"x-hub-signature-256": "sha256=00"}, "")
    with pytest.raises(rules.AuthenticationError):
        rules.authenticate("GITHUB_HMAC", config, body, {}, "")


def test_ip_authentication_checks_the_range() -> None:
    config = {"AllowedIPRange": "10.0.0.0/8"}
    rules.authenticate("IP", config, b"", {}, "10.1.2.3")
    with pytest.raises(rules.AuthenticationError):
        rules.authenticate("IP", config, b"", {}, "192.168.0.1")


def test_definitions_are_checked() -> None:
    assert rules.check_definition("GITHUB_HMAC", {}) is not None
    assert rules.check_definition("IP", {"AllowedIPRange": "nope"}) is not None
    assert rules.check_definition("IP", {"AllowedIPRange": "10.0.0.0/8"}) is None
    assert rules.check_definition("UNAUTHENTICATED", {}) is None
