"""The agent's loop: poll for a command, fetch its deployment's specification (once per
deployment: it never changes), acknowledge the command, run it, report it complete. One
command at a time.

- The server holds a poll open until it has a command (long poll), so a ready command
  arrives at once and an idle agent costs one open request.
- Errors (server away, throttled, refused) back off exponentially with jitter.
- A command is recorded under <root>/ongoing-deployment/ while it runs and until its
  result is delivered: after a restart, a command that was running is reported Failed
  (code 7, FailedAfterRestart) and a result that was not yet delivered is sent again.
- SIGTERM (or SIGINT) stops the agent: a command that is running finishes and is
  reported first; a poll that is waiting is abandoned at once.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import json
import logging
import random
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

from cryptography import x509

from forgeline.codedeploy.agent.client import (
    CommandServiceClient,
    CommandServiceError,
    HostCommand,
)
from forgeline.codedeploy.agent.command_executor import CommandExecutor
from forgeline.codedeploy.agent.config import AgentConfig
from forgeline.codedeploy.agent.layout import Layout, write_atomically
from forgeline.codedeploy.agent.results import (
    CommandResult,
    ErrorCode,
    succeeded,
    unknown_error,
)
from forgeline.codedeploy.agent.spec import DeploymentSpec, SpecError, open_envelope

log = logging.getLogger("forgeline.agent")

DEPLOYMENT_SYSTEM = "CodeDeploy"
# How often a running command is reported alive (well inside the server's silence limit).
PROGRESS_INTERVAL_SECONDS = 10.0
# Verified specifications kept per deployment execution: a deployment's specification never
# changes, so its seven lifecycle commands need one fetch (and signature check), not seven.
KEPT_SPECIFICATIONS = 8


class _StopPolling(BaseException):
    """Raised from the signal handler to abandon a waiting poll (not an Exception, so
    no error handler mistakes it for a failed request)."""


class Backoff:
    def __init__(self, initial: float, maximum: float) -> None:
        self.initial = initial
        self.maximum = maximum
        self.failures = 0

    def next_delay(self) -> float:
        delay = min(self.maximum, self.initial * (2**self.failures))
        self.failures += 1
        return delay * random.uniform(0.5, 1.0)

    def reset(self) -> None:
        self.failures = 0


class CommandTracker:
    """Commands in progress and results not yet delivered, one small file each."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _file(self, command_id: str) -> Path:
        return self.directory / hashlib.sha256(command_id.encode()).hexdigest()[:32]

    def begin(self, command: HostCommand) -> None:
        self._write(command.host_command_identifier, {"command_name": command.command_name})

    def record(self, command_id: str, result: CommandResult) -> None:
        self._write(command_id, {"result": result._asdict()})

    def done(self, command_id: str) -> None:
        self._file(command_id).unlink(missing_ok=True)

    def undelivered(self, *, after_restart: bool) -> list[tuple[str, CommandResult]]:
        """Results to deliver; with `after_restart`, a command that has none was cut off
        by the restart and is reported as FailedAfterRestart."""
        if not self.directory.is_dir():
            return []
        found = []
        for path in sorted(self.directory.iterdir()):
            if path.name.startswith("."):  # a write a crash cut short
                path.unlink(missing_ok=True)
                continue
            try:
                entry = json.loads(path.read_text())
                command_id = entry["command_id"]
                raw = entry.get("result")
                result = (
                    None
                    if raw is None
                    else CommandResult(**{**raw, "error_code": ErrorCode(raw["error_code"])})
                )
            except (OSError, ValueError, KeyError, TypeError):
                path.unlink(missing_ok=True)
                continue
            if result is not None:
                found.append((command_id, result))
            elif after_restart:
                message = "Failed: Failing in-progress lifecycle event after an agent restart."
                found.append(
                    (command_id, CommandResult(ErrorCode.FAILED_AFTER_RESTART, "", message, ""))
                )
        return found

    def _write(self, command_id: str, fields: dict[str, object]) -> None:
        write_atomically(self._file(command_id), json.dumps({"command_id": command_id, **fields}))


class Agent:
    def __init__(
        self,
        config: AgentConfig,
        client: CommandServiceClient,
        executor: CommandExecutor,
        *,
        signer_certificate: x509.Certificate | None = None,
    ) -> None:
        self.config = config
        self.client = client
        self.executor = executor
        self.signer_certificate = signer_certificate
        self.tracker = CommandTracker(Layout(config.root_dir).ongoing_dir)
        self.stopping = threading.Event()
        self._polling = False
        self._specs: collections.OrderedDict[str, DeploymentSpec] = collections.OrderedDict()

    @classmethod
    def from_config(cls, config: AgentConfig) -> Agent:
        from forgeline.codedeploy.agent.s3_bundles import S3BundleFetcher

        credentials = config.credentials()
        client = CommandServiceClient(
            config.endpoint,
            config.region,
            *credentials,
            ca_file=config.ca_file,
            timeout=config.poll.timeout_seconds,
        )
        fetcher = S3BundleFetcher(
            config.bundle_endpoint, config.region, credentials, config.ca_file
        )
        executor = CommandExecutor(
            Layout(config.root_dir),
            s3_fetcher=fetcher,
            max_revisions=config.max_revisions,
            destination_root=config.destination_root,
        )
        signer = None
        if config.signer_certificate is not None:
            signer = x509.load_pem_x509_certificate(config.signer_certificate.read_bytes())
        return cls(config, client, executor, signer_certificate=signer)

    # -- running ---------------------------------------------------------------------------
    def run(self) -> None:
        """Poll and run commands until stop() (or a signal, see install_signal_handlers)."""
        self.client.check_endpoint()
        log.info("agent for %s polling %s", self.config.host_identifier, self.config.endpoint)
        backoff = Backoff(
            self.config.poll.backoff_initial_seconds, self.config.poll.backoff_max_seconds
        )
        after_restart = True
        while not self.stopping.is_set():
            try:
                self.deliver_undelivered(after_restart=after_restart)
                after_restart = False
                self.run_once()
                backoff.reset()
            except _StopPolling:
                break
            except Exception as exc:  # noqa: BLE001 - the loop outlives any one failure
                delay = backoff.next_delay()
                log.warning("command service: %s; trying again in %.1fs", exc, delay)
                self.stopping.wait(delay)
        log.info("agent stopped")

    def stop(self) -> None:
        self.stopping.set()

    def install_signal_handlers(self) -> None:
        def handler(signum: int, frame: FrameType | None) -> None:
            log.info("%s: stopping after the current command", signal.Signals(signum).name)
            self.stop()
            if self._polling:
                raise _StopPolling

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def run_once(self) -> bool:
        """One poll; True if it brought a command (which has then been run and reported)."""
        self._polling = True
        try:
            if self.stopping.is_set():
                return False
            command = self.client.poll_host_command(self.config.host_identifier)
        finally:
            self._polling = False
        if command is None:
            return False
        self.handle(command)
        return True

    def deliver_undelivered(self, *, after_restart: bool = False) -> None:
        for command_id, result in self.tracker.undelivered(after_restart=after_restart):
            log.info("reporting %s for command %s", result.error_code.name, command_id)
            self._complete(command_id, result)

    # -- one command -----------------------------------------------------------------------
    def handle(self, command: HostCommand) -> None:
        name, command_id = command.command_name, command.host_command_identifier
        if command.host_identifier and command.host_identifier != self.config.host_identifier:
            log.error(
                "command %s is for %s, not this host: ignored", command_id, command.host_identifier
            )
            return
        spec, problem = self._specification(command)
        is_noop = spec is not None and self.executor.is_noop(name, spec)
        status = self.client.put_host_command_acknowledgement(command_id, is_noop)
        if status in ("Succeeded", "Failed"):
            if status == "Failed" and is_noop:
                self._complete(command_id, succeeded("CompletedNoopCommand"))
            log.info("command %s (%s) is already %s: skipped", command_id, name, status)
            return
        if spec is None:
            result = unknown_error(problem or "no deployment specification")
        else:
            self.tracker.begin(command)
            log.info("running %s of deployment %s", name, spec.deployment_id)
            with self._reporting_progress(command_id):
                result = self.executor.execute(name, spec)
        if result.succeeded:
            log.info("%s: Succeeded", name)
        else:
            log.warning("%s: Failed (%s) %s", name, result.error_code.name, result.message)
        self.tracker.record(command_id, result)
        self._complete(command_id, result)

    @contextlib.contextmanager
    def _reporting_progress(self, command_id: str) -> Iterator[None]:
        """While a command runs, say so every few seconds: the server fails an instance
        whose agent falls silent (AWS's agent keeps polling instead; an update per command
        says the same with less traffic)."""
        done = threading.Event()

        def beat() -> None:
            while not done.wait(PROGRESS_INTERVAL_SECONDS):
                try:
                    self.client.post_host_command_update(command_id)
                except Exception:  # the next beat tries again; the command goes on
                    log.debug("progress update for %s failed", command_id, exc_info=True)

        thread = threading.Thread(target=beat, name=f"progress-{command_id[:8]}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()

    def _specification(self, command: HostCommand) -> tuple[DeploymentSpec | None, str | None]:
        execution = command.deployment_execution_id
        kept = self._specs.get(execution)
        if kept is not None:
            self._specs.move_to_end(execution)
            return kept, None
        system, envelope_format, payload = self.client.get_deployment_specification(
            execution, self.config.host_identifier
        )
        if system != DEPLOYMENT_SYSTEM:
            return None, f"deployment system {system!r} is not {DEPLOYMENT_SYSTEM}"
        try:
            spec = open_envelope(
                envelope_format, payload, signer_certificate=self.signer_certificate
            )
        except SpecError as exc:
            return None, str(exc)
        self._specs[execution] = spec
        while len(self._specs) > KEPT_SPECIFICATIONS:
            self._specs.popitem(last=False)
        return spec, None

    def _complete(self, command_id: str, result: CommandResult) -> None:
        try:
            self.client.put_host_command_complete(command_id, result)
        except CommandServiceError as exc:
            if exc.status >= 500 or exc.code == "ThrottlingException":
                raise  # kept, and delivered again once the server is back
            # Refused for good (the command is over or not ours): sending it again cannot help.
            log.error("the server refused the result of command %s: %s", command_id, exc)
        self.tracker.done(command_id)
