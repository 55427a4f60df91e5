"""CodeCommit repository triggers: configuration, matching ref changes, and firing.

A repository keeps one trigger list, replaced whole by PutRepositoryTriggers. When refs
move (`gitstore.report_ref_changes`), every trigger whose events and branches match
fires once with the matching references, in the record shape AWS sends to a trigger's
SNS topic or Lambda function. Destinations:

- an http(s) URL: a signed webhook POST, delivered by a background job with retries
  (services/forgeline/core/webhooks.py);
- an SNS topic or Lambda function ARN: accepted and kept as AWS does; Forgeline has no
  SNS or Lambda, so such a trigger fires to the event stream only.

Every firing, whatever the destination, is also published to the event stream as a
"CodeCommit Repository Trigger" event carrying the record, so it can be observed.

Webhook secret: each repository gets a random secret when its trigger configuration is
first stored. It signs every delivery, survives later PutRepositoryTriggers calls, is
stored encrypted with the server key and is never returned by the AWS API; operators
read or rotate it with `webhook_secret` / `rotate_webhook_secret`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import secrets
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

from sqlalchemy.orm import Session

from forgeline.codecommit import gitstore
from forgeline.codecommit.generated import errors, shapes
from forgeline.codecommit.gitstore import ZERO_OID, RefChange
from forgeline.codecommit.tables.repositories import Repository
from forgeline.codecommit.tables.triggers import RepositoryTriggerConfig
from forgeline.core import webhooks
from forgeline.core.auth.crypto import decrypt, encrypt
from forgeline.core.context import RequestContext
from forgeline.core.db import utcnow
from forgeline.core.lifecycle import server_key
from forgeline.core.settings import Settings, get_settings

logger = logging.getLogger(__name__)

MAX_TRIGGERS = 10  # AWS quota: triggers in a repository
MAX_BRANCHES = 100
MAX_CUSTOM_DATA_CHARS = 1_000  # AWS quota: custom data for triggers
TEST_TIMEOUT_SECONDS = 5.0

TRIGGER_EVENT = "CodeCommit Repository Trigger"
REFERENCE_CHANGES = "ReferenceChanges"
TEST_EVENT = "TriggerEventTest"

# Trigger event name -> RefChange.kind it selects.
_EVENT_KINDS = {
    "createReference": "referenceCreated",
    "updateReference": "referenceUpdated",
    "deleteReference": "referenceDeleted",
}
_NAME = re.compile(r"[A-Za-z0-9._-]{1,100}")
_PARTITION = r"aws(?:-cn|-us-gov|-iso|-iso-b)?"
_SNS_ARN = re.compile(
    rf"arn:{_PARTITION}:sns:([a-z0-9-]+):\d{{12}}:[A-Za-z0-9_-]{{1,256}}(?:\.fifo)?"
)
_LAMBDA_ARN = re.compile(
    rf"arn:{_PARTITION}:lambda:([a-z0-9-]+):\d{{12}}:function:[A-Za-z0-9_-]{{1,64}}"
    r"(?::[A-Za-z0-9$_-]{1,128})?"
)
_BRANCH_FORBIDDEN = re.compile(r"[\x00-\x20\x7f?^*\[\\~:]|\.\.|//|@\{")
_FULL_HEX = re.compile(r"[0-9a-fA-F]{40}")


# -- validation -----------------------------------------------------------------------
def _check_name(name: str | None, seen: set[str]) -> str:
    if not name:
        raise errors.RepositoryTriggerNameRequiredException("A trigger name is required.")
    if not _NAME.fullmatch(name):
        raise errors.InvalidRepositoryTriggerNameException(
            f"{name!r} is not a valid trigger name: use 1-100 letters, numbers, periods, "
            "underscores and dashes."
        )
    if name in seen:
        raise errors.InvalidRepositoryTriggerNameException(
            f"The trigger name {name!r} is used more than once."
        )
    seen.add(name)
    return name


def _check_destination(destination: str | None, region: str) -> str:
    if not destination:
        raise errors.RepositoryTriggerDestinationArnRequiredException(
            "A destination ARN (or webhook URL) is required."
        )
    if webhooks.is_webhook_url(destination):
        if not webhooks.valid_url(destination):
            raise errors.InvalidRepositoryTriggerDestinationArnException(
                f"{destination!r} is not a valid webhook URL (absolute http or https URL "
                "without credentials)."
            )
        return destination
    match = _SNS_ARN.fullmatch(destination) or _LAMBDA_ARN.fullmatch(destination)
    if match is None:
        raise errors.InvalidRepositoryTriggerDestinationArnException(
            f"{destination!r} is not an Amazon SNS topic ARN, a Lambda function ARN or an "
            "http(s) URL."
        )
    if match.group(1) != region:
        raise errors.InvalidRepositoryTriggerRegionException(
            f"The trigger destination is in {match.group(1)}; it must be in the repository's "
            f"region, {region}."
        )
    return destination


def valid_branch_name(name: str) -> bool:
    """CodeCommit's branch name rules (git check-ref-format plus its own limits)."""
    return not (
        not 1 <= len(name) <= 256
        or name == "@"
        or name.startswith(("/", "."))
        or name.endswith(("/", ".", ".lock"))
        or _BRANCH_FORBIDDEN.search(name)
        or _FULL_HEX.fullmatch(name)
    )


def _check_branches(branches: list[str] | None) -> list[str]:
    if branches is None:
        raise errors.RepositoryTriggerBranchNameListRequiredException(
            "The branches list is required; give an empty list for all branches."
        )
    if len(branches) > MAX_BRANCHES:
        raise errors.MaximumBranchesExceededException(
            f"A trigger can name at most {MAX_BRANCHES} branches."
        )
    for branch in branches:
        if not valid_branch_name(branch):
            raise errors.InvalidRepositoryTriggerBranchNameException(
                f"{branch!r} is not a valid branch name."
            )
    return list(dict.fromkeys(branches))


def _check_events(names: list[str] | None) -> list[str]:
    if not names:
        raise errors.RepositoryTriggerEventsListRequiredException(
            "At least one trigger event is required."
        )
    unique = list(dict.fromkeys(names))
    if "all" in unique and len(unique) > 1:
        raise errors.InvalidRepositoryTriggerEventsException(
            "The event 'all' cannot be combined with other events."
        )
    for name in unique:
        if name != "all" and name not in _EVENT_KINDS:
            raise errors.InvalidRepositoryTriggerEventsException(
                f"{name!r} is not a trigger event."
            )
    return unique


def validate(
    triggers: Sequence[shapes.RepositoryTrigger], region: str
) -> list[shapes.RepositoryTrigger]:
    """Check a trigger list as PutRepositoryTriggers does; returns the list to store."""
    if len(triggers) > MAX_TRIGGERS:
        raise errors.MaximumRepositoryTriggersExceededException(
            f"A repository can have at most {MAX_TRIGGERS} triggers."
        )
    seen: set[str] = set()
    checked: list[shapes.RepositoryTrigger] = []
    for trigger in triggers:
        name = _check_name(trigger.get("name"), seen)
        destination = _check_destination(trigger.get("destinationArn"), region)
        custom_data = trigger.get("customData")
        if custom_data is not None and len(custom_data) > MAX_CUSTOM_DATA_CHARS:
            raise errors.InvalidRepositoryTriggerCustomDataException(
                f"Custom data is limited to {MAX_CUSTOM_DATA_CHARS:,} characters."
            )
        stored: shapes.RepositoryTrigger = {
            "name": name,
            "destinationArn": destination,
            "customData": custom_data or "",
            "branches": _check_branches(trigger.get("branches")),
            "events": _check_events(trigger.get("events")),
        }
        if custom_data is None:
            del stored["customData"]  # stored only when given
        checked.append(stored)
    return checked


# -- configuration and secret ---------------------------------------------------------
def _config(session: Session, repository: Repository) -> RepositoryTriggerConfig | None:
    return session.get(RepositoryTriggerConfig, repository.id)


def _stored_triggers(config: RepositoryTriggerConfig) -> list[shapes.RepositoryTrigger]:
    # The JSON column holds the list `validate` returned when it was stored.
    return cast(list[shapes.RepositoryTrigger], list(config.triggers))


def _new_secret(settings: Settings | None = None) -> str:
    return encrypt(server_key(settings or get_settings()), secrets.token_hex(32))


def _ensure_config(
    session: Session, repository: Repository, settings: Settings | None = None
) -> RepositoryTriggerConfig:
    config = _config(session, repository)
    if config is None:
        config = RepositoryTriggerConfig(
            repository_id=repository.id,
            configuration_id=str(uuid.uuid4()),
            triggers=[],
            webhook_secret_encrypted=_new_secret(settings),
            updated_at=utcnow(),
        )
        session.add(config)
        session.flush()
    return config


def put(session: Session, repository: Repository, triggers: list[shapes.RepositoryTrigger]) -> str:
    """Replace the repository's triggers; returns the new configuration id."""
    checked = validate(triggers, repository.region)
    config = _ensure_config(session, repository)
    config.triggers = [dict(trigger) for trigger in checked]
    config.configuration_id = str(uuid.uuid4())
    config.updated_at = utcnow()
    return config.configuration_id


def get(
    session: Session, repository: Repository
) -> tuple[str | None, list[shapes.RepositoryTrigger]]:
    config = _config(session, repository)
    if config is None:
        return None, []
    return config.configuration_id, _stored_triggers(config)


def webhook_secret(
    session: Session, repository: Repository, settings: Settings | None = None
) -> str:
    """The secret that signs this repository's webhook deliveries (made on first use).

    `settings` name the installation whose server key encrypts it (default: this one).
    """
    config = _ensure_config(session, repository, settings)
    return decrypt(server_key(settings or get_settings()), config.webhook_secret_encrypted)


def rotate_webhook_secret(
    session: Session, repository: Repository, settings: Settings | None = None
) -> str:
    """Replace the secret; deliveries already queued keep their old signature."""
    config = _ensure_config(session, repository, settings)
    config.webhook_secret_encrypted = _new_secret(settings)
    config.updated_at = utcnow()
    return webhook_secret(session, repository, settings)


# -- matching (pure) ------------------------------------------------------------------
def matches(trigger: shapes.RepositoryTrigger, change: RefChange) -> bool:
    """Does this ref change select the trigger? Empty branches means every reference."""
    selected = trigger["events"]
    if "all" not in selected and not any(_EVENT_KINDS[e] == change.kind for e in selected):
        return False
    branches = trigger.get("branches") or []
    if not branches:
        return True
    return change.reference_type == "branch" and change.short_name in branches


def reference_entry(change: RefChange) -> dict[str, Any]:
    """One `codecommit.references` item, as AWS writes it."""
    entry: dict[str, Any] = {
        "commit": change.old if change.new == ZERO_OID else change.new,
        "ref": change.ref,
    }
    if change.kind == "referenceCreated":
        entry["created"] = True
    elif change.kind == "referenceDeleted":
        entry["deleted"] = True
    return entry


def format_event_time(moment: dt.datetime) -> str:
    """AWS trigger records' time format: 2016-01-01T23:59:59.000+0000."""
    moment = moment.astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def build_record(
    repository: Repository,
    trigger: shapes.RepositoryTrigger,
    configuration_id: str,
    references: list[dict[str, Any]],
    event_name: str,
    user_arn: str | None,
    moment: dt.datetime,
) -> dict[str, Any]:
    return {
        "awsRegion": repository.region,
        "codecommit": {"references": references},
        "customData": trigger.get("customData"),
        "eventId": str(uuid.uuid4()),
        "eventName": event_name,
        "eventPartNumber": 1,
        "eventSource": "aws:codecommit",
        "eventSourceARN": repository.arn(),
        "eventTime": format_event_time(moment),
        "eventTotalParts": 1,
        "eventTriggerConfigId": configuration_id,
        "eventTriggerName": trigger["name"],
        "eventVersion": "1.0",
        "userIdentityARN": user_arn,
    }


def body_of(record: dict[str, Any]) -> bytes:
    return json.dumps({"Records": [record]}).encode("utf-8")


# -- firing ---------------------------------------------------------------------------
def _publish(
    session: Session,
    repository: Repository,
    trigger: shapes.RepositoryTrigger,
    record: dict[str, Any],
) -> None:
    gitstore.publish_event(
        session,
        repository,
        TRIGGER_EVENT,
        {
            "event": "repositoryTriggerTested"
            if record["eventName"] == TEST_EVENT
            else "repositoryTriggerFired",
            "repositoryName": repository.name,
            "repositoryId": repository.id,
            "triggerName": trigger["name"],
            "destinationArn": trigger["destinationArn"],
            "records": [record],
        },
    )


def on_ref_changes(
    session: Session,
    ctx: RequestContext | None,
    repository: Repository,
    changes: list[RefChange],
) -> None:
    """The gitstore listener: fire every trigger the changes select."""
    config = _config(session, repository)
    if config is None or not config.triggers:
        return
    try:
        firings = _firings(ctx, repository, config, changes)
    except Exception:
        # Whatever goes wrong with triggers must not undo the ref change itself.
        logger.exception("repository triggers of %s could not fire", repository.id)
        return
    # Written in the ref change's own transaction (no savepoint: a job's doorbell must
    # not ring before the row it points at is committed).
    for trigger, record, delivery in firings:
        if delivery is not None:
            webhooks.enqueue_delivery(session, *delivery)
        _publish(session, repository, trigger, record)


Delivery = tuple[str, bytes, dict[str, str]]  # url, body, headers


def _firings(
    ctx: RequestContext | None,
    repository: Repository,
    config: RepositoryTriggerConfig,
    changes: list[RefChange],
) -> list[tuple[shapes.RepositoryTrigger, dict[str, Any], Delivery | None]]:
    """Each selected trigger with its record and, for a webhook, the signed delivery."""
    secret: str | None = None
    moment = utcnow()
    user_arn = ctx.principal_arn if ctx else None
    firings: list[tuple[shapes.RepositoryTrigger, dict[str, Any], Delivery | None]] = []
    for trigger in _stored_triggers(config):
        selected = [reference_entry(c) for c in changes if matches(trigger, c)]
        if not selected:
            continue
        record = build_record(
            repository,
            trigger,
            config.configuration_id,
            selected,
            REFERENCE_CHANGES,
            user_arn,
            moment,
        )
        destination = trigger["destinationArn"]
        delivery: Delivery | None = None
        if webhooks.is_webhook_url(destination):
            secret = secret or decrypt(server_key(get_settings()), config.webhook_secret_encrypted)
            body = body_of(record)
            headers = webhooks.request_headers(secret, body, REFERENCE_CHANGES, record["eventId"])
            delivery = (destination, body, headers)
        firings.append((trigger, record, delivery))
    return firings


def _sample_references(
    repository: Repository, trigger: shapes.RepositoryTrigger
) -> list[dict[str, Any]]:
    """The last commit of a branch the trigger covers, or sample data in an empty repository."""
    git = gitstore.open_git(repository)
    existing = gitstore.list_branches(git)
    candidates = [b for b in trigger.get("branches") or [] if b in existing]
    if not candidates:
        default = repository.default_branch
        candidates = [default] if default in existing else existing[:1]
    if candidates:
        branch = candidates[0]
        head = gitstore.branch_head(git, branch)
        return [{"commit": head, "ref": gitstore.BRANCH_PREFIX + branch}]
    branch = (trigger.get("branches") or [repository.default_branch or "main"])[0]
    return [{"commit": ZERO_OID, "ref": gitstore.BRANCH_PREFIX + branch}]


def test(
    session: Session,
    ctx: RequestContext,
    repository: Repository,
    triggers: list[shapes.RepositoryTrigger],
) -> list[tuple[str, str, bytes, dict[str, str]]]:
    """Validate the triggers and publish a test record for each to the event stream.

    Returns the webhook deliveries still to be made (name, url, body, headers); the
    caller makes them after committing, outside any transaction.
    """
    checked = validate(triggers, repository.region)
    config = _ensure_config(session, repository)
    secret = decrypt(server_key(get_settings()), config.webhook_secret_encrypted)
    moment = utcnow()
    pending = []
    for trigger in checked:
        record = build_record(
            repository,
            trigger,
            config.configuration_id,
            _sample_references(repository, trigger),
            TEST_EVENT,
            ctx.principal_arn,
            moment,
        )
        destination = trigger["destinationArn"]
        if webhooks.is_webhook_url(destination):
            body = body_of(record)
            headers = webhooks.request_headers(secret, body, TEST_EVENT, record["eventId"])
            pending.append((trigger["name"], destination, body, headers))
        _publish(session, repository, trigger, record)
    return pending


def deliver_tests(
    pending: list[tuple[str, str, bytes, dict[str, str]]],
) -> dict[str, str | None]:
    """Send test deliveries at once, in parallel; trigger name -> failure message or None."""
    if not pending:
        return {}
    with ThreadPoolExecutor(max_workers=min(len(pending), MAX_TRIGGERS)) as pool:
        outcomes = pool.map(
            lambda item: webhooks.post(item[1], item[2], item[3], TEST_TIMEOUT_SECONDS), pending
        )
        return {
            name: None if outcome.ok else outcome.message
            for (name, *_), outcome in zip(pending, outcomes, strict=True)
        }
