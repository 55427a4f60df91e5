"""Every block of the README runs as written, in order, in a fresh copy of the repository,
from a shell with nothing activated — the way a new user meets Forgeline.

The blocks are joined into one bash script (so `export` and `cd` carry over, as they do in
the user's shell) and run with `set -euo pipefail`. Python blocks run with `python`, which
is the virtualenv's once the README has put `.venv/bin` on PATH. Two annotations, an HTML
comment on the line before a fence, say what the script cannot do literally:

    <!-- readme: background -->       a long-running command (the server): started in the
                                       background; the script waits for it to answer
    <!-- readme: skip, <reason> -->   not run here (the test suite itself; minute-long
                                       image builds); the reason is required
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.paths import REPO_ROOT

README = REPO_ROOT / "README.md"
SERVER_URL = "http://127.0.0.1:4750"

_FENCE = re.compile(
    r"(?:<!-- readme: (?P<note>[^>]*?) -->\n)?```(?P<lang>sh|python)\n(?P<body>.*?)```",
    re.S,
)


@dataclass
class Block:
    lang: str
    body: str
    note: str

    @property
    def skipped(self) -> bool:
        return self.note.startswith("skip")

    @property
    def background(self) -> bool:
        return self.note == "background"


def readme_blocks(text: str) -> list[Block]:
    return [Block(m["lang"], m["body"], (m["note"] or "").strip()) for m in _FENCE.finditer(text)]


def as_script(blocks: list[Block]) -> str:
    lines = ["set -euo pipefail", "echo '== README: start'"]
    for number, block in enumerate(blocks, 1):
        if block.skipped:
            continue
        lines.append(f"echo '== README block {number} ({block.lang})'")
        if block.background:
            lines += [
                f"( {block.body.strip()} ) >readme-server.log 2>&1 &",
                "for _ in $(seq 1 1200); do",
                f"  curl -fs {SERVER_URL}/health >/dev/null && break; sleep 0.1",
                "done",
                f"curl -fs {SERVER_URL}/health >/dev/null || {{ cat readme-server.log; exit 1; }}",
            ]
        elif block.lang == "python":
            lines += ["python - <<'README_PYTHON'", block.body.rstrip("\n"), "README_PYTHON"]
        else:
            lines.append(block.body.rstrip("\n"))
    lines.append("echo '== README: end'")
    return "\n".join(lines) + "\n"


def test_annotations_are_understood():
    blocks = readme_blocks(README.read_text())
    assert blocks, "the README has no runnable blocks"
    for block in blocks:
        assert block.note in ("", "background") or re.match(r"skip, \S", block.note), block.note
    assert sum(block.background for block in blocks) == 1, "one block starts the server"
    assert any(block.lang == "python" for block in blocks)


def fresh_copy(destination: Path) -> Path:
    """The repository's files as a clone would have them, with uncommitted changes."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO_ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    subprocess.run(["git", "init", "-q"], cwd=destination, check=True)
    return destination


def new_user_environment(home: Path) -> dict[str, str]:
    """This machine's environment less what the test run activated (virtualenv, Forgeline
    and AWS settings), with a home of its own whose git knows who the user is."""
    home.mkdir()
    (home / ".gitconfig").write_text("[user]\n\tname = New User\n\temail = new@example.com\n")
    venv_bin = str(REPO_ROOT / ".venv" / "bin")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("FORGELINE_", "AWS_", "VIRTUAL_ENV", "PYTEST", "UV_"))
    }
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if p != venv_bin)
    env["HOME"] = str(home)
    return env


def stop_group(group: int) -> None:
    """SIGTERM every process the script left, then wait until they are gone."""
    try:
        os.killpg(group, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.killpg(group, signal.SIGKILL)


# The README runs the embedded default: it runs once, on the sqlite pass.
@pytest.mark.db("sqlite")
@pytest.mark.timeout(900)
def test_every_block_runs_as_written(tmp_path):
    import socket

    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 4750)) == 0:
            pytest.fail("port 4750, which the README uses, is taken by another process")
    clone = fresh_copy(tmp_path / "forgeline")
    script = as_script(readme_blocks(README.read_text()))
    (tmp_path / "readme.sh").write_text(script)
    started = time.monotonic()
    process = subprocess.Popen(
        ["bash", str(tmp_path / "readme.sh")],
        cwd=clone,
        env=new_user_environment(tmp_path / "home"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=840)
    finally:
        # The README leaves its server running, as a user's terminal would.
        stop_group(process.pid)
        server_log = clone / "readme-server.log"
    elapsed = time.monotonic() - started
    print(output)
    print(f"README end to end: {elapsed:.1f} s")
    log = server_log.read_text(errors="replace")[-3000:] if server_log.exists() else ""
    assert process.returncode == 0, f"{output[-6000:]}\n-- server log --\n{log}"
    assert "== README: end" in output
