"""The command line's error boundary: whatever a command raises ends as one line."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from forgeline.cli.boundary import DEBUG_HINT, CliError, RootGroup, describe, summary


def _root(error: BaseException) -> click.Group:
    @click.group(cls=RootGroup)
    def root() -> None:
        """Root."""

    @root.group()
    def inner() -> None:
        """A group whose summary is longer than the forty-five characters click keeps."""

    @inner.command()
    @click.option("--count", type=int, required=True)
    def fail(count: int) -> None:
        raise error

    return root


def _run(error: BaseException, *args: str, **env: str):
    return CliRunner().invoke(
        _root(error), list(args or ("inner", "fail", "--count", "1")), env=env
    )


def test_an_unexpected_exception_is_one_line_with_the_debug_hint() -> None:
    result = _run(RuntimeError("boom\nsecond line"))
    assert result.exit_code == 1
    assert result.stderr == f"error: RuntimeError: boom ({DEBUG_HINT})\n"


def test_with_debug_logging_the_traceback_comes_first() -> None:
    result = _run(RuntimeError("boom"), FORGELINE_LOG_LEVEL="debug")
    assert result.exit_code == 1
    assert result.stderr.startswith("Traceback (most recent call last):")
    assert result.stderr.endswith(f"error: RuntimeError: boom ({DEBUG_HINT})\n")


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (CliError("no such thing"), "error: no such thing"),
        (click.ClickException("click's own"), "error: click's own"),
        (ValueError("account id must be 12 digits"), "error: account id must be 12 digits"),
        (
            FileNotFoundError(2, "No such file or directory", "/x"),
            "error: No such file or directory: /x",
        ),
    ],
)
def test_known_failures_are_worded_for_the_user(error: Exception, line: str) -> None:
    result = _run(error)
    assert (result.exit_code, result.stderr) == (1, line + "\n")


def test_a_command_line_that_cannot_run_exits_2_on_one_line() -> None:
    result = _run(RuntimeError(), "inner", "fail")
    assert result.exit_code == 2
    assert result.stderr == "error: Missing option '--count'. (see: root inner fail --help)\n"
    result = _run(RuntimeError(), "--nope")
    assert (result.exit_code, result.stderr) == (
        2,
        "error: No such option '--nope'. (see: root --help)\n",
    )


def test_help_and_bare_groups_still_show_help() -> None:
    result = _run(RuntimeError(), "inner")
    assert result.exit_code == 2 and "Usage:" in result.stdout + result.stderr
    shown = " ".join(_run(RuntimeError(), "--help").stdout.split())
    assert "A group whose summary is longer than the forty-five characters click keeps." in shown


def test_summary_is_the_whole_first_paragraph() -> None:
    @click.command()
    def command() -> None:
        """First sentence that runs
        over two lines.

        Details."""

    assert summary(command) == "First sentence that runs over two lines."
    assert describe(KeyError("x")) is None
