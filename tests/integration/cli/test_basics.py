"""The `forgeline` command line as a user meets it: version, help, start-up cost, and
errors that are one line each."""

from __future__ import annotations

import importlib.metadata
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

from tests.support.paths import REPO_ROOT
from tests.support.server import FORGELINE, free_port

# What `forgeline --help` must not load: each costs tenths of a second at every call.
HEAVY_MODULES = (
    "fastapi",
    "uvicorn",
    "sqlalchemy",
    "boto3",
    "botocore",
    "docker",
    "celery",
    "pydantic",
    "forgeline.core.settings",
)


def _forgeline(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*FORGELINE, *args],
        env=env if env is not None else dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
    )


def _words(text: str) -> str:
    return " ".join(text.split())


def test_version_names_the_installed_package():
    result = _forgeline("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"forgeline {importlib.metadata.version('forgeline')}\n"


def test_help_shows_every_command_with_its_whole_summary():
    result = _forgeline("--help")
    assert result.returncode == 0, result.stderr
    shown = _words(result.stdout)
    assert "--version" in shown
    # Summaries that click used to cut after 45 characters, whole.
    for name, whole in {
        "git-credentials": "HTTPS git credentials: a user name and password for a user, like "
        "AWS's service-specific credentials for CodeCommit.",
        "build-local": "Run a buildspec on this machine, without a server (like AWS's local "
        "CodeBuild agent).",
        "config": "Print the configuration table (every FORGELINE_* variable).",
        "git": "git credentials from an access key: a credential helper and the config that "
        "uses it.",
        "logs": "Build logs (CloudWatch Logs, group /aws/codebuild/<project>).",
    }.items():
        assert f"{name} {whole}" in shown
    listing = result.stdout.split("Commands:")[1]
    assert "..." not in listing
    commands = re.findall(r"^  (\S+)", listing, re.M)
    assert set(commands) >= {
        "accounts", "beat", "build-local", "codegen", "config", "coverage", "db", "git",
        "git-credentials", "images", "keys", "logs", "repo", "serve", "worker",
    }  # fmt: skip


def test_images_build_help_states_the_tag_each_build_gets():
    from forgeline.codebuild import images

    result = _forgeline("images", "build", "--help")
    assert result.returncode == 0, result.stderr
    shown = _words(result.stdout)
    assert images.RUNTIMES_TAG in shown and "forgeline/<kind>:latest" in shown
    assert images.DEFAULT_TAGS["standard"] == "forgeline/standard:latest"


def test_the_root_command_loads_nothing_heavy():
    probe = (
        "import sys, forgeline.cli.main; "
        f"print(' '.join(m for m in {HEAVY_MODULES!r} if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == ""


def test_a_missing_account_is_one_line(forgeline):
    result = forgeline.cli("keys", "create", "--account-id", "123456789012", "--user", "ci")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        "error: account 123456789012 does not exist "
        "(create it with: forgeline accounts create --account-id 123456789012)\n"
    )
    bad = forgeline.cli("accounts", "create", "--account-id", "12")
    assert (bad.returncode, bad.stderr) == (1, "error: account id must be 12 digits, not '12'\n")


def test_a_command_line_that_cannot_run_is_one_line():
    missing = _forgeline("keys", "create")
    assert missing.returncode == 2
    assert missing.stderr == (
        "error: Missing option '--account-id'. (see: forgeline keys create --help)\n"
    )
    unknown = _forgeline("no-such-command")
    assert unknown.returncode == 2 and len(unknown.stderr.splitlines()) == 1


def test_an_unreachable_database_is_one_line(tmp_path):
    env = dict(
        os.environ,
        FORGELINE_DATA_DIR=str(tmp_path / "state"),
        FORGELINE_DATABASE_URL="postgresql+psycopg://nobody@127.0.0.1:1/none",
        FORGELINE_TLS_PORT="0",
    )
    for args in (["keys", "list"], ["serve", "--port", str(free_port())]):
        result = _forgeline(*args, env=env)
        assert result.returncode == 1, args
        # The server's first line, before any log: no traceback, no "ready".
        assert result.stderr.startswith("error: the database cannot be used: "), result.stderr
        assert result.stderr.endswith("(check FORGELINE_DATABASE_URL)\n")
        assert len(result.stderr.splitlines()) == 1


def _serve_while_a_port_is_held(tmp_path: Path, *, https: bool):
    """`forgeline serve` on a fresh data directory while its HTTP port (or the HTTPS port
    the operator chose) is held by another socket."""
    data_dir = tmp_path / "never-made"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORGELINE_")}
    env["FORGELINE_DATA_DIR"] = str(data_dir)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        port = busy
        if https:
            env["FORGELINE_TLS_PORT"] = str(busy)
            port = free_port()
        result = _forgeline("serve", "--host", "127.0.0.1", "--port", str(port), env=env)
    return result, data_dir


def test_a_busy_port_fails_at_once_and_writes_nothing(tmp_path):
    result, data_dir = _serve_while_a_port_is_held(tmp_path, https=False)
    assert result.returncode == 1
    assert re.fullmatch(
        r"error: port \d+ on 127\.0\.0\.1 is in use; stop what holds it, or choose another "
        r"with --port or FORGELINE_PORT\n",
        result.stderr,
    ), result.stderr
    assert "ready" not in result.stdout + result.stderr
    assert not data_dir.exists()


def test_a_busy_https_port_the_operator_chose_fails_and_writes_nothing(tmp_path):
    result, data_dir = _serve_while_a_port_is_held(tmp_path, https=True)
    assert result.returncode == 1
    assert re.fullmatch(
        r"error: port \d+ on 127\.0\.0\.1 is in use \(HTTPS\); .*FORGELINE_TLS_PORT.*\n",
        result.stderr,
    ), result.stderr
    assert not data_dir.exists()


def test_serve_offers_every_service_the_server_has():
    from forgeline.cli.main import serve
    from forgeline.core import settings

    choice = next(param for param in serve.params if param.name == "service")
    assert tuple(choice.type.choices) == (*settings.SERVICE_NAMES, "all")


def test_coverage_write_finds_the_checkouts_readme():
    readme = REPO_ROOT / "README.md"
    before = readme.read_text()
    result = _forgeline("coverage", "--write")
    assert result.returncode == 0, result.stderr
    assert readme.read_text() == before, "the committed tables are current"
