"""CodeCommit repository triggers: configuration, matching, and real webhook deliveries.

Webhooks go to a real HTTP receiver on a loopback port in this process; ref changes come
from PutFile, CreateBranch and DeleteBranch against a real server with a real worker.
"""

from __future__ import annotations

import datetime as dt
import http.server
import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from forgeline.codecommit import repositories, triggers
from forgeline.codecommit.gitstore import ZERO_OID, RefChange
from forgeline.codecommit.tables.triggers import RepositoryTriggerConfig
from forgeline.core import webhooks
from forgeline.core.context import RequestContext
from forgeline.core.db import session_scope
from forgeline.core.events import EventReader
from forgeline.core.settings import Settings
from forgeline.core.work.tables import Job
from tests.support.errors import code_of
from tests.support.server import free_port, running_server

OLD, NEW = "1" * 40, "2" * 40


# -- a real receiver ------------------------------------------------------------------------
class Receiver:
    """A tiny HTTP server on a free loopback port that records every POST it gets.

    `statuses` are answered in order, then 200 for everything after.
    """

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        self.statuses = list(statuses or [])
        self._arrived = threading.Condition()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._arrived:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    receiver.requests.append(
                        {
                            "path": self.path,
                            "headers": dict(self.headers),
                            "body": body,
                            "answered": status,
                        }
                    )
                    receiver._arrived.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.requests) >= count, timeout)
            return list(self.requests)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.close()


def records_of(request: dict[str, Any]) -> list[dict[str, Any]]:
    return json.loads(request["body"])["Records"]


def secret_of(server, name: str) -> str:
    """The repository's webhook secret, read as an operator would, from the server's state."""
    cc = server.client("codecommit")
    account = cc.get_repository(repositoryName=name)["repositoryMetadata"]["accountId"]
    ctx = RequestContext(
        account_id=account,
        region="us-east-1",
        principal_arn="",
        access_key_id=None,
        service="codecommit",
        operation="",
    )
    settings = Settings(data_dir=server.data_dir, database_url=server.database_url)
    with session_scope(server.database_url) as session:
        return triggers.webhook_secret(session, repositories.get(session, ctx, name), settings)


def trigger(name="t", destination="arn:aws:sns:us-east-1:123456789012:topic", **extra):
    return {"name": name, "destinationArn": destination, "branches": [], "events": ["all"], **extra}


# -- matching, pure -------------------------------------------------------------------------
def test_events_and_branches_select_ref_changes():
    created = RefChange("refs/heads/main", ZERO_OID, NEW)
    updated = RefChange("refs/heads/main", OLD, NEW)
    deleted = RefChange("refs/heads/old", OLD, ZERO_OID)
    tag = RefChange("refs/tags/v1", ZERO_OID, NEW)
    everything = {"events": ["all"], "branches": []}
    assert all(triggers.matches(everything, c) for c in (created, updated, deleted, tag))
    only_updates = {"events": ["updateReference"], "branches": []}
    assert [triggers.matches(only_updates, c) for c in (created, updated, deleted)] == [
        False,
        True,
        False,
    ]
    two = {"events": ["createReference", "deleteReference"], "branches": []}
    assert [triggers.matches(two, c) for c in (created, updated, deleted)] == [True, False, True]
    on_main = {"events": ["all"], "branches": ["main"]}
    assert [triggers.matches(on_main, c) for c in (created, deleted, tag)] == [True, False, False]


def test_references_are_written_as_aws_writes_them():
    assert triggers.reference_entry(RefChange("refs/heads/a", ZERO_OID, NEW)) == {
        "commit": NEW,
        "ref": "refs/heads/a",
        "created": True,
    }
    assert triggers.reference_entry(RefChange("refs/heads/a", OLD, NEW)) == {
        "commit": NEW,
        "ref": "refs/heads/a",
    }
    assert triggers.reference_entry(RefChange("refs/heads/a", OLD, ZERO_OID)) == {
        "commit": OLD,
        "ref": "refs/heads/a",
        "deleted": True,
    }
    moment = dt.datetime(2016, 1, 1, 23, 59, 59, 7000, tzinfo=dt.UTC)
    assert triggers.format_event_time(moment) == "2016-01-01T23:59:59.007+0000"


def test_signatures_verify_only_the_exact_body():
    signature = webhooks.sign("s3cret", b'{"Records": []}')
    assert signature.startswith("sha256=") and len(signature) == 7 + 64
    assert webhooks.verify("s3cret", b'{"Records": []}', signature)
    assert not webhooks.verify("s3cret", b'{"Records": [1]}', signature)
    assert not webhooks.verify("other", b'{"Records": []}', signature)
    assert not webhooks.verify("s3cret", b'{"Records": []}', None)
    assert [webhooks.retry_pause(n) for n in (1, 2, 3, 5)] == [0.0, 0.5, 1.0, 4.0]


# -- configuration over the API ------------------------------------------------------------
def test_put_replaces_the_list_and_get_returns_it(cc, repo):
    assert cc.get_repository_triggers(repositoryName=repo)["triggers"] == []
    hook = trigger(
        "hook",
        "https://ci.example.test/hook",
        customData="build me",
        branches=["main", "release/1.0"],
        events=["createReference", "updateReference"],
    )
    first = cc.put_repository_triggers(repositoryName=repo, triggers=[hook, trigger("sns")])
    got = cc.get_repository_triggers(repositoryName=repo)
    assert got["configurationId"] == first["configurationId"]
    assert got["triggers"] == [hook, trigger("sns")]
    second = cc.put_repository_triggers(repositoryName=repo, triggers=[])
    assert second["configurationId"] != first["configurationId"]
    cleared = cc.get_repository_triggers(repositoryName=repo)
    assert (cleared["configurationId"], cleared["triggers"]) == (second["configurationId"], [])


@pytest.mark.parametrize(
    ("triggers_", "expected"),
    [
        ([trigger(f"t{i}") for i in range(11)], "MaximumRepositoryTriggersExceededException"),
        ([trigger("bad name")], "InvalidRepositoryTriggerNameException"),
        ([trigger("same"), trigger("same")], "InvalidRepositoryTriggerNameException"),
        ([trigger("")], "RepositoryTriggerNameRequiredException"),
        ([trigger(destination="")], "RepositoryTriggerDestinationArnRequiredException"),
        (
            [trigger(destination="ftp://example.test/x")],
            "InvalidRepositoryTriggerDestinationArnException",
        ),
        (
            [trigger(destination="https://user:pw@example.test/")],
            "InvalidRepositoryTriggerDestinationArnException",
        ),
        (
            [trigger(destination="arn:aws:s3:::bucket")],
            "InvalidRepositoryTriggerDestinationArnException",
        ),
        (
            [trigger(destination="arn:aws:sns:eu-west-1:123456789012:t")],
            "InvalidRepositoryTriggerRegionException",
        ),
        (
            [trigger(destination="arn:aws:lambda:us-west-2:123456789012:function:f")],
            "InvalidRepositoryTriggerRegionException",
        ),
        ([trigger(customData="x" * 1001)], "InvalidRepositoryTriggerCustomDataException"),
        (
            [{**trigger(), "branches": ["bad..branch"]}],
            "InvalidRepositoryTriggerBranchNameException",
        ),
        (
            [{**trigger(), "branches": [f"b{i}" for i in range(101)]}],
            "MaximumBranchesExceededException",
        ),
        (
            [{k: v for k, v in trigger().items() if k != "branches"}],
            "RepositoryTriggerBranchNameListRequiredException",
        ),
        ([{**trigger(), "events": []}], "RepositoryTriggerEventsListRequiredException"),
        (
            [{**trigger(), "events": ["all", "createReference"]}],
            "InvalidRepositoryTriggerEventsException",
        ),
    ],
)
def test_bad_trigger_lists_get_the_specific_error(cc, repo, triggers_, expected):
    assert code_of(cc.put_repository_triggers, repositoryName=repo, triggers=triggers_) == expected
    assert code_of(cc.test_repository_triggers, repositoryName=repo, triggers=triggers_) == expected
    assert cc.get_repository_triggers(repositoryName=repo)["triggers"] == []


def test_lambda_arns_and_missing_repositories(cc, repo):
    fn = trigger("fn", "arn:aws:lambda:us-east-1:123456789012:function:deploy:live")
    cc.put_repository_triggers(repositoryName=repo, triggers=[fn])
    assert cc.get_repository_triggers(repositoryName=repo)["triggers"] == [fn]
    for call in (cc.put_repository_triggers, cc.test_repository_triggers):
        assert (
            code_of(call, repositoryName="no-such-repo-x", triggers=[])
            == "RepositoryDoesNotExistException"
        )
    assert (
        code_of(cc.get_repository_triggers, repositoryName="no-such-repo-x")
        == "RepositoryDoesNotExistException"
    )


def test_test_triggers_delivers_signed_test_events_and_reports_failures(
    cc, repo, receiver, forgeline
):
    head = cc.put_file(repositoryName=repo, branchName="main", filePath="a.txt", fileContent=b"a")[
        "commitId"
    ]
    dead_port = free_port()  # nothing listens there
    tested = cc.test_repository_triggers(
        repositoryName=repo,
        triggers=[
            trigger("hook", f"{receiver.url}/hook", customData="from-test", branches=["main"]),
            trigger("dead", f"http://127.0.0.1:{dead_port}/hook"),
            trigger("sns"),
        ],
    )
    assert tested["successfulExecutions"] == ["hook", "sns"]
    [failure] = tested["failedExecutions"]
    assert failure["trigger"] == "dead" and str(dead_port) in failure["failureMessage"]

    [request] = receiver.wait_for(1)
    assert request["path"] == "/hook"
    assert request["headers"]["Content-Type"] == "application/json"
    assert request["headers"][webhooks.EVENT_HEADER] == "TriggerEventTest"
    assert webhooks.verify(
        secret_of(forgeline, repo), request["body"], request["headers"][webhooks.SIGNATURE_HEADER]
    )
    [record] = records_of(request)
    assert record["eventName"] == "TriggerEventTest" and record["eventTriggerName"] == "hook"
    assert record["codecommit"]["references"] == [{"commit": head, "ref": "refs/heads/main"}]
    assert record["customData"] == "from-test"
    assert record["eventSourceARN"].endswith(f":{repo}") and record["awsRegion"] == "us-east-1"
    assert record["userIdentityARN"].startswith("arn:aws:iam::")
    assert request["headers"][webhooks.DELIVERY_HEADER] == record["eventId"]
    # Testing changes nothing that is stored.
    assert cc.get_repository_triggers(repositoryName=repo)["triggers"] == []

    reader = EventReader(f"triggers-test-{uuid.uuid4().hex}", forgeline.database_url)
    fired = []
    while batch := reader.read(limit=1000, detail_type=triggers.TRIGGER_EVENT):
        fired += [e.detail for e in batch if e.detail["repositoryName"] == repo]
    assert sorted(d["triggerName"] for d in fired) == ["dead", "hook", "sns"]
    assert {d["event"] for d in fired} == {"repositoryTriggerTested"}


def test_test_triggers_in_an_empty_repository_sends_sample_data(cc, repo, receiver):
    cc.test_repository_triggers(
        repositoryName=repo, triggers=[trigger("hook", receiver.url, branches=["develop"])]
    )
    [record] = records_of(receiver.wait_for(1)[0])
    assert record["codecommit"]["references"] == [{"commit": ZERO_OID, "ref": "refs/heads/develop"}]


def test_a_receiver_error_is_a_failed_test_execution(cc, repo):
    failing = Receiver(statuses=[500])
    try:
        tested = cc.test_repository_triggers(
            repositoryName=repo, triggers=[trigger("hook", failing.url)]
        )
    finally:
        failing.close()
    assert tested["successfulExecutions"] == []
    assert "HTTP 500" in tested["failedExecutions"][0]["failureMessage"]


# -- firing on ref changes, delivered by a worker ------------------------------------------
@pytest.fixture(scope="module")
def hooked(tmp_path_factory):
    """A server whose workers load the webhook job kind (production shape on Postgres)."""
    with running_server(
        tmp_path_factory.mktemp("triggers"),
        redis_db=10,
    ) as server:
        yield server


@pytest.fixture
def hooked_repo(hooked):
    cc = hooked.client("codecommit")
    name = f"fire-{uuid.uuid4().hex[:10]}"
    cc.create_repository(repositoryName=name)
    yield cc, name
    cc.delete_repository(repositoryName=name)


def delivery_jobs(server) -> list[Job]:
    with session_scope(server.database_url) as session:
        return list(session.scalars(select(Job).where(Job.kind == webhooks.JOB_KIND)).all())


def test_ref_changes_fire_matching_triggers_with_signed_webhooks(hooked, hooked_repo, receiver):
    cc, name = hooked_repo
    cc.put_repository_triggers(
        repositoryName=name,
        triggers=[
            trigger("main-only", f"{receiver.url}/main", customData="ci", branches=["main"]),
            trigger("deletions", f"{receiver.url}/gone", events=["deleteReference"]),
            trigger("sns"),
        ],
    )
    first = cc.put_file(repositoryName=name, branchName="main", filePath="a", fileContent=b"1")
    [created] = receiver.wait_for(1)
    assert created["path"] == "/main"
    secret = secret_of(hooked, name)
    assert webhooks.verify(secret, created["body"], created["headers"][webhooks.SIGNATURE_HEADER])
    [record] = records_of(created)
    assert record["eventName"] == "ReferenceChanges" and record["eventTriggerName"] == "main-only"
    assert record["codecommit"]["references"] == [
        {"commit": first["commitId"], "ref": "refs/heads/main", "created": True}
    ]
    assert record["customData"] == "ci" and record["eventSourceARN"].endswith(f":{name}")
    assert (
        record["eventTriggerConfigId"]
        == cc.get_repository_triggers(repositoryName=name)["configurationId"]
    )

    # A branch the trigger does not name fires nothing there; deleting it fires "deletions".
    cc.create_branch(repositoryName=name, branchName="topic", commitId=first["commitId"])
    cc.delete_branch(repositoryName=name, branchName="topic")
    second = cc.put_file(
        repositoryName=name,
        branchName="main",
        filePath="a",
        fileContent=b"2",
        parentCommitId=first["commitId"],
    )
    arrived = receiver.wait_for(3)
    assert sorted(r["path"] for r in arrived) == ["/gone", "/main", "/main"]
    [gone] = [r for r in arrived if r["path"] == "/gone"]
    assert records_of(gone)[0]["codecommit"]["references"] == [
        {"commit": first["commitId"], "ref": "refs/heads/topic", "deleted": True}
    ]
    [updated] = [r for r in arrived[1:] if r["path"] == "/main"]
    assert records_of(updated)[0]["codecommit"]["references"] == [
        {"commit": second["commitId"], "ref": "refs/heads/main"}
    ]
    assert all(
        webhooks.verify(secret, r["body"], r["headers"][webhooks.SIGNATURE_HEADER]) for r in arrived
    )
    time.sleep(0.5)
    assert len(receiver.requests) == 3  # nothing for topic's creation


def test_a_failing_receiver_gets_the_same_delivery_again(hooked, hooked_repo):
    cc, name = hooked_repo
    flaky = Receiver(statuses=[500, 503])
    try:
        cc.put_repository_triggers(repositoryName=name, triggers=[trigger("flaky", flaky.url)])
        cc.put_file(repositoryName=name, branchName="main", filePath="a", fileContent=b"1")
        attempts = flaky.wait_for(3)
    finally:
        flaky.close()
    assert [a["answered"] for a in attempts] == [500, 503, 200]
    assert len({a["body"] for a in attempts}) == 1
    assert len({a["headers"][webhooks.SIGNATURE_HEADER] for a in attempts}) == 1
    event_id = records_of(attempts[0])[0]["eventId"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        jobs = [j for j in delivery_jobs(hooked) if event_id in j.payload["body"]]
        if jobs and jobs[0].status == "SUCCEEDED":
            break
        time.sleep(0.1)
    [job] = jobs
    assert (job.status, job.attempts, job.result["status"]) == ("SUCCEEDED", 3, 200)


def test_an_unreachable_receiver_fails_after_its_attempts(hooked, hooked_repo):
    cc, name = hooked_repo
    dead = f"http://127.0.0.1:{free_port()}/nobody"
    cc.put_repository_triggers(repositoryName=name, triggers=[trigger("dead", dead)])
    cc.put_file(repositoryName=name, branchName="main", filePath="a", fileContent=b"1")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        jobs = [j for j in delivery_jobs(hooked) if j.payload["url"] == dead]
        if jobs and jobs[0].status == "FAILED":
            break
        time.sleep(0.2)
    [job] = jobs
    assert job.status == "FAILED" and job.attempts == webhooks.MAX_ATTEMPTS
    assert "Could not deliver" in job.last_error


def test_deleting_the_repository_drops_its_trigger_configuration(cc, forgeline):
    name = f"triggers-gone-{uuid.uuid4().hex[:8]}"
    made = cc.create_repository(repositoryName=name)["repositoryMetadata"]
    cc.put_repository_triggers(repositoryName=name, triggers=[trigger("sns")])
    with session_scope(forgeline.database_url) as session:
        assert session.get(RepositoryTriggerConfig, made["repositoryId"]) is not None
    cc.delete_repository(repositoryName=name)
    with session_scope(forgeline.database_url) as session:
        assert session.get(RepositoryTriggerConfig, made["repositoryId"]) is None
