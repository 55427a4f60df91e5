"""Approval rule content, approval pool matching and evaluation, without a database."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forgeline.codecommit import approvals
from forgeline.codecommit.approvals import InvalidRuleContent, member_matches, parse_rule_content

ACCOUNT = "123456789012"
MARY = f"arn:aws:iam::{ACCOUNT}:user/Mary_Major"
MARY_WITH_PATH = f"arn:aws:iam::{ACCOUNT}:user/engineering/Mary_Major"
MARY_FEDERATED = f"arn:aws:sts::{ACCOUNT}:federated-user/Mary_Major"
MARY_SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/CodeCommitReview/Mary_Major"
LI = f"arn:aws:iam::{ACCOUNT}:user/Li_Juan"
OTHER_ACCOUNT_MARY = "arn:aws:iam::210987654321:user/Mary_Major"


def content(needed: int = 1, pool: list[str] | None = None, **extra: object) -> str:
    statement: dict[str, object] = {"Type": "Approvers", "NumberOfApprovalsNeeded": needed}
    if pool is not None:
        statement["ApprovalPoolMembers"] = pool
    return json.dumps({"Version": "2018-11-08", "Statements": [statement], **extra})


# -- parsing ---------------------------------------------------------------------------------
def test_aws_documented_examples_parse() -> None:
    rule = parse_rule_content(
        content(
            2,
            [
                f"CodeCommitApprovers:{ACCOUNT}:Nikhil_Jayashankar",
                f"arn:aws:sts::{ACCOUNT}:assumed-role/CodeCommitReview/*",
            ],
        )
    )
    assert rule.statements[0].approvals_needed == 2
    assert len(rule.statements[0].pool) == 2
    template = parse_rule_content(content(1, DestinationReferences=["refs/heads/main"]))
    assert template.destination_references == ("refs/heads/main",)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("not json", "not valid JSON"),
        ("[]", "JSON object"),
        (json.dumps({"Statements": []}), "Version"),
        (json.dumps({"Version": "2012-10-17", "Statements": []}), "Version"),
        (json.dumps({"Version": "2018-11-08", "Statements": []}), "non-empty"),
        (json.dumps({"Version": "2018-11-08"}), "non-empty"),
        (content(0), "between 1 and"),
        (content(201), "between 1 and"),
        (content(True), "integer"),  # type: ignore[arg-type]
        (content(1, ["not-an-arn"]), "not an approval pool member"),
        (content(1, ["CodeCommitApprovers:Mary_Major"]), "not an approval pool member"),
        (content(1, ["arn:aws:s3:::bucket"]), "not an approval pool member"),
        (content(1, [f"CodeCommitApprovers:{ACCOUNT}:u{i}" for i in range(51)]), "at most 50"),
        (content(1, DestinationReferences="refs/heads/main"), "DestinationReferences"),
        (content(1, DestinationReferences=[f"refs/heads/b{i}" for i in range(101)]), "at most 100"),
        (content(1, Statement=[]), "Unknown key"),
        (
            json.dumps({"Version": "2018-11-08", "Statements": [{"Type": "Reviewers"}]}),
            '"Type": "Approvers"',
        ),
    ],
)
def test_invalid_content_is_refused_with_a_reason(text: str, problem: str) -> None:
    with pytest.raises(InvalidRuleContent, match=problem):
        parse_rule_content(text)


@given(st.text(max_size=200))
def test_arbitrary_text_parses_or_is_refused_cleanly(text: str) -> None:
    try:
        parse_rule_content(text)
    except InvalidRuleContent:
        pass


def test_content_sha256_is_the_hex_digest_of_the_text() -> None:
    assert approvals.content_sha256("abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )


# -- approval pool members ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("member", "principal", "expected"),
    [
        # Fully qualified ARNs, with and without wildcards.
        (MARY, MARY, True),
        (MARY, LI, False),
        (f"arn:aws:iam::{ACCOUNT}:user/*", LI, True),
        (f"arn:aws:iam::{ACCOUNT}:user/*", MARY_SESSION, False),
        (f"arn:aws:sts::{ACCOUNT}:assumed-role/CodeCommitReview/*", MARY_SESSION, True),
        (f"arn:aws:sts::{ACCOUNT}:assumed-role/CodeCommitReview/*", MARY, False),
        (f"arn:aws:sts::{ACCOUNT}:assumed-role/Other/*", MARY_SESSION, False),
        (f"arn:aws:iam::{ACCOUNT}:user/Mary_Majo?", MARY, True),
        (MARY, OTHER_ACCOUNT_MARY, False),
        # A role ARN counts the sessions of that role.
        (f"arn:aws:iam::{ACCOUNT}:role/CodeCommitReview", MARY_SESSION, True),
        (f"arn:aws:iam::{ACCOUNT}:role/Other", MARY_SESSION, False),
        # The CodeCommitApprovers shorthand: IAM and federated users of that name...
        (f"CodeCommitApprovers:{ACCOUNT}:Mary_Major", MARY, True),
        (f"CodeCommitApprovers:{ACCOUNT}:Mary_Major", MARY_WITH_PATH, True),
        (f"CodeCommitApprovers:{ACCOUNT}:Mary_Major", MARY_FEDERATED, True),
        (f"CodeCommitApprovers:{ACCOUNT}:Mary_Major", LI, False),
        (f"CodeCommitApprovers:{ACCOUNT}:Mary_Major", OTHER_ACCOUNT_MARY, False),
        # ...but not a role session of that name unless a wildcard says so.
        (f"CodeCommitApprovers:{ACCOUNT}:Mary_Major", MARY_SESSION, False),
        (f"CodeCommitApprovers:{ACCOUNT}:*Mary_Major", MARY_SESSION, True),
        # The resource form: any IAM user in the account.
        (f"CodeCommitApprovers:{ACCOUNT}:user/*", LI, True),
        (f"CodeCommitApprovers:{ACCOUNT}:user/*", MARY_SESSION, False),
        # Regex metacharacters are literal; only * and ? are wildcards.
        (f"CodeCommitApprovers:{ACCOUNT}:Mary.Major", MARY, False),
        (f"CodeCommitApprovers:{ACCOUNT}:[M]ary_Major", MARY, False),
        # A caller that is not an ARN never matches.
        (f"CodeCommitApprovers:{ACCOUNT}:*", "anonymous", False),
    ],
)
def test_pool_member_matching(member: str, principal: str, expected: bool) -> None:
    assert approvals.is_valid_member(member)
    assert member_matches(member, principal) is expected


# -- evaluation ---------------------------------------------------------------------------------
def test_only_pool_members_count_towards_a_rule() -> None:
    rule = parse_rule_content(content(1, [f"CodeCommitApprovers:{ACCOUNT}:Mary_Major"]))
    assert not rule.satisfied_by([LI])
    assert rule.satisfied_by([LI, MARY])


def test_a_rule_without_pool_counts_anyone_once() -> None:
    rule = parse_rule_content(content(2))
    assert not rule.satisfied_by([LI])
    assert not rule.satisfied_by([LI, LI])  # the same principal twice is one approval
    assert rule.satisfied_by([LI, MARY])


def test_every_statement_must_be_satisfied() -> None:
    text = json.dumps(
        {
            "Version": "2018-11-08",
            "Statements": [
                {"Type": "Approvers", "NumberOfApprovalsNeeded": 1, "ApprovalPoolMembers": [MARY]},
                {"Type": "Approvers", "NumberOfApprovalsNeeded": 1, "ApprovalPoolMembers": [LI]},
            ],
        }
    )
    rule = parse_rule_content(text)
    assert not rule.satisfied_by([MARY])
    assert rule.satisfied_by([MARY, LI])


def test_evaluate_splits_rules_and_reports_override() -> None:
    needs_mary = parse_rule_content(content(1, [MARY]))
    needs_two = parse_rule_content(content(2))
    evaluation = approvals.evaluate([("mary", needs_mary), ("two", needs_two)], [MARY], False)
    assert evaluation.satisfied == ("mary",)
    assert evaluation.not_satisfied == ("two",)
    assert not evaluation.approved and not evaluation.mergeable
    overridden = approvals.evaluate([("two", needs_two)], [], True)
    assert overridden.overridden and not overridden.approved and overridden.mergeable


def test_no_rules_means_approved() -> None:
    evaluation = approvals.evaluate([], [], False)
    assert evaluation.approved and evaluation.satisfied == () and evaluation.not_satisfied == ()


# -- templates and names ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("references", "destination", "expected"),
    [
        (None, "refs/heads/anything", True),
        (["refs/heads/main"], "refs/heads/main", True),
        (["refs/heads/main"], "refs/heads/develop", False),
        (["refs/heads/release/*"], "refs/heads/release/1.0", True),
        (["main"], "refs/heads/main", True),
        (["*"], "refs/heads/feature", True),
    ],
)
def test_template_destination_references(
    references: list[str] | None, destination: str, expected: bool
) -> None:
    extra = {} if references is None else {"DestinationReferences": references}
    assert parse_rule_content(content(1, **extra)).applies_to(destination) is expected


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("Require two approvers", True),
        ("2-approver-rule-for-main", True),
        ("rule_1.v2", True),
        ("", False),
        ("   ", False),
        ("x" * 101, False),
        ("rule.git", False),
        ("needs/slash", False),
        ("who?", False),
        ("semi;colon", False),
    ],
)
def test_rule_and_template_names(name: str, valid: bool) -> None:
    assert approvals.is_valid_name(name) is valid
