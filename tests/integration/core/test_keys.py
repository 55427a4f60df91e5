"""Accounts, access keys, secrets at rest and bootstrap credentials on the run's database
backend; and boto3 calls verified end to end by a loopback server using those keys."""

from __future__ import annotations

import configparser
import http.server
import json
import multiprocessing
import re
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import boto3
import botocore.session
import pytest
import sqlalchemy as sa
from botocore.config import Config
from botocore.exceptions import ClientError
from cryptography.fernet import Fernet

from forgeline.core.auth import crypto, keys, sigv4
from forgeline.core.auth.errors import (
    AuthError,
    InvalidSignatureException,
    UnrecognizedClientException,
)
from forgeline.core.auth.tables import AccessKey, Account
from forgeline.core.db import Base, get_engine, session_scope
from forgeline.core.settings import Settings

SERVER_KEY = Fernet.generate_key()


@pytest.fixture
def db(database_url: str) -> str:
    Base.metadata.create_all(get_engine(database_url))
    keys.invalidate_cached_key()
    return database_url


def make_account(db: str, name: str = "team", account_id: str | None = None) -> str:
    with session_scope(db) as session:
        return keys.create_account(session, name, account_id).id


def make_key(db: str, account_id: str, user_name: str = "admin") -> tuple[str, str]:
    with session_scope(db) as session:
        return keys.create_access_key(session, account_id, user_name, server_key=SERVER_KEY)


def lookup(db: str, access_key_id: str, **kwargs: object) -> keys.KeyRecord | None:
    with session_scope(db) as session:
        return keys.lookup_secret(session, access_key_id, SERVER_KEY, **kwargs)  # type: ignore[arg-type]


# --- accounts and keys ------------------------------------------------------------------


def test_accounts_random_or_given_ids(db: str) -> None:
    random_ids = {make_account(db, f"team-{n}") for n in range(5)}
    assert len(random_ids) == 5
    assert all(re.fullmatch(r"\d{12}", account_id) for account_id in random_ids)
    assert make_account(db, "fixed", "123456789012") == "123456789012"
    with session_scope(db) as session:
        assert session.get(Account, "123456789012").name == "fixed"  # type: ignore[union-attr]
        with pytest.raises(ValueError, match="12 digits"):
            keys.create_account(session, "bad", "12345")
    with pytest.raises(sa.exc.IntegrityError):
        make_account(db, "again", "123456789012")


def test_access_key_shape_and_principal(db: str) -> None:
    account_id = make_account(db)
    access_key_id, secret = make_key(db, account_id, "deployer")
    root_key_id, _ = make_key(db, account_id, "root")
    assert re.fullmatch(r"AKIA[A-Z2-7]{16}", access_key_id)
    assert len(secret) == 40 and re.fullmatch(r"[A-Za-z0-9+/]{40}", secret)
    with session_scope(db) as session:
        key = session.get(AccessKey, access_key_id)
        assert key is not None and key.status == "Active"
        assert key.principal_arn == f"arn:aws:iam::{account_id}:user/deployer"
        assert key.created_at.tzinfo is not None
        root = session.get(AccessKey, root_key_id)
        assert root is not None and root.principal_arn == f"arn:aws:iam::{account_id}:root"


def test_secret_is_encrypted_at_rest(db: str) -> None:
    access_key_id, secret = make_key(db, make_account(db))
    with get_engine(db).connect() as conn:
        row = conn.execute(
            sa.text("SELECT * FROM access_keys WHERE access_key_id = :id"), {"id": access_key_id}
        ).one()
    stored = row._mapping["secret_encrypted"]
    assert all(secret not in str(value) for value in row)
    assert crypto.decrypt(SERVER_KEY, stored) == secret
    with pytest.raises(crypto.DecryptionError, match="server key"):
        crypto.decrypt(Fernet.generate_key(), stored)


def test_key_for_unknown_account_is_refused(db: str) -> None:
    with pytest.raises(keys.AccountNotFound), session_scope(db) as session:
        keys.create_access_key(session, "999999999999", server_key=SERVER_KEY)


def test_list_and_delete(db: str) -> None:
    first, second = make_account(db, "a"), make_account(db, "b")
    key_a1, secret_a1 = make_key(db, first)
    key_a2, _ = make_key(db, first)
    key_b, _ = make_key(db, second)
    with session_scope(db) as session:
        listed = keys.list_access_keys(session, first)
        everything = keys.list_access_keys(session)
    assert {k.access_key_id for k in listed} == {key_a1, key_a2}
    assert {k.access_key_id for k in everything} == {key_a1, key_a2, key_b}
    assert all(secret_a1 not in repr(k) for k in listed)
    with session_scope(db) as session:
        assert keys.delete_access_key(session, key_a1) is True
        assert keys.delete_access_key(session, key_a1) is False
    with session_scope(db) as session:
        assert [k.access_key_id for k in keys.list_access_keys(session, first)] == [key_a2]


def test_lookup_secret(db: str) -> None:
    account_id = make_account(db)
    access_key_id, secret = make_key(db, account_id, "ci")
    record = lookup(db, access_key_id)
    assert record is not None
    assert record.secret_access_key == secret
    assert record.account_id == account_id
    assert record.principal_arn == f"arn:aws:iam::{account_id}:user/ci"
    assert secret not in repr(record)
    assert lookup(db, "AKIAUNKNOWNUNKNOWN00") is None
    assert lookup(db, "") is None


# --- the lookup cache --------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_cache_serves_until_ttl(db: str) -> None:
    access_key_id, _ = make_key(db, make_account(db))
    clock = Clock()
    cache = keys.SecretCache(ttl=5.0, clock=clock)
    assert lookup(db, access_key_id, cache=cache) is not None
    # Changed behind the module's back: the cached entry still answers...
    with get_engine(db).begin() as conn:
        conn.execute(
            sa.text("UPDATE access_keys SET status = 'Inactive' WHERE access_key_id = :id"),
            {"id": access_key_id},
        )
    clock.now += 4.9
    assert lookup(db, access_key_id, cache=cache) is not None
    # ...until it expires.
    clock.now += 0.2
    assert lookup(db, access_key_id, cache=cache) is None


def test_cache_evicts_oldest_beyond_capacity() -> None:
    cache = keys.SecretCache(ttl=60, max_entries=2)
    for n in range(3):
        cache.put("db", keys.KeyRecord(f"AKIA{n}", "s", "000000000000", "arn"))
    assert cache.get("db", "AKIA0") is None
    assert cache.get("db", "AKIA1") is not None and cache.get("db", "AKIA2") is not None


def test_delete_invalidates_the_cache(db: str) -> None:
    access_key_id, _ = make_key(db, make_account(db))
    assert lookup(db, access_key_id) is not None  # now cached for 5 s
    with session_scope(db) as session:
        assert keys.delete_access_key(session, access_key_id)
    assert lookup(db, access_key_id) is None


def test_deactivation_invalidates_the_cache(db: str) -> None:
    access_key_id, _ = make_key(db, make_account(db))
    assert lookup(db, access_key_id) is not None
    with session_scope(db) as session:
        assert keys.set_access_key_status(session, access_key_id, "Inactive")
    assert lookup(db, access_key_id) is None
    with session_scope(db) as session:
        assert keys.set_access_key_status(session, access_key_id, "Active")
    assert lookup(db, access_key_id) is not None


# --- server key ------------------------------------------------------------------------


def test_server_key_is_generated_once_with_mode_0600(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    key = crypto.load_server_key(settings)
    path = tmp_path / "data" / crypto.SERVER_KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().strip() == key
    assert crypto.load_server_key(settings) == key
    assert crypto.decrypt(key, crypto.encrypt(key, "s3cr3t")) == "s3cr3t"
    assert [p.name for p in path.parent.iterdir()] == [crypto.SERVER_KEY_FILE]


def test_configured_server_key_wins(tmp_path: Path) -> None:
    configured = Fernet.generate_key()
    settings = Settings(data_dir=tmp_path, server_key=configured.decode())
    assert crypto.load_server_key(settings) == configured
    assert not (tmp_path / crypto.SERVER_KEY_FILE).exists()
    with pytest.raises(ValueError, match="FORGELINE_SERVER_KEY"):
        crypto.load_server_key(Settings(data_dir=tmp_path, server_key="not-a-key"))


def _load_key_after(barrier: multiprocessing.synchronize.Barrier, data_dir: str, out) -> None:  # type: ignore[no-untyped-def]
    barrier.wait()
    out.put(crypto.load_server_key(Settings(data_dir=Path(data_dir))))


@pytest.mark.parametrize("round_", range(3))
def test_processes_starting_together_agree_on_one_key(tmp_path: Path, round_: int) -> None:
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(12)
    results = context.Queue()
    workers = [
        context.Process(target=_load_key_after, args=(barrier, str(tmp_path), results))
        for _ in range(12)
    ]
    for worker in workers:
        worker.start()
    found = {results.get(timeout=30) for _ in workers}
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0
    assert found == {(tmp_path / crypto.SERVER_KEY_FILE).read_bytes().strip()}
    assert [p.name for p in tmp_path.iterdir()] == [crypto.SERVER_KEY_FILE]


# --- bootstrap credentials ----------------------------------------------------------------


def bootstrap(db: str, settings: Settings) -> Path:
    with session_scope(db) as session:
        return keys.ensure_bootstrap_credentials(session, settings, SERVER_KEY)


def read_profile(path: Path) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    assert parser.read(path) == [str(path)]
    return parser[keys.CREDENTIALS_PROFILE]


def test_bootstrap_credentials(db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(data_dir=tmp_path, default_region="eu-west-2")
    path = bootstrap(db, settings)
    assert path == tmp_path / "credentials"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    profile = read_profile(path)
    assert profile["region"] == "eu-west-2"
    record = lookup(db, profile["aws_access_key_id"])
    assert record is not None
    assert record.secret_access_key == profile["aws_secret_access_key"]
    assert record.account_id == settings.default_account
    assert record.principal_arn == f"arn:aws:iam::{settings.default_account}:user/admin"

    # botocore reads it as a shared-credentials file.
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(path))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    credentials = botocore.session.Session(profile="forgeline").get_credentials()
    assert credentials is not None
    assert credentials.access_key == profile["aws_access_key_id"]

    # A second start changes nothing.
    content = path.read_text()
    assert bootstrap(db, settings) == path
    assert path.read_text() == content
    with session_scope(db) as session:
        assert len(keys.list_access_keys(session)) == 1


def test_bootstrap_replaces_a_file_whose_key_is_gone(db: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    settings = Settings(data_dir=data_dir)
    path = bootstrap(db, settings)
    old_key = read_profile(path)["aws_access_key_id"]
    with session_scope(db) as session:
        keys.delete_access_key(session, old_key)
    bootstrap(db, settings)
    new_key = read_profile(path)["aws_access_key_id"]
    assert new_key != old_key
    assert lookup(db, new_key) is not None
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with session_scope(db) as session:
        # The default account was reused, not duplicated.
        assert session.scalar(sa.select(sa.func.count()).select_from(Account)) == 1
    assert sorted(p.name for p in data_dir.iterdir()) == ["credentials"]


# --- boto3 against a loopback server that authenticates with these keys -------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    database_url = ""

    def log_message(self, *args: object) -> None:
        pass

    def _serve(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path, _, query = self.path.partition("?")
        request = sigv4.IncomingRequest(
            self.command, path.encode("latin-1"), query, self.headers.items(), body
        )
        try:
            parsed = sigv4.parse_authorization(request)
            sigv4.check_request_time(parsed)
            with session_scope(self.database_url) as session:
                record = keys.lookup_secret(session, parsed.access_key_id, SERVER_KEY)
            if record is None:
                raise UnrecognizedClientException()
            if not sigv4.verify(parsed, record.secret_access_key, request):
                raise InvalidSignatureException()
        except AuthError as error:
            self._reply(error.status, error.body())
            return
        self._reply(200, {})

    do_GET = do_POST = do_PUT = do_DELETE = _serve

    def _reply(self, status: int, payload: dict[str, object]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def endpoint(db: str) -> Iterator[str]:
    handler = type("Handler", (_Handler,), {"database_url": db})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def client(service: str, endpoint: str, access_key_id: str, secret: str):  # type: ignore[no-untyped-def]
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1}),
    )


def test_boto3_requests_are_verified_end_to_end(db: str, endpoint: str) -> None:
    access_key_id, secret = make_key(db, make_account(db))
    codebuild = client("codebuild", endpoint, access_key_id, secret)
    assert codebuild.list_projects()["ResponseMetadata"]["HTTPStatusCode"] == 200
    # A REST-style path with a space, a slash and unicode in one label, and a query.
    awslambda = client("lambda", endpoint, access_key_id, secret)
    response = awslambda.get_function(FunctionName="my fn/é", Qualifier="$LATEST")
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_boto3_sees_aws_auth_errors(db: str, endpoint: str) -> None:
    access_key_id, secret = make_key(db, make_account(db))
    with pytest.raises(ClientError) as wrong_secret:
        client("codebuild", endpoint, access_key_id, secret[::-1]).list_projects()
    assert wrong_secret.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert wrong_secret.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert "signature we calculated does not match" in str(wrong_secret.value)

    with pytest.raises(ClientError) as unknown:
        client("codebuild", endpoint, "AKIAUNKNOWNUNKNOWN00", secret).list_projects()
    assert unknown.value.response["Error"]["Code"] == "UnrecognizedClientException"
    assert "security token included in the request is invalid" in str(unknown.value)
