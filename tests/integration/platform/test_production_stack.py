"""The production stack (docker-compose.yml, deploy/Dockerfile) is well formed and runs.

The stack also runs as local processes: every Forgeline service of the compose file is
started with its own command and environment, adapted to
loopback (the local Postgres and Redis, free ports, a temporary data directory), in the
order its depends_on conditions demand, with HAProxy and deploy/haproxy.cfg as the
gateway, and then used through the gateway with boto3. (test_production_image.py builds
the image itself.)
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import graphlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
import yaml
from botocore.config import Config
from botocore.exceptions import ClientError
from prometheus_client.parser import text_string_to_metric_families

from forgeline.core.settings import SERVICE_NAMES, Settings
from tests.support import databases
from tests.support.paths import REPO_ROOT
from tests.support.server import free_port

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
DOCKERFILE = REPO_ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
HAPROXY_CONFIG = REPO_ROOT / "deploy" / "haproxy.cfg"
FORGELINE_SCRIPT = Path(sys.executable).with_name("forgeline")

STACK_REDIS_DB = 5
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
STOP_TIMEOUT = 15.0
# Compose's ${NAME}, ${NAME-default} and ${NAME:-default}, read as if NAME were unset.
INTERPOLATION = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-(?P<default>[^}]*))?\}")
# What each Forgeline API answers when asked to list, and the operation's wire name.
LIST_CALLS = {
    "codecommit": ("list_repositories", "ListRepositories"),
    "codebuild": ("list_projects", "ListProjects"),
    "codedeploy": ("list_applications", "ListApplications"),
    "codepipeline": ("list_pipelines", "ListPipelines"),
}


# -- reading the compose file ----------------------------------------------------------
def load_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def interpolate(value: Any) -> str:
    return INTERPOLATION.sub(lambda match: match.group("default") or "", str(value))


def environment_of(service: dict[str, Any]) -> dict[str, str]:
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) for item in raw)
    return {name: interpolate(value) for name, value in raw.items()}


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    raw = service.get("depends_on") or {}
    if isinstance(raw, list):
        return {name: "service_started" for name in raw}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in raw.items()}


def command_of(service: dict[str, Any]) -> list[str]:
    command = service.get("command") or []
    return shlex.split(command) if isinstance(command, str) else [str(arg) for arg in command]


def forgeline_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services that run the Forgeline image (built from deploy/Dockerfile)."""

    def built_here(service: dict[str, Any]) -> bool:
        build = service.get("build")
        if not isinstance(build, dict):
            return False
        context = REPO_ROOT / build.get("context", ".")
        return (context / build.get("dockerfile", "Dockerfile")).resolve() == DOCKERFILE

    return {name: spec for name, spec in compose["services"].items() if built_here(spec)}


def is_http(service: dict[str, Any]) -> bool:
    return command_of(service)[1:2] == ["serve"]


def option(command: list[str], name: str) -> str | None:
    return command[command.index(name) + 1] if name in command else None


def setting_values(env: dict[str, str]) -> dict[str, str]:
    return {name.removeprefix("FORGELINE_").lower(): value for name, value in env.items()}


# -- reading the Dockerfile ------------------------------------------------------------
def dockerfile_instructions() -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction, continuation lines joined, comments dropped."""
    lines = [
        line for line in DOCKERFILE.read_text().splitlines() if not line.lstrip().startswith("#")
    ]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    instructions = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, arguments = line.strip().partition(" ")
            instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def instruction(keyword: str) -> list[str]:
    return [arguments for found, arguments in dockerfile_instructions() if found == keyword]


def healthcheck_command() -> str:
    (healthcheck,) = instruction("HEALTHCHECK")
    return healthcheck.split(" CMD ", 1)[1]


def ignored_by_docker(relative: str) -> bool:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    parts = Path(relative).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(fnmatch.fnmatch(prefix, pattern) for pattern in patterns for prefix in prefixes)


# -- static checks -----------------------------------------------------------------------
def test_compose_services_are_complete_and_consistent() -> None:
    compose = load_compose()
    services = compose["services"]
    ours = forgeline_services(compose)
    assert {"postgres", "redis", "migrate", "gateway", "worker", "beat", *SERVICE_NAMES} <= set(
        services
    )
    assert set(ours) == set(services) - {"postgres", "redis", "gateway"}
    declared_volumes = set(compose.get("volumes") or {})

    for name, service in services.items():
        assert "image" in service or "build" in service, name
        build = service.get("build")
        if build:
            assert (REPO_ROOT / build["context"]).is_dir(), name
            assert (REPO_ROOT / build["context"] / build["dockerfile"]).is_file(), name
        for target, condition in depends_on(service).items():
            assert target in services and target != name, f"{name} depends on {target}"
            assert condition in CONDITIONS, f"{name}: {condition}"
            if condition == "service_healthy":
                check = services[target].get("healthcheck") or {}
                image_has_one = target in ours and instruction("HEALTHCHECK")
                assert not check.get("disable") and (check or image_has_one), target
            if condition == "service_completed_successfully":
                assert services[target].get("restart") == "no", f"{target} is not one-shot"
        for volume in service.get("volumes") or []:
            source = str(volume).split(":", 1)[0]
            # Bind mounts: host paths, or a variable naming one (`${VAR:-/path}`).
            if not source.startswith((".", "/", "~", "$")):
                assert source in declared_volumes, f"{name}: volume {source} is not declared"
        for port in service.get("ports") or []:
            numbers = [int(part) for part in str(port).split("/")[0].split(":")[-2:]]
            assert all(0 < number < 65536 for number in numbers), f"{name}: {port}"
    graph = {name: set(depends_on(service)) for name, service in services.items()}
    list(graphlib.TopologicalSorter(graph).static_order())  # raises on a cycle


def test_forgeline_services_share_one_data_volume_and_wait_for_migrations() -> None:
    compose = load_compose()
    ours = forgeline_services(compose)
    data_volumes = set()
    for name, service in ours.items():
        data_dir = environment_of(service)["FORGELINE_DATA_DIR"]
        mounts = [str(v).split(":")[:2] for v in service.get("volumes") or []]
        data_volumes |= {source for source, target in mounts if target == data_dir}
        if name != "migrate":
            assert depends_on(service).get("migrate") == "service_completed_successfully", name
    assert len(data_volumes) == 1, data_volumes
    assert command_of(ours["migrate"]) == ["forgeline", "db", "upgrade"]
    assert [command_of(s) for s in ours.values()].count(["forgeline", "beat"]) == 1


def haproxy_backends() -> dict[str, str]:
    """deploy/haproxy.cfg's backends and the default address of each one's server."""
    text = HAPROXY_CONFIG.read_text()
    found = re.findall(
        r"^backend (\S+)\n(?:    .*\n)*?    server \S+ \"\$\{\w+-([^}]+)\}\"", text, re.M
    )
    return dict(found)


def test_gateway_is_haproxy_routing_to_every_service() -> None:
    compose = load_compose()
    ours = forgeline_services(compose)
    gateway = compose["services"]["gateway"]
    assert gateway["image"].startswith("haproxy:")
    assert sorted(str(port) for port in gateway["ports"]) == ["4750:4750", "4751:4751"]
    assert any(str(volume).startswith("./deploy/haproxy.cfg:") for volume in gateway["volumes"])
    backends = haproxy_backends()
    assert set(backends) == {*SERVICE_NAMES, "repo_https"}, backends
    for backend, address in backends.items():
        host, port = address.split(":")
        command = command_of(ours[host])
        assert option(command, "--service") == backend.removesuffix("_https"), address
        http_port = int(option(command, "--port") or 0)
        assert int(port) == (http_port + 1 if backend.endswith("_https") else http_port)
    # Every API's target prefix goes to the process that serves it.
    from forgeline.core.protocol.catalog import APIS, target_prefixes

    text = HAPROXY_CONFIG.read_text()
    routed = {}
    for acl, backend in (("to_repo", "repo"), ("to_build", "build"), ("to_deploy", "deploy")):
        routed[backend] = re.search(rf"acl {acl} req.hdr\(x-amz-target\) -m beg (.*)", text)
    routed["pipeline"] = re.search(r"acl to_pipeline req.hdr\(x-amz-target\) -m beg (.*)", text)
    for prefix, model in target_prefixes().items():
        app = next(spec.app for spec in APIS if spec.model_name == model)
        match = routed[app]
        assert match and f"{prefix}." in match.group(1).split(), (prefix, app)


def test_compose_configures_forgeline_only_through_real_settings() -> None:
    fields = set(Settings.model_fields)
    for name, service in forgeline_services(load_compose()).items():
        env = environment_of(service)
        assert env and all(key.startswith("FORGELINE_") for key in env), name
        unknown = set(setting_values(env)) - fields
        assert not unknown, f"{name} sets variables Settings does not read: {unknown}"
        settings = Settings(**setting_values(env))  # validates every value's type
        assert settings.worker == "external"
        assert settings.migrate_on_start is False
        assert settings.auth == "enforce"
        assert settings.resolved_database_url.startswith("postgresql+psycopg://")
        assert settings.broker_url.startswith("redis://")


def compose_cli() -> list[str] | None:
    """`docker compose` (the v2 plugin), else the standalone `docker-compose`, else None."""
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_docker_compose_accepts_the_file() -> None:
    cli = compose_cli()
    if cli is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    result = subprocess.run(
        [*cli, "-f", str(COMPOSE_FILE), "config", "-q"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_builds_the_image_compose_runs() -> None:
    assert instruction("FROM") == ["${PYTHON_IMAGE}"]
    assert "PYTHON_IMAGE=python:3.11-slim" in instruction("ARG")
    (user,) = instruction("USER")
    assert user.split(":")[0] not in ("root", "0")
    assert {"4750", "4751"} <= set(" ".join(instruction("EXPOSE")).split())
    assert "/health" in healthcheck_command()
    assert [json.loads(cmd) for cmd in instruction("CMD")] == [
        ["forgeline", "serve", "--host", "0.0.0.0"]
    ]
    assert any("pip install" in run for run in instruction("RUN"))
    # What `pip install` and `forgeline db upgrade` need must reach the build context.
    readme = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"].get("readme")
    needed = ["pyproject.toml", "services/forgeline/cli/main.py", "migrations/env.py"]
    needed += [readme] if readme else []
    for relative in needed:
        assert (REPO_ROOT / relative).exists(), f"{relative} is missing"
        assert not ignored_by_docker(relative), f".dockerignore excludes {relative}"


# -- the stack, run as local processes ---------------------------------------------------
@dataclasses.dataclass
class StackProcess:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    port: int | None = None

    @property
    def url(self) -> str | None:
        return f"http://127.0.0.1:{self.port}" if self.port else None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


class LocalStack:
    """The compose file's Forgeline services as processes on loopback."""

    def __init__(self, tmp_path: Path, database_url: str, broker_url: str) -> None:
        self.services = forgeline_services(load_compose())
        self.database_url = database_url
        self.broker_url = broker_url
        self.data_dir = tmp_path / "data"
        self.logs = tmp_path / "logs"
        self.logs.mkdir()
        self.ports = {
            name: free_port() for name, service in self.services.items() if is_http(service)
        }
        self.ports["gateway"] = free_port()
        self.processes: dict[str, StackProcess] = {}
        self.ran: set[str] = set()  # one-shot services that completed

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    # -- adapting the compose file to loopback ---------------------------------------
    def env(self, name: str) -> dict[str, str]:
        """`name`'s compose environment, pointed at the local Postgres, Redis and ports."""
        fields = set(Settings.model_fields)
        # The compose file is the whole configuration: none of this run's own settings.
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("FORGELINE_") or setting_values({key: value}).keys() - fields
        }
        env.update(environment_of(self.services[name]))
        env.update(
            FORGELINE_DATABASE_URL=self.database_url,
            FORGELINE_BROKER_URL=self.broker_url,
            FORGELINE_DATA_DIR=str(self.data_dir),
            FORGELINE_PUBLIC_URL=self.url("gateway"),
            # Beat rings the reaper every second, so its effect shows within the test.
            FORGELINE_REAP_INTERVAL_SECONDS="1",
            # Set in every container; the worker's healthcheck finds its node by it.
            HOSTNAME=socket.gethostname(),
            # `python` and `forgeline` are on the image's PATH; healthchecks call them so.
            PATH=os.pathsep.join([str(FORGELINE_SCRIPT.parent), os.environ.get("PATH", "")]),
        )
        return env

    def start_gateway(self) -> None:
        """HAProxy with the compose file's configuration, its upstreams on loopback."""
        haproxy = shutil.which("haproxy")
        if haproxy is None:
            pytest.skip("haproxy (the compose stack's gateway) is not installed")
        upstreams = {
            f"FORGELINE_{name.upper()}_ADDR": f"127.0.0.1:{self.ports[name]}"
            for name in SERVICE_NAMES
        }
        log_path = self.logs / "gateway.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [haproxy, "-db", "-f", str(HAPROXY_CONFIG)],
                env={
                    **os.environ,
                    **upstreams,
                    "FORGELINE_HTTP_BIND": f"127.0.0.1:{self.ports['gateway']}",
                    "FORGELINE_HTTPS_BIND": f"127.0.0.1:{free_port()}",
                    "FORGELINE_REPO_HTTPS_ADDR": f"127.0.0.1:{free_port()}",
                },
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes["gateway"] = StackProcess(
            "gateway", process, log_path, self.ports["gateway"]
        )
        self.wait_ready("gateway")

    def command(self, name: str) -> list[str]:
        command = command_of(self.services[name])
        assert command[0] == "forgeline", command
        command[0] = str(FORGELINE_SCRIPT)
        if name in self.ports:
            for flag, value in (("--host", "127.0.0.1"), ("--port", str(self.ports[name]))):
                if flag in command:
                    command[command.index(flag) + 1] = value
                else:
                    command += [flag, value]
        return command

    # -- compose's start-up order ----------------------------------------------------
    def startup_waves(self) -> list[list[str]]:
        """Forgeline services grouped so that each wave depends only on earlier ones."""
        sorter = graphlib.TopologicalSorter(
            {name: set(depends_on(s)) & set(self.services) for name, s in self.services.items()}
        )
        sorter.prepare()
        waves = []
        while sorter.is_active():
            wave = sorted(sorter.get_ready())
            waves.append(wave)
            sorter.done(*wave)
        return waves

    def is_one_shot(self, name: str) -> bool:
        return any(
            depends_on(service).get(name) == "service_completed_successfully"
            for service in self.services.values()
        )

    def start_all(self, after_one_shots: Callable[[], None] | None = None) -> None:
        """Run one-shot services to completion and start the others, wave by wave.

        `after_one_shots` runs once the one-shot services (the migration) have succeeded.
        """
        one_shots = {name for name in self.services if self.is_one_shot(name)}
        for wave in self.startup_waves():
            if after_one_shots and one_shots <= self.ran:
                after_one_shots()
                after_one_shots = None
            for name in wave:
                if name in one_shots:
                    result = subprocess.run(
                        self.command(name),
                        env=self.env(name),
                        capture_output=True,
                        text=True,
                        timeout=60,
                    )
                    assert result.returncode == 0, result.stdout + result.stderr
                    self.ran.add(name)
                else:
                    self.start(name)
            for name in wave:
                if name in self.processes:
                    self.wait_ready(name)

    def start(self, name: str) -> StackProcess:
        log_path = self.logs / f"{name}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                self.command(name),
                env=self.env(name),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started = self.processes[name] = StackProcess(name, process, log_path, self.ports.get(name))
        return started

    def wait_ready(self, name: str, timeout: float = 60.0) -> None:
        """Until `name` is what its dependents wait for: /ready answers, or it logged ready."""
        started = self.processes[name]
        verb = command_of(self.services[name])[1] if name in self.services else ""
        marker = {"worker": " ready.", "beat": "beat: Starting"}.get(verb)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert started.process.poll() is None, f"{name} exited:\n{started.log()}"
            if started.url:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{started.url}/ready", timeout=2).status_code == 200:
                        return
            elif marker and marker in started.log():
                return
            time.sleep(0.1)
        raise AssertionError(f"{name} not ready in {timeout}s:\n{started.log()}")

    # -- stopping ----------------------------------------------------------------------
    def stop_all(self) -> dict[str, tuple[int | None, float]]:
        """SIGTERM to every process at once, as `docker compose down` sends; (code, seconds)."""
        began = time.monotonic()
        for started in self.processes.values():
            started.process.send_signal(signal.SIGTERM)
        outcome = {}
        for name, started in self.processes.items():
            remaining = max(0.0, STOP_TIMEOUT - (time.monotonic() - began))
            with contextlib.suppress(subprocess.TimeoutExpired):
                started.process.wait(timeout=remaining)
            outcome[name] = (started.process.poll(), time.monotonic() - began)
        return outcome

    def kill_all(self) -> None:
        for started in self.processes.values():
            if started.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(started.process.pid, signal.SIGKILL)
                started.process.wait(timeout=5)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[LocalStack]:
    database_url = databases.create_database(tmp_path)
    broker_url = databases.broker_url(STACK_REDIS_DB)
    flush_broker(broker_url)
    local = LocalStack(tmp_path, database_url, broker_url)
    try:
        yield local
    finally:
        local.kill_all()
        flush_broker(broker_url)
        databases.drop_database(database_url)


def flush_broker(broker_url: str) -> None:
    if broker_url.startswith("redis"):
        import redis

        redis.Redis.from_url(broker_url).flushdb()


def spawn(command: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finished(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    stdout, stderr = process.communicate(timeout=60)
    return process.returncode, stdout, stderr


# -- talking to the stack ------------------------------------------------------------------
def client(stack: LocalStack, service: str, credentials: dict[str, str]) -> Any:
    return boto3.client(
        service,
        endpoint_url=stack.url("gateway"),
        region_name="us-east-1",
        aws_access_key_id=credentials["accessKeyId"],
        aws_secret_access_key=credentials["secretAccessKey"],
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


def request_counts(url: str) -> dict[tuple[str, str], float]:
    """forgeline_requests by (API, operation), from one process's /metrics."""
    counts: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics", timeout=5).text):
        for sample in family.samples:
            if sample.name == "forgeline_requests_total":
                key = (sample.labels["service"], sample.labels["operation"])
                counts[key] = counts.get(key, 0) + sample.value
    return counts


def call_list_operation(api: Any, method: str, operation: str) -> int:
    """The HTTP status of a list call: 200, or 501 from an API that names the operation."""
    try:
        return getattr(api, method)()["ResponseMetadata"]["HTTPStatusCode"]
    except ClientError as error:
        assert error.response["Error"]["Code"] == "NotImplementedException", error.response
        assert operation in error.response["Error"]["Message"], error.response
        return error.response["ResponseMetadata"]["HTTPStatusCode"]


def check_apis_through_gateway(stack: LocalStack, credentials: dict[str, str]) -> None:
    repository = f"stack-{uuid.uuid4().hex[:8]}"
    codecommit = client(stack, "codecommit", credentials)
    metadata = codecommit.create_repository(repositoryName=repository)["repositoryMetadata"]
    assert metadata["accountId"] == credentials["accountId"]
    names = [r["repositoryName"] for r in codecommit.list_repositories()["repositories"]]
    assert repository in names
    # The repo process wrote it into the data directory every process shares.
    assert (stack.data_dir / "repositories" / f"{metadata['repositoryId']}.git").is_dir()

    for api_name, (method, operation) in LIST_CALLS.items():
        status = call_list_operation(client(stack, api_name, credentials), method, operation)
        assert status in (200, 501), (api_name, status)

    # Each answer came from the process serving that API, not from the gateway itself.
    owner_of = {"codecommit": "repo", "codebuild": "build", "codedeploy": "deploy"}
    owner_of["codepipeline"] = "pipeline"
    processes = SERVICE_NAMES
    counted = {name: request_counts(stack.url(name)) for name in processes}
    for api_name, (_method, operation) in LIST_CALLS.items():
        owner = owner_of[api_name]
        assert counted[owner].get((api_name, operation), 0) >= 1, (owner, counted[owner])
        for other in processes:
            if other != owner:
                assert (api_name, operation) not in counted[other], (other, operation)
    assert counted["repo"][("codecommit", "CreateRepository")] == 1

    # Builds reach the front door too: it serves no operator endpoint, while each service
    # still answers /metrics on its own address (read above).
    gateway = stack.url("gateway")
    for path in ("/metrics", "/_forgeline/reset", "/moto-api/reset"):
        method = "GET" if path == "/metrics" else "POST"
        assert httpx.request(method, f"{gateway}{path}", timeout=5).status_code == 403, path


def worker_healthcheck(stack: LocalStack) -> subprocess.Popen[str]:
    """The compose file's worker healthcheck, run against the local worker."""
    test = stack.services["worker"]["healthcheck"]["test"]
    assert test[0] == "CMD", test
    return spawn(test[1:], stack.env("worker"))


def wait_for_log(started: StackProcess, pattern: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not re.search(pattern, started.log()):
        assert time.monotonic() < deadline, f"{started.name}: no {pattern!r} in\n{started.log()}"
        time.sleep(0.2)


def test_every_compose_entry_point_starts_serves_and_stops(stack: LocalStack) -> None:
    on_redis = stack.broker_url.startswith("redis")
    accounts: list[subprocess.Popen[str]] = []
    # Credentials come from the CLI, on the same database and data directory, once migrated.
    create_account = [str(FORGELINE_SCRIPT), "accounts", "create", "--name", "stack"]
    stack.start_all(lambda: accounts.append(spawn(create_account, stack.env("migrate"))))
    assert set(stack.processes) == {name for name in stack.services if not stack.is_one_shot(name)}
    assert stack.ran == {"migrate"}
    stack.start_gateway()

    ping = worker_healthcheck(stack) if on_redis else None
    for name, started in stack.processes.items():
        if started.url and name in stack.services:  # the image's healthcheck, every service
            env = {**stack.env(name), "FORGELINE_PORT": str(started.port)}
            check = subprocess.run(
                ["sh", "-c", healthcheck_command()], env=env, capture_output=True, timeout=30
            )
            assert check.returncode == 0, (name, check.stderr)

    code, stdout, stderr = finished(accounts[0])
    assert code == 0, stderr
    check_apis_through_gateway(stack, json.loads(stdout))

    worker, beat = stack.processes["worker"], stack.processes["beat"]
    wait_for_log(beat, r"Sending due task reap-expired-leases")
    if ping is not None:  # on Redis the worker answers pings and runs what beat sends
        code, stdout, stderr = finished(ping)
        assert code == 0, stdout + stderr
        wait_for_log(worker, r"Task forgeline\.reap_expired\[[^]]+\] succeeded")
    for started in stack.processes.values():
        assert started.process.poll() is None, f"{started.name} exited:\n{started.log()}"

    outcome = stack.stop_all()
    # uvicorn re-raises SIGTERM once it has shut down, so -SIGTERM is a clean stop too.
    clean = (0, -signal.SIGTERM, 128 + signal.SIGTERM)
    failed = {name for name, (code, _) in outcome.items() if code not in clean}
    assert not failed, {name: stack.processes[name].log()[-3000:] for name in failed}
    assert all(seconds < STOP_TIMEOUT for _code, seconds in outcome.values()), outcome
    for started in stack.processes.values():
        if started.url and started.name in stack.services:
            assert "Application shutdown complete" in started.log(), started.log()[-3000:]
    assert "Warm shutdown" in worker.log()
