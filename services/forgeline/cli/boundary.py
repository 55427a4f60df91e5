"""The command line's one error boundary, and help that shows whole summaries.

Every failure a user meets ends as ONE line on stderr, `error: ...`, and a non-zero exit:
2 for a command line that cannot be run, 1 for everything else. Errors the domain raises on
purpose (an account that does not exist, a database that cannot be reached, a server that
refuses a request) are worded for the user; an unexpected exception also gets one line,
plus the hint to run again with FORGELINE_LOG_LEVEL=DEBUG, which prints its traceback.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import re
import sys
import traceback
from collections.abc import Iterator
from typing import Any

import click
from click.exceptions import Exit, NoArgsIsHelpError

DEBUG_HINT = "run again with FORGELINE_LOG_LEVEL=DEBUG to see the traceback"


def one_line(text: str) -> str:
    return " ".join(text.split())


class CliError(click.ClickException):
    """A failure the user can act on, shown as `error: <message>`."""

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {one_line(self.format_message())}", err=True)


class CommandLineError(click.UsageError):
    """A command line that cannot be run (exit 2), shown on one line with where to look."""

    def show(self, file: Any = None) -> None:
        where = self.ctx.command_path if self.ctx is not None else "forgeline"
        click.echo(f"error: {one_line(self.format_message())} (see: {where} --help)", err=True)


# --- known failures, worded for the user ----------------------------------------------------


def _loaded(module: str, name: str) -> Any:
    """A class from a module only if something already imported it: an exception cannot
    come from a module that was never loaded, and the boundary must not load heavy ones."""
    found = sys.modules.get(module)
    return getattr(found, name, None) if found is not None else None


def _is(exc: BaseException, module: str, name: str) -> bool:
    cls = _loaded(module, name)
    return cls is not None and isinstance(exc, cls)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def describe(exc: Exception) -> str | None:
    """The one line for a failure the domain raises on purpose; None for anything else."""
    if _is(exc, "forgeline.core.auth.keys", "AccountNotFound"):
        found = re.search(r"\d{12}", str(exc))
        account = found.group(0) if found else "ACCOUNT_ID"
        return f"{exc} (create it with: forgeline accounts create --account-id {account})"
    if _is(exc, "forgeline.codebuild.images", "ImageBuildError"):
        return str(exc)
    if _is(exc, "sqlalchemy.exc", "OperationalError"):
        orig = getattr(exc, "orig", None) or exc
        return f"the database cannot be used: {_first_line(orig)} (check FORGELINE_DATABASE_URL)"
    if _is(exc, "sqlalchemy.exc", "IntegrityError"):
        orig = getattr(exc, "orig", None) or exc
        return f"that conflicts with what is stored: {_first_line(orig)}"
    if _is(exc, "botocore.exceptions", "ClientError"):
        error = getattr(exc, "response", {}).get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message', '')}".rstrip(": ")
    if _is(exc, "botocore.exceptions", "EndpointConnectionError"):
        url = getattr(exc, "kwargs", {}).get("endpoint_url", "the endpoint")
        return f"cannot reach {url}: is `forgeline serve` running there? (--endpoint-url)"
    if _is(exc, "botocore.exceptions", "BotoCoreError"):
        return str(exc)
    if _is(exc, "docker.errors", "DockerException"):
        return f"Docker: {_first_line(exc)}"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    if isinstance(exc, ValueError):
        # The domain's way of refusing bad input (an account id of the wrong shape, a user
        # name with spaces): its message is written for the user.
        return str(exc)
    return None


@contextlib.contextmanager
def error_boundary() -> Iterator[None]:
    """Turn whatever escapes a command into CliError or CommandLineError."""
    try:
        yield
    except (CliError, CommandLineError, NoArgsIsHelpError, Exit, click.Abort):
        # Ours already, or click's own exits: --help, --version, a group shown without
        # a subcommand, Ctrl-C.
        raise
    except click.UsageError as exc:
        raise CommandLineError(exc.format_message(), exc.ctx) from None
    except click.ClickException as exc:
        raise CliError(exc.format_message()) from None  # click's own exit 1 as well
    except (BrokenPipeError, EOFError):
        raise  # click ends quietly on a closed pipe, and treats EOF on a prompt as Ctrl-C
    except Exception as exc:  # noqa: BLE001 - the one place every failure becomes one line
        if os.environ.get("FORGELINE_LOG_LEVEL", "").upper() == "DEBUG":
            traceback.print_exception(exc, file=sys.stderr)
        known = describe(exc)
        if known is not None:
            raise CliError(known) from None
        raise CliError(f"{type(exc).__name__}: {_first_line(exc)} ({DEBUG_HINT})") from None


# --- help layout ----------------------------------------------------------------------------


def summary(command: click.Command) -> str:
    """A command's whole first paragraph, as one line (click would cut it at 45 characters)."""
    if command.short_help:
        return one_line(command.short_help)
    return one_line(inspect.cleandoc(command.help or "").split("\n\n", 1)[0].split("\f")[0])


class Command(click.Command):
    def get_short_help_str(self, limit: int = 45) -> str:
        return summary(self)


class Group(click.Group):
    """A command group whose listing shows each command's whole summary."""

    command_class = Command
    group_class = type  # subgroups are of this same class

    def get_short_help_str(self, limit: int = 45) -> str:
        return summary(self)


class RootGroup(Group):
    """The `forgeline` group: parsing and every command run inside the error boundary."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        with error_boundary():
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        with error_boundary():
            return super().invoke(ctx)
