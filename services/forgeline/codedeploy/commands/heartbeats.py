"""When each host's agent last called: its last poll and its last report.

The deployment driver reads these to fail instances whose agent went silent. Recording a
poll also takes the host's row lock on Postgres (an upsert locks the row it writes), which
is what serializes two polls of one host deciding which command to hand out.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from forgeline.codedeploy.tables.deployments import AgentHeartbeat
from forgeline.core.db import is_postgres, utcnow


def record_poll(session: Session, account_id: str, region: str, host_identifier: str) -> None:
    now = utcnow()
    insert = postgresql.insert if is_postgres(session) else sqlite.insert
    statement = insert(AgentHeartbeat).values(
        account_id=account_id, region=region, host_identifier=host_identifier, last_poll_at=now
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[
                AgentHeartbeat.account_id,
                AgentHeartbeat.region,
                AgentHeartbeat.host_identifier,
            ],
            set_={"last_poll_at": statement.excluded.last_poll_at},
        )
    )


def record_report(session: Session, account_id: str, region: str, host_identifier: str) -> None:
    """An acknowledgement, progress update or completion came from the host's agent."""
    now = utcnow()
    insert = postgresql.insert if is_postgres(session) else sqlite.insert
    statement = insert(AgentHeartbeat).values(
        account_id=account_id,
        region=region,
        host_identifier=host_identifier,
        last_poll_at=now,
        last_report_at=now,
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[
                AgentHeartbeat.account_id,
                AgentHeartbeat.region,
                AgentHeartbeat.host_identifier,
            ],
            set_={"last_report_at": statement.excluded.last_report_at},
        )
    )


def last_heard(
    session: Session, account_id: str, region: str, host_identifier: str
) -> dt.datetime | None:
    """The latest time the host's agent polled or reported; None if it never called."""
    row = session.get(AgentHeartbeat, (account_id, region, host_identifier))
    return None if row is None else _heard(row)


HostKey = tuple[str, str, str]  # (account id, region, host identifier)


def last_heard_of(session: Session, hosts: Iterable[HostKey]) -> dict[HostKey, dt.datetime]:
    """`last_heard` for many hosts, one query per account and region (hosts that never
    called are left out)."""
    by_place: dict[tuple[str, str], set[str]] = defaultdict(set)
    for account_id, region, host_identifier in hosts:
        by_place[(account_id, region)].add(host_identifier)
    heard: dict[HostKey, dt.datetime] = {}
    for (account_id, region), names in by_place.items():
        rows = session.scalars(
            select(AgentHeartbeat).where(
                AgentHeartbeat.account_id == account_id,
                AgentHeartbeat.region == region,
                AgentHeartbeat.host_identifier.in_(sorted(names)),
            )
        )
        for row in rows:
            heard[(account_id, region, row.host_identifier)] = _heard(row)
    return heard


def _heard(row: AgentHeartbeat) -> dt.datetime:
    if row.last_report_at is None:
        return row.last_poll_at
    return max(row.last_poll_at, row.last_report_at)


def last_polls(
    session: Session, account_id: str, region: str, host_identifiers: list[str]
) -> dict[str, dt.datetime]:
    """The last poll of each of these hosts that ever polled."""
    if not host_identifiers:
        return {}
    rows = session.scalars(
        select(AgentHeartbeat).where(
            AgentHeartbeat.account_id == account_id,
            AgentHeartbeat.region == region,
            AgentHeartbeat.host_identifier.in_(host_identifiers),
        )
    )
    return {row.host_identifier: row.last_poll_at for row in rows}
