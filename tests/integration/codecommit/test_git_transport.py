"""git over smart HTTP and HTTPS against a real Forgeline server, driven by the git CLI.

Clients are the ones CodeCommit users run: git with `aws codecommit credential-helper`,
git-remote-codecommit (`codecommit::<region>://<repo>`, HTTPS only), and HTTPS git
credentials stored with git's `store` helper.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from forgeline.core.auth import sigv4
from tests.support.git_cli import (
    REDIS_DB,
    Git,
    bare_path,
    fsck,
    http_url,
    new_repository,
    repository_events,
    signed_url,
    sigv4_password,
    write_credentials,
)
from tests.support.server import free_port, running_server

DEFAULT_ACCOUNT = "000000000000"  # the account of the server's bootstrap credentials


# --- the server -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tls_port = free_port()
    with running_server(
        tmp_path_factory.mktemp("git-server"),
        redis_db=REDIS_DB,
        extra_env={"FORGELINE_TLS_PORT": str(tls_port)},
    ) as running:
        yield running


@pytest.fixture
def git(server, tmp_path):
    return Git(server, tmp_path / "home")


# --- authentication -------------------------------------------------------------------------


def test_first_request_is_challenged_with_basic_auth(server):
    _, name, _ = new_repository(server)
    response = httpx.get(f"{http_url(server, name)}/info/refs?service=git-upload-pack")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith('Basic realm="')
    assert "no-cache" in response.headers["cache-control"]


def test_wrong_stale_and_foreign_passwords_are_refused(server):
    _, name, _ = new_repository(server)
    url = f"{http_url(server, name)}/info/refs?service=git-upload-pack"
    host = f"127.0.0.1:{server.port}"

    key, good = sigv4_password(server, name, host)
    assert httpx.get(url, auth=(key, good)).status_code == 200

    _, wrong = sigv4_password(server, name, host, secret="not-the-secret")
    assert httpx.get(url, auth=(key, wrong)).status_code == 401

    old = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=16)
    _, stale = sigv4_password(server, name, host, now=old)
    refused = httpx.get(url, auth=(key, stale))
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith("Basic")

    # A password signed for another repository's path does not open this one.
    _, other = sigv4_password(server, "some-other-repo", host)
    assert httpx.get(url, auth=(key, other)).status_code == 401

    # An unknown access key, and a session token Forgeline never issued (enforce mode).
    assert httpx.get(url, auth=("AKIAUNKNOWNKEY000000", good)).status_code == 401
    assert httpx.get(url, auth=(f"{key}%SESSIONTOKEN", good)).status_code == 401


def test_git_reports_authentication_failure_for_a_stale_password(server, git, tmp_path):
    _, name, _ = new_repository(server)
    host = f"127.0.0.1:{server.port}"
    old = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=20)
    key, stale = sigv4_password(server, name, host, now=old)
    url = f"http://{key}:{stale}@{host}/v1/repos/{name}"
    result = git.run("clone", url, str(tmp_path / "stale"), check=False)
    assert result.returncode != 0
    assert "Authentication failed" in result.stderr


def test_unknown_repository_and_other_accounts_are_not_found(server, git, tmp_path):
    created = json.loads(server.cli("accounts", "create", "--name", "other").stdout)
    other_credentials = (created["accessKeyId"], created["secretAccessKey"])
    _, name, _ = new_repository(server)
    work = git.new_work_tree(tmp_path / "a")
    mine = git.commit(work, "owner.txt", "account A\n", "A's commit")
    git.run("push", signed_url(server, name), "main", cwd=work)

    other = Git(
        server,
        tmp_path / "home-b",
        write_credentials(tmp_path / "b-credentials", *other_credentials),
    )
    refused = other.helper("clone", http_url(server, name), str(tmp_path / "b"), check=False)
    assert refused.returncode != 0
    assert "not found" in refused.stderr.lower() or "404" in refused.stderr

    # The other account's repository of the same name is its own, and reachable by it.
    b_client = server.client("codecommit", credentials=other_credentials)
    b_client.create_repository(repositoryName=name)
    work_b = other.new_work_tree(tmp_path / "b-work")
    theirs = other.commit(work_b, "owner.txt", "account B\n", "B's commit")
    other.run("push", signed_url(server, name, other_credentials), "main", cwd=work_b)
    other.run("clone", signed_url(server, name, other_credentials), str(tmp_path / "b-clone"))
    assert (tmp_path / "b-clone" / "owner.txt").read_text() == "account B\n"
    assert theirs != mine

    host = f"127.0.0.1:{server.port}"
    key_b = other_credentials[0]
    password_b = sigv4.git_password(other_credentials[1], "/v1/repos/none", host, "us-east-1")
    response = httpx.get(
        f"{server.url}/v1/repos/none/info/refs?service=git-upload-pack", auth=(key_b, password_b)
    )
    assert response.status_code == 404


def test_requests_git_does_not_make_are_refused(server):
    _, name, _ = new_repository(server)
    host = f"127.0.0.1:{server.port}"
    key, password = sigv4_password(server, name, host)
    base = http_url(server, name)
    # The dumb protocol is not served.
    assert httpx.get(f"{base}/info/refs", auth=(key, password)).status_code == 403
    assert httpx.get(f"{base}/HEAD", auth=(key, password)).status_code == 404
    # Wrong method and wrong content type.
    assert httpx.post(f"{base}/info/refs?service=git-upload-pack").status_code == 405
    wrong_type = httpx.post(
        f"{base}/git-upload-pack",
        content=b"0000",
        headers={"content-type": "text/plain"},
        auth=(key, password),
    )
    assert wrong_type.status_code == 415


# --- clone and push -------------------------------------------------------------------------


def test_clone_and_push_with_the_aws_credential_helper(server, git, tmp_path):
    client, name, meta = new_repository(server)
    assert meta["cloneUrlHttp"] == http_url(server, name)
    assert "defaultBranch" not in meta

    work = git.new_work_tree(tmp_path / "work", branch="trunk")
    first = git.commit(work, "README.md", "hello\n", "first")
    git.helper("push", meta["cloneUrlHttp"], "trunk", cwd=work)

    # The first branch pushed became the default branch, and HEAD follows it.
    after = client.get_repository(repositoryName=name)["repositoryMetadata"]
    assert after["defaultBranch"] == "trunk"
    assert client.get_branch(repositoryName=name, branchName="trunk")["branch"]["commitId"] == first

    git.helper("clone", meta["cloneUrlHttp"], str(tmp_path / "clone"))
    clone = tmp_path / "clone"
    assert (clone / "README.md").read_text() == "hello\n"
    assert git.run("rev-parse", "--abbrev-ref", "HEAD", cwd=clone).stdout.strip() == "trunk"

    second = git.commit(clone, "more.txt", "more\n", "second")
    git.run("push", signed_url(server, name), "trunk", cwd=clone)
    assert (
        client.get_branch(repositoryName=name, branchName="trunk")["branch"]["commitId"] == second
    )
    assert fsck(bare_path(server, meta)).returncode == 0


def test_git_remote_codecommit_clones_and_pushes_over_https(server, git, tmp_path):
    client, name, meta = new_repository(server)
    work = git.new_work_tree(tmp_path / "work")
    git.commit(work, "a.txt", "a\n", "seed")
    git.run("push", signed_url(server, name), "main", cwd=work)

    clone = tmp_path / "clone"
    git.run("clone", f"codecommit::us-east-1://{name}", str(clone))
    assert (clone / "a.txt").read_text() == "a\n"
    pushed = git.commit(clone, "b.txt", "b\n", "over https")
    git.run("push", "origin", "main", cwd=clone)
    assert client.get_branch(repositoryName=name, branchName="main")["branch"]["commitId"] == pushed

    # Without trusting Forgeline's certificate, git refuses the connection.
    untrusted = git.run(
        "clone",
        f"codecommit::us-east-1://{name}",
        str(tmp_path / "untrusted"),
        check=False,
        GIT_SSL_CAINFO="/etc/ssl/certs/ca-certificates.crt",
    )
    assert untrusted.returncode != 0
    assert "certificate" in untrusted.stderr.lower() or "ssl" in untrusted.stderr.lower()


def test_aws_credential_helper_over_https(server, git, tmp_path):
    client, name, _ = new_repository(server)
    work = git.new_work_tree(tmp_path / "work")
    head = git.commit(work, "x.txt", "x\n", "x")
    git.helper("push", f"{git.https_url}/v1/repos/{name}", "main", cwd=work)
    assert client.get_branch(repositoryName=name, branchName="main")["branch"]["commitId"] == head


def test_https_git_credentials_from_the_cli(server, git, tmp_path):
    _, name, _ = new_repository(server)
    account = DEFAULT_ACCOUNT
    created = server.cli("git-credentials", "create", "--account-id", account, "--user", "dev")
    assert created.returncode == 0, created.stderr
    credential = json.loads(created.stdout)
    assert credential["serviceUserName"] == f"dev-at-{account}"
    assert len(credential["servicePassword"]) >= 40

    listed = json.loads(server.cli("git-credentials", "list", "--account-id", account).stdout)
    assert credential["serviceSpecificCredentialId"] in {
        c["serviceSpecificCredentialId"] for c in listed
    }
    assert all("servicePassword" not in c for c in listed)
    stored_hash = _stored_password_hash(server, credential["serviceSpecificCredentialId"])
    assert credential["servicePassword"] not in stored_hash and stored_hash.startswith("scrypt$")

    # git's own `store` helper holds the user name and password, as AWS documents.
    store = tmp_path / "git-credentials"
    user = credential["serviceUserName"]
    store.write_text(f"http://{user}:{credential['servicePassword']}@127.0.0.1:{server.port}\n")
    git.run("config", "--global", "credential.helper", f"store --file={store}")
    work = git.new_work_tree(tmp_path / "work")
    head = git.commit(work, "f.txt", "f\n", "with https git credentials")
    git.run("push", http_url(server, name), "main", cwd=work)
    git.run("clone", http_url(server, name), str(tmp_path / "clone"))
    assert git.run("rev-parse", "HEAD", cwd=tmp_path / "clone").stdout.strip() == head

    events = [e for e in repository_events(server, name) if e["event"] == "referenceCreated"]
    assert events[-1]["callerUserArn"] == f"arn:aws:iam::{account}:user/dev"

    url = f"{http_url(server, name)}/info/refs?service=git-upload-pack"
    assert httpx.get(url, auth=(user, "wrong-password")).status_code == 401
    deleted = server.cli("git-credentials", "delete", "--account-id", account, "--user", "dev")
    assert deleted.returncode == 0, deleted.stderr
    assert httpx.get(url, auth=(user, credential["servicePassword"])).status_code == 401


def _stored_password_hash(server, credential_id: str) -> str:
    from forgeline.codecommit.tables.git_credentials import GitCredential
    from forgeline.core.db import session_scope

    with session_scope(server.database_url) as session:
        return session.get(GitCredential, credential_id).password_hash


# --- protocol versions and request bodies -----------------------------------------------------


@pytest.mark.parametrize("version", ["0", "1", "2"])
def test_protocol_versions(server, git, tmp_path, version):
    _, name, _ = new_repository(server)
    work = git.new_work_tree(tmp_path / "work")
    head = git.commit(work, "v.txt", version, f"protocol {version}")
    git.run("push", signed_url(server, name), "main", cwd=work)
    trace = tmp_path / "trace"
    git.run(
        "-c",
        f"protocol.version={version}",
        "clone",
        signed_url(server, name),
        str(tmp_path / "clone"),
        GIT_TRACE_PACKET=str(trace),
    )
    assert git.run("rev-parse", "HEAD", cwd=tmp_path / "clone").stdout.strip() == head
    spoken = trace.read_text()
    if version == "2":
        assert "version 2" in spoken and "ls-refs" in spoken
    else:
        assert "ls-refs" not in spoken


def _upload_pack_request(wants: list[str], haves: list[str]) -> bytes:
    def pkt(text: str) -> bytes:
        return f"{len(text) + 4:04x}{text}".encode()

    lines = [pkt(f"want {wants[0]} multi_ack_detailed side-band-64k ofs-delta\n")]
    lines += [pkt(f"want {oid}\n") for oid in wants[1:]]
    lines.append(b"0000")
    lines += [pkt(f"have {oid}\n") for oid in haves]
    lines.append(pkt("done\n"))
    return b"".join(lines)


def _pack_object_count(response: bytes) -> int:
    """Objects in the pack of an upload-pack response (side-band channel 1)."""
    pack, offset = b"", 0
    while offset < len(response):
        size = int(response[offset : offset + 4], 16)
        if size == 0:
            offset += 4
            continue
        payload = response[offset + 4 : offset + size]
        if payload[:1] == b"\x01":
            pack += payload[1:]
        offset += size
    assert pack[:4] == b"PACK", response[:200]
    return int.from_bytes(pack[8:12], "big")


def _import_empty_commits(work: Path, branch: str, count: int) -> None:
    """`count` commits on top of `branch`, made in one `git fast-import` run."""
    parent = subprocess.run(
        ["git", "rev-parse", branch], cwd=work, capture_output=True, text=True, check=True
    ).stdout.strip()
    stream = []
    now = int(time.time())  # newer than the fetched history, so negotiation walks them first
    for i in range(count):
        message = f"local {i}\n"
        stream.append(
            f"commit refs/heads/{branch}\n"
            f"committer Tester <tester@example.com> {now + i} +0000\n"
            f"data {len(message)}\n{message}"
        )
        if i == 0:
            stream.append(f"from {parent}\n")
        stream.append("\n")
    subprocess.run(
        ["git", "fast-import", "--quiet"],
        cwd=work,
        input="".join(stream),
        text=True,
        check=True,
        capture_output=True,
    )


def test_gzip_and_chunked_request_bodies(server, git, tmp_path):
    _, name, _ = new_repository(server)
    work = git.new_work_tree(tmp_path / "work")
    commits = [git.commit(work, "n.txt", str(i), f"c{i}") for i in range(30)]
    git.run("push", signed_url(server, name), "main", cwd=work)

    host = f"127.0.0.1:{server.port}"
    key, password = sigv4_password(server, name, host)
    body = _upload_pack_request([commits[-1]], commits[:20])
    headers = {"content-type": "application/x-git-upload-pack-request"}
    url = f"{http_url(server, name)}/git-upload-pack"

    plain = httpx.post(url, content=body, headers=headers, auth=(key, password))
    assert plain.status_code == 200
    assert plain.headers["content-type"] == "application/x-git-upload-pack-result"
    assert b"PACK" in plain.content

    def chunks(data: bytes, size: int = 7):
        for start in range(0, len(data), size):
            yield data[start : start + size]

    # gzip, sent chunked in small pieces: the server inflates as the pieces arrive.
    zipped = httpx.post(
        url,
        content=chunks(gzip.compress(body)),
        headers={**headers, "content-encoding": "gzip"},
        auth=(key, password),
    )
    assert zipped.status_code == 200
    assert _pack_object_count(zipped.content) == _pack_object_count(plain.content) > 0

    corrupt = httpx.post(
        url,
        content=b"\x1f\x8b\x08\x00garbage-not-deflate",
        headers={**headers, "content-encoding": "gzip"},
        auth=(key, password),
    )
    assert corrupt.status_code == 400

    # git itself gzips upload-pack requests with many haves: an incremental fetch of a
    # clone that has commits the server lacks.
    clone = tmp_path / "clone"
    git.run("clone", "-q", signed_url(server, name), str(clone))
    _import_empty_commits(clone, "main", 120)
    git.commit(work, "n.txt", "server side", "new upstream commit")
    git.run("push", signed_url(server, name), "main", cwd=work)
    fetch = git.run(
        "fetch", "-q", "origin", cwd=clone, GIT_TRACE_CURL="2", GIT_TRACE_CURL_NO_DATA="1"
    )
    assert "Content-Encoding: gzip" in fetch.stderr, fetch.stderr.replace("\n", " | ")[-6000:]
    fetched = git.run("rev-parse", "origin/main", cwd=clone).stdout.strip()
    assert fetched == git.run("rev-parse", "HEAD", cwd=work).stdout.strip()


# --- pushes: events, force, races -----------------------------------------------------------


def test_push_events_for_created_updated_and_deleted_refs(server, git, tmp_path):
    _, name, meta = new_repository(server)
    url = signed_url(server, name)
    work = git.new_work_tree(tmp_path / "work")
    first = git.commit(work, "e.txt", "1", "one")
    git.run("push", url, "main", cwd=work)
    second = git.commit(work, "e.txt", "2", "two")
    git.run("branch", "feature", cwd=work)
    git.run("push", url, "main", "feature", cwd=work)
    git.run("push", url, "--delete", "feature", cwd=work)
    git.run("tag", "v1", first, cwd=work)
    git.run("push", url, "v1", cwd=work)
    # The default branch cannot be deleted by a push, as DeleteBranch refuses it too.
    refused = git.run("push", url, "--delete", "main", cwd=work, check=False)
    assert refused.returncode != 0 and "deletion of the current branch prohibited" in refused.stderr

    events = repository_events(server, name)
    seen = [
        (e["event"], e["referenceFullName"], e.get("oldCommitId"), e.get("commitId"))
        for e in events
    ]
    assert seen == [
        ("referenceCreated", "refs/heads/main", None, first),
        ("referenceUpdated", "refs/heads/main", first, second),
        ("referenceCreated", "refs/heads/feature", None, second),
        ("referenceDeleted", "refs/heads/feature", second, None),
        ("referenceCreated", "refs/tags/v1", None, first),
    ]
    assert {e["callerUserArn"] for e in events} == {f"arn:aws:iam::{DEFAULT_ACCOUNT}:user/admin"}
    assert {e["repositoryId"] for e in events} == {meta["repositoryId"]}


def test_an_empty_repository_clones(server, git, tmp_path):
    _, name, _ = new_repository(server)
    result = git.run("clone", signed_url(server, name), str(tmp_path / "empty"))
    assert "empty repository" in result.stderr
    assert git.run("status", "--porcelain", cwd=tmp_path / "empty").stdout == ""


def test_force_push_is_accepted(server, git, tmp_path):
    client, name, _ = new_repository(server)
    url = signed_url(server, name)
    work = git.new_work_tree(tmp_path / "work")
    git.commit(work, "f.txt", "1", "one")
    git.commit(work, "f.txt", "2", "two")
    git.run("push", url, "main", cwd=work)
    git.run("reset", "-q", "--hard", "HEAD~1", cwd=work)
    rewritten = git.commit(work, "f.txt", "rewritten", "rewritten")
    plain = git.run("push", url, "main", cwd=work, check=False)
    assert plain.returncode != 0 and "rejected" in plain.stderr
    git.run("push", "--force", url, "main", cwd=work)
    assert (
        client.get_branch(repositoryName=name, branchName="main")["branch"]["commitId"] == rewritten
    )


def test_racing_pushes_have_exactly_one_winner(server, git, tmp_path):
    client, name, meta = new_repository(server)
    url = signed_url(server, name)
    work = git.new_work_tree(tmp_path / "seed")
    git.commit(work, "base.txt", "base", "base")
    git.run("push", url, "main", cwd=work)

    clones, heads = [], []
    for side in ("left", "right"):
        clone = tmp_path / side
        git.run("clone", "-q", url, str(clone))
        for i in range(3):
            head = git.commit(clone, f"{side}.txt", f"{side} {i}" * 1000, f"{side} {i}")
        clones.append(clone)
        heads.append(head)

    start = threading.Barrier(2)
    results: dict[int, subprocess.CompletedProcess[str]] = {}

    def push(index: int) -> None:
        start.wait()
        results[index] = git.run("push", "origin", "main", cwd=clones[index], check=False)

    threads = [threading.Thread(target=push, args=(i,)) for i in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    codes = sorted(result.returncode for result in results.values())
    assert codes[0] == 0 and codes[1] != 0, [r.stderr for r in results.values()]
    loser = next(r for r in results.values() if r.returncode != 0)
    assert "rejected" in loser.stderr or "failed to update ref" in loser.stderr
    winner = heads[next(i for i, r in results.items() if r.returncode == 0)]
    assert client.get_branch(repositoryName=name, branchName="main")["branch"]["commitId"] == winner
    checked = fsck(bare_path(server, meta))
    assert checked.returncode == 0, checked.stderr
    updates = [e for e in repository_events(server, name) if e["event"] == "referenceUpdated"]
    assert [e["commitId"] for e in updates] == [winner]
