"""Approval rules as CodeCommit defines them: rule content, approval pools, evaluation.

Pure functions over plain values (no database, no git), so the rules can be tested on
their own. Rule content is AWS's JSON document:

    {"Version": "2018-11-08",
     "DestinationReferences": ["refs/heads/main"],          # templates: branch filter
     "Statements": [{"Type": "Approvers",
                     "NumberOfApprovalsNeeded": 2,
                     "ApprovalPoolMembers": [...]}]}          # optional: anyone if absent

An approval pool member is either a fully qualified ARN, with `*` and `?` wildcards
(`arn:aws:sts::123456789012:assumed-role/CodeCommitReview/*`), or the CodeCommit
shorthand `CodeCommitApprovers:<account>:<name>`, which counts the IAM user and the
federated user of that name in that account; `<name>` may also be a wildcard pattern
over the whole principal resource (`user/*`, `*Mary_Major` to include role sessions).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

RULE_CONTENT_VERSION = "2018-11-08"
SHORTHAND_PREFIX = "CodeCommitApprovers"
# CodeCommit quotas (user guide, "Quotas"): approvers in a pool, destination references
# in a template, approvals on a pull request (so no rule can usefully ask for more).
MAX_POOL_MEMBERS = 50
MAX_DESTINATION_REFERENCES = 100
MAX_APPROVALS = 200
MAX_NAME_LENGTH = 100

_TOP_LEVEL_KEYS = {"Version", "DestinationReferences", "Statements"}
_STATEMENT_KEYS = {"Type", "NumberOfApprovalsNeeded", "ApprovalPoolMembers"}
_NAME_PUNCTUATION = frozenset(" ._-")


class InvalidRuleContent(ValueError):
    """The rule content is not a valid approval rule document (the message says why)."""


@dataclasses.dataclass(frozen=True)
class ApproversStatement:
    approvals_needed: int
    pool: tuple[str, ...]  # empty: any principal's approval counts

    def counts(self, principal_arn: str) -> bool:
        return not self.pool or any(member_matches(m, principal_arn) for m in self.pool)

    def satisfied_by(self, approvers: Iterable[str]) -> bool:
        counted = {arn for arn in approvers if self.counts(arn)}
        return len(counted) >= self.approvals_needed


@dataclasses.dataclass(frozen=True)
class RuleContent:
    statements: tuple[ApproversStatement, ...]
    destination_references: tuple[str, ...]  # empty: every destination branch

    def satisfied_by(self, approvers: Iterable[str]) -> bool:
        approvers = list(approvers)
        return all(statement.satisfied_by(approvers) for statement in self.statements)

    def applies_to(self, destination_reference: str) -> bool:
        """Whether a template with this content makes a rule for that destination branch."""
        if not self.destination_references:
            return True
        short = destination_reference.removeprefix("refs/heads/")
        return any(
            _glob(pattern).fullmatch(destination_reference) or _glob(pattern).fullmatch(short)
            for pattern in self.destination_references
        )


@dataclasses.dataclass(frozen=True)
class Evaluation:
    approved: bool
    overridden: bool
    satisfied: tuple[str, ...]
    not_satisfied: tuple[str, ...]

    @property
    def mergeable(self) -> bool:
        return self.approved or self.overridden


def content_sha256(content: str) -> str:
    return hashlib.sha256(content.encode()).hexdigest()


# -- parsing ---------------------------------------------------------------------------
def parse_rule_content(text: str) -> RuleContent:
    """The rule document, or InvalidRuleContent naming the first problem."""
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        raise InvalidRuleContent("The approval rule content is not valid JSON.") from None
    if not isinstance(document, dict):
        raise InvalidRuleContent("The approval rule content must be a JSON object.")
    unknown = sorted(set(document) - _TOP_LEVEL_KEYS)
    if unknown:
        raise InvalidRuleContent(f"Unknown key(s) in the approval rule content: {unknown}.")
    if document.get("Version") != RULE_CONTENT_VERSION:
        raise InvalidRuleContent(
            f'The approval rule content needs "Version": "{RULE_CONTENT_VERSION}".'
        )
    statements = document.get("Statements")
    if not isinstance(statements, list) or not statements:
        raise InvalidRuleContent('"Statements" must be a non-empty list.')
    return RuleContent(
        statements=tuple(_statement(item, index) for index, item in enumerate(statements)),
        destination_references=_destination_references(document.get("DestinationReferences")),
    )


def _statement(item: Any, index: int) -> ApproversStatement:
    where = f"Statements[{index}]"
    if not isinstance(item, dict):
        raise InvalidRuleContent(f"{where} must be an object.")
    unknown = sorted(set(item) - _STATEMENT_KEYS)
    if unknown:
        raise InvalidRuleContent(f"Unknown key(s) in {where}: {unknown}.")
    if item.get("Type") != "Approvers":
        raise InvalidRuleContent(f'{where} needs "Type": "Approvers".')
    needed = item.get("NumberOfApprovalsNeeded")
    if isinstance(needed, bool) or not isinstance(needed, int):
        raise InvalidRuleContent(f"{where}.NumberOfApprovalsNeeded must be an integer.")
    if not 1 <= needed <= MAX_APPROVALS:
        raise InvalidRuleContent(
            f"{where}.NumberOfApprovalsNeeded must be between 1 and {MAX_APPROVALS}."
        )
    members = item.get("ApprovalPoolMembers", [])
    if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
        raise InvalidRuleContent(f"{where}.ApprovalPoolMembers must be a list of strings.")
    if len(members) > MAX_POOL_MEMBERS:
        raise InvalidRuleContent(
            f"{where}.ApprovalPoolMembers has {len(members)} members; at most "
            f"{MAX_POOL_MEMBERS} are allowed."
        )
    for member in members:
        if not is_valid_member(member):
            raise InvalidRuleContent(
                f"{member!r} is not an approval pool member: use a full IAM or STS ARN or "
                f"{SHORTHAND_PREFIX}:<account-id>:<name>."
            )
    return ApproversStatement(approvals_needed=needed, pool=tuple(members))


def _destination_references(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(r, str) and r for r in value):
        raise InvalidRuleContent('"DestinationReferences" must be a list of branch references.')
    if len(value) > MAX_DESTINATION_REFERENCES:
        raise InvalidRuleContent(
            f'"DestinationReferences" has {len(value)} entries; at most '
            f"{MAX_DESTINATION_REFERENCES} are allowed."
        )
    return tuple(value)


# -- approval pool members ---------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _Arn:
    partition: str
    service: str
    account: str
    resource: str


def _parse_arn(text: str) -> _Arn | None:
    parts = text.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or not parts[5]:
        return None
    return _Arn(partition=parts[1], service=parts[2], account=parts[4], resource=parts[5])


def _parse_shorthand(text: str) -> tuple[str, str] | None:
    parts = text.split(":", 2)
    if len(parts) != 3 or parts[0] != SHORTHAND_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


def is_valid_member(member: str) -> bool:
    if not member or any(ch.isspace() for ch in member):
        return False
    if member.startswith("arn:"):
        arn = _parse_arn(member)
        return arn is not None and bool(arn.partition) and arn.service in ("iam", "sts", "*")
    shorthand = _parse_shorthand(member)
    return shorthand is not None and bool(re.fullmatch(r"[0-9*?]{1,12}", shorthand[0]))


def member_matches(member: str, principal_arn: str) -> bool:
    """Whether an approval from `principal_arn` counts for this approval pool member."""
    principal = _parse_arn(principal_arn)
    if principal is None:
        return False
    if member.startswith("arn:"):
        if _glob(member).fullmatch(principal_arn):
            return True
        return _role_matches_session(member, principal)
    shorthand = _parse_shorthand(member)
    if shorthand is None:
        return False
    account, name = shorthand
    if not _glob(account).fullmatch(principal.account):
        return False
    pattern = _glob(name)
    if pattern.fullmatch(principal.resource):
        return True
    kind, _, rest = principal.resource.partition("/")
    # The bare name counts IAM users (any path) and federated users, not role sessions.
    if kind in ("user", "federated-user") and rest:
        return bool(pattern.fullmatch(rest.rsplit("/", 1)[-1]))
    return False


def _role_matches_session(member: str, principal: _Arn) -> bool:
    """An IAM role ARN in the pool counts approvals from sessions of that role."""
    role = _parse_arn(member)
    if role is None or role.service != "iam" or not role.resource.startswith("role/"):
        return False
    kind, _, rest = principal.resource.partition("/")
    if principal.service != "sts" or kind != "assumed-role" or "/" not in rest:
        return False
    role_name = rest.split("/", 1)[0]
    return bool(
        _glob(role.account).fullmatch(principal.account)
        and _glob(role.resource.rsplit("/", 1)[-1]).fullmatch(role_name)
    )


@functools.lru_cache(maxsize=1024)
def _glob(pattern: str) -> re.Pattern[str]:
    """IAM-style wildcards: `*` any run of characters, `?` one character, nothing else."""
    return re.compile("".join(_glob_part(ch) for ch in pattern), re.DOTALL)


def _glob_part(ch: str) -> str:
    if ch == "*":
        return ".*"
    if ch == "?":
        return "."
    return re.escape(ch)


# -- evaluation ----------------------------------------------------------------------------
def evaluate(
    rules: Sequence[tuple[str, RuleContent]], approvers: Iterable[str], overridden: bool
) -> Evaluation:
    """Which rules the approvers satisfy; approved when all are (vacuously with none)."""
    approvers = list(approvers)
    satisfied: list[str] = []
    not_satisfied: list[str] = []
    for name, content in rules:
        (satisfied if content.satisfied_by(approvers) else not_satisfied).append(name)
    return Evaluation(
        approved=not not_satisfied,
        overridden=overridden,
        satisfied=tuple(satisfied),
        not_satisfied=tuple(not_satisfied),
    )


# -- names -------------------------------------------------------------------------------
def is_valid_name(name: str) -> bool:
    """Approval rule and template names: letters, digits, spaces, `.`, `_`, `-`; no `.git` end."""
    return (
        0 < len(name) <= MAX_NAME_LENGTH
        and bool(name.strip())
        and not name.endswith(".git")
        and all(ch.isalnum() or ch in _NAME_PUNCTUATION for ch in name)
    )
