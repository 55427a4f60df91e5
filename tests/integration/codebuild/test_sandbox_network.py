"""A Docker build's network: its own, with a way in to Forgeline and to nothing else.

On this machine's engine (no bridge networking) an isolated build runs on network `none`,
and the worker relays the server's loopback ports into it. One real build shows it cannot
reach Redis, Postgres, the Docker socket, the server's operator endpoints or another running
build's container, while it still reads its repository with the build's git credential, its
artifacts reach an S3 bucket and its log lines stream to GetLogEvents; a build on the
standard image (BusyBox has no git) clones with git over both relayed ports, HTTP and HTTPS.

Every refusal is paired with the same probe succeeding where it should: in the same build
against the server's API port (so the probe works), and from the very same script on the
host's network (so the refusals are the isolation's doing) -- in a container started with
`--network host`, and in a build of a server whose operator chose FORGELINE_BUILD_NETWORK=host.
"""

from __future__ import annotations

import ipaddress
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest.mock import patch

import httpx
import pytest

from forgeline.core.build_clients import FORWARDED_SOURCE_ADDRESS, BuildClients, subnets_of
from forgeline.core.settings import Settings
from tests.support.builds import (
    TINY_IMAGE,
    build_server,
    create_project,
    log_lines,
    output_lines,
    run_build,
    unique,
    wait_for_build,
)
from tests.support.server import ForgelineServer, free_port

# Where build A listens inside its own container: build B tries the same address.
OTHER_BUILD_PORT = 9999

# Each probe prints one line, `name: what came back`. POSIX sh and BusyBox only.
PROBES = r"""#!/bin/sh
show() { head -c 400 | tr '\r\n\0' '   '; echo; }
ask() {  # ask NAME HOST PORT REQUEST: the start of what a TCP server answers REQUEST
  printf '%s: ' "$1"
  printf "$4" | nc -w 3 "$2" "$3" 2>&1 | show
}
get() {  # get NAME URL: status line, headers and the start of the body
  printf '%s: ' "$1"
  wget -S -O- "$2" 2>&1 | show
}
post() {
  printf '%s: ' "$1"
  wget -S -O- --post-data '' "$2" 2>&1 | show
}
server="http://127.0.0.1:$SERVER_PORT"
ask redis 127.0.0.1 6379 'PING\r\n'
ask postgres 127.0.0.1 5432 '\0\0\0\10\4\322\26\57'
ask other-build 127.0.0.1 "$OTHER_BUILD_PORT" 'GET / HTTP/1.0\r\n\r\n'
ask tls-port 127.0.0.1 "$TLS_PORT" ''
get health "$server/health"
get metrics "$server/metrics"
get ready "$server/ready"
# Only where refusal is expected: answered, a reset would wipe the server under the test.
if [ "$PROBE_RESET" = yes ]; then
  post reset "$server/_forgeline/reset"
  post moto-reset "$server/moto-api/reset"
fi
get s3 "$server/$BUCKET"
if [ -e /var/run/docker.sock ]; then echo 'docker-socket: present'; else echo 'docker-socket: absent'; fi
echo "interfaces: $(ls /sys/class/net | tr '\n' ' ')"
# The build's git credential, as git gets it from the credential helper: the first request
# of a clone, with it and without.
helper=${GIT_CONFIG_VALUE_0#!sh }
user=$(echo | sh $helper get | sed -n 's/^username=//p')
pass=$(echo | sh $helper get | sed -n 's/^password=//p')
auth=$(printf '%s:%s' "$user" "$pass" | base64 | tr -d '\n')
refs="$CLONE_URL/info/refs?service=git-upload-pack"
echo "git-credential: $(wget -qO- --header "Authorization: Basic $auth" "$refs" 2>&1 | show)"
echo "git-anonymous: $(wget -qO- "$refs" 2>&1 | show)"
echo probe > probed.txt
"""

BUILDSPEC = """version: 0.2
env:
  git-credential-helper: yes
phases:
  build:
    commands:
      - sh probes.sh
artifacts:
  files:
    - probed.txt
"""

# Build A: serves a page on its own loopback, shows it can read it, then waits to be stopped.
OTHER_BUILD = f"""version: 0.2
phases:
  build:
    commands:
      - mkdir -p www && echo from-build-a > www/index.html
      - httpd -p 127.0.0.1:{OTHER_BUILD_PORT} -h www
      - echo "A-SELF $(wget -qO- http://127.0.0.1:{OTHER_BUILD_PORT}/)"
      - echo A-READY
      - sleep 300
"""


def _server(tmp_path_factory: Any, network: str) -> Iterator[ForgelineServer]:
    yield from build_server(
        tmp_path_factory,
        "docker",
        FORGELINE_BUILD_NETWORK=network,
        FORGELINE_TLS_PORT=str(free_port()),
        FORGELINE_BUILD_SLOTS="2",
        # The default (the suite's servers turn it off): builds join prepared namespaces.
        FORGELINE_BUILD_PREPARED_NAMESPACES="2",
    )


@pytest.fixture(scope="module")
def isolated(tmp_path_factory: Any, tiny_image: str) -> Iterator[ForgelineServer]:
    yield from _server(tmp_path_factory, "isolated")


def _repository(server: ForgelineServer) -> tuple[str, str]:
    """A new repository holding the probes on main: (name, HTTP clone URL)."""
    codecommit = server.client("codecommit")
    repository = unique("probes")
    clone_url = codecommit.create_repository(repositoryName=repository)["repositoryMetadata"][
        "cloneUrlHttp"
    ]
    codecommit.put_file(
        repositoryName=repository,
        branchName="main",
        filePath="probes.sh",
        fileContent=PROBES.encode(),
        commitMessage="probes",
    )
    return repository, clone_url


def _environment(image: str, variables: dict[str, str]) -> dict[str, Any]:
    return {
        "type": "LINUX_CONTAINER",
        "image": image,
        "computeType": "BUILD_GENERAL1_SMALL",
        "environmentVariables": [
            {"name": name, "value": value, "type": "PLAINTEXT"} for name, value in variables.items()
        ],
    }


def _probe_project(server: ForgelineServer, *, probe_reset: bool) -> tuple[str, str, str]:
    """A project building a repository that holds the probes; (project, bucket, repository)."""
    repository, clone_url = _repository(server)
    bucket = unique("probe-artifacts")
    server.client("s3", s3={"addressing_style": "path"}).create_bucket(Bucket=bucket)
    variables = {
        "SERVER_PORT": str(server.port),
        "TLS_PORT": server.env["FORGELINE_TLS_PORT"],
        "CLONE_URL": clone_url,
        "REPOSITORY": repository,
        "BUCKET": bucket,
        "OTHER_BUILD_PORT": str(OTHER_BUILD_PORT),
        "PROBE_RESET": "yes" if probe_reset else "no",
    }
    project = create_project(
        server.client("codebuild"),
        BUILDSPEC,
        source={"type": "CODECOMMIT", "location": clone_url},
        artifacts={"type": "S3", "location": bucket, "packaging": "NONE", "name": "out"},
        environment=_environment(TINY_IMAGE, variables),
    )
    return project, bucket, repository


def _answers(lines: list[str]) -> dict[str, str]:
    answers = {}
    for line in lines:
        name, colon, rest = line.partition(": ")
        if colon and name.replace("-", "").isalnum():
            answers.setdefault(name, rest)
    return answers


def _wait_for_line(server: ForgelineServer, build_id: str, wanted: str) -> list[str]:
    codebuild = server.client("codebuild")
    deadline = time.monotonic() + 60
    while True:
        build = codebuild.batch_get_builds(ids=[build_id])["builds"][0]
        assert not build["buildComplete"], build["phases"]
        if build.get("logs", {}).get("streamName"):
            try:
                lines = log_lines(server, build)
            except server.client("logs").exceptions.ResourceNotFoundException:
                lines = []  # the log group is made with the first lines
            if wanted in lines:
                return lines
        assert time.monotonic() < deadline, f"{wanted!r} never appeared"
        time.sleep(0.2)


def _operator_refusal(answer: str) -> bool:
    # BusyBox wget shows no body on an error; the refusal's words are checked at the server
    # (test_operator_endpoints_refuse_the_build_forwarder).
    return "HTTP/1.1 403 Forbidden" in answer


@pytest.mark.docker
def test_an_isolated_build_reaches_forgeline_and_nothing_else(isolated: ForgelineServer) -> None:
    server = isolated
    codebuild = server.client("codebuild")
    project, bucket, _ = _probe_project(server, probe_reset=True)

    # Build A runs a server on its own loopback and reads it there (so the page is up).
    other = create_project(codebuild, OTHER_BUILD)
    other_id = codebuild.start_build(projectName=other)["build"]["id"]
    try:
        # Its lines stream while it runs: GetLogEvents shows them before the build ends.
        other_lines = _wait_for_line(server, other_id, "A-READY")
        assert "A-SELF from-build-a" in other_lines

        build = run_build(codebuild, project)
    finally:
        codebuild.stop_build(id=other_id)
    assert build["buildStatus"] == "SUCCEEDED", [
        (p["phaseType"], p.get("contexts")) for p in build["phases"]
    ]
    assert wait_for_build(codebuild, other_id)["buildStatus"] == "STOPPED"

    answers = _answers(output_lines(server, build))
    # Nothing of the platform: the probes are refused at the build's own loopback...
    for name in ("redis", "postgres", "other-build"):
        assert "Connection refused" in answers[name], (name, answers)
    assert "+PONG" not in answers["redis"]
    assert answers["docker-socket"] == "absent"
    assert answers["interfaces"].split() == ["lo"]
    # ...while the same probes reach the server's two ports, relayed in.
    assert "Connection refused" not in answers["tls-port"], answers["tls-port"]
    assert "HTTP/1.1 200" in answers["health"] and '"status":"ok"' in answers["health"]
    # The operator's endpoints on that very port refuse builds (they answer 200 otherwise:
    # reset is allowed to loopback clients of this server)...
    for name in ("metrics", "ready", "reset", "moto-reset"):
        assert _operator_refusal(answers[name]), (name, answers[name])
    # ...and answer the operator, on the host.
    assert httpx.get(f"{server.url}/metrics").status_code == 200
    assert httpx.get(f"{server.url}/ready").status_code == 200
    # The S3 endpoint is there (an anonymous request is refused by S3 itself).
    assert "HTTP/1.1 403" in answers["s3"], answers["s3"]
    # The build's git credential reads its repository; a request without it is refused.
    assert "# service=git-upload-pack" in answers["git-credential"], answers["git-credential"]
    assert "refs/heads/main" in answers["git-credential"], answers["git-credential"]
    assert "401" in answers["git-anonymous"], answers["git-anonymous"]

    # Artifacts reached the bucket.
    s3 = server.client("s3", s3={"addressing_style": "path"})
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert keys == ["out/probed.txt"]
    body = s3.get_object(Bucket=bucket, Key="out/probed.txt")["Body"].read()
    assert body == b"probe\n"


CLONE_BUILDSPEC = """version: 0.2
env:
  git-credential-helper: yes
  variables:
    GIT_SSL_NO_VERIFY: "true"
phases:
  build:
    commands:
      - git clone -q "$CLONE_URL" over-http
      - git clone -q "https://127.0.0.1:$TLS_PORT/v1/repos/$REPOSITORY" over-https
      - echo "cloned $(head -c 9 over-http/probes.sh) $(head -c 9 over-https/probes.sh)"
"""


@pytest.mark.docker
def test_an_isolated_build_clones_with_its_credential_over_http_and_https(
    isolated: ForgelineServer,
) -> None:
    """git itself (the standard image has it; BusyBox has not), through both relayed ports."""
    from forgeline.codebuild import images

    standard = images.ensure_image("standard")
    repository, clone_url = _repository(isolated)
    variables = {
        "CLONE_URL": clone_url,
        "TLS_PORT": isolated.env["FORGELINE_TLS_PORT"],
        "REPOSITORY": repository,
    }
    codebuild = isolated.client("codebuild")
    project = create_project(
        codebuild, CLONE_BUILDSPEC, environment=_environment(standard, variables)
    )
    build = run_build(codebuild, project)
    assert build["buildStatus"] == "SUCCEEDED", [
        (p["phaseType"], p.get("contexts")) for p in build["phases"]
    ]
    assert "cloned #!/bin/sh #!/bin/sh" in output_lines(isolated, build)


@pytest.mark.docker
def test_the_same_probes_see_the_platform_on_the_host_network(
    isolated: ForgelineServer, tmp_path: Path
) -> None:
    """The refusals above are the isolation's: on the host's network the script sees all."""
    script = tmp_path / "probes.sh"
    script.write_text(PROBES)
    env = {
        "SERVER_PORT": str(isolated.port),
        "TLS_PORT": isolated.env["FORGELINE_TLS_PORT"],
        "CLONE_URL": f"{isolated.url}/v1/repos/none",
        "REPOSITORY": "none",
        "BUCKET": "none",
        "OTHER_BUILD_PORT": str(OTHER_BUILD_PORT),
        "GIT_CONFIG_VALUE_0": "!sh /dev/null",
    }
    command = ["docker", "run", "--rm", "--network", "host", "-v", f"{tmp_path}:/probe"]
    for name, value in env.items():
        command += ["-e", f"{name}={value}"]
    done = subprocess.run(
        [*command, TINY_IMAGE, "sh", "-c", "cd /tmp && sh /probe/probes.sh"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    answers = _answers(done.stdout.splitlines())
    assert "+PONG" in answers["redis"], answers
    assert answers["postgres"].strip() in ("N", "S"), answers  # Postgres answers SSLRequest
    assert "HTTP/1.1 200 OK" in answers["metrics"], answers["metrics"]


@pytest.fixture(scope="module")
def on_host_network(tmp_path_factory: Any, tiny_image: str) -> Iterator[ForgelineServer]:
    yield from _server(tmp_path_factory, "host")


@pytest.mark.docker
def test_the_host_network_is_the_operators_choice_and_announced(
    on_host_network: ForgelineServer,
) -> None:
    server = on_host_network
    project, _, _ = _probe_project(server, probe_reset=False)
    build = run_build(server.client("codebuild"), project)
    assert build["buildStatus"] == "SUCCEEDED", build["phases"]
    answers = _answers(output_lines(server, build))
    # What isolation takes away, shown by the same build on the host's network.
    assert "+PONG" in answers["redis"], answers
    assert "HTTP/1.1 200 OK" in answers["metrics"], answers["metrics"]
    assert "lo" in answers["interfaces"].split() and answers["interfaces"].split() != ["lo"]
    assert "build network: host" in server.log_path.read_text(errors="replace")


# --- the Docker runner's settings reach the container ---------------------------------


@pytest.mark.docker
def test_docker_socket_only_where_the_operator_hands_it_over(
    tiny_image: str, tmp_path: Path
) -> None:
    from forgeline.codebuild.runners.base import RunSpec
    from forgeline.codebuild.runners.docker_runner import DockerRunner

    runner = DockerRunner()
    found = {}
    for name, handed in (("privileged", False), ("privileged-with-socket", True)):
        root = tmp_path / name
        root.mkdir()
        spec = RunSpec(
            f"sandbox-test:{uuid.uuid4()}",
            root,
            tiny_image,
            {"PATH": "/usr/bin:/bin"},
            privileged=True,
            host_docker_socket=handed,
            pids_limit=321,
        )
        session = runner.prepare(spec)
        try:
            out: list[bytes] = []
            status = session.run(
                ["sh", "-c", "test -S /var/run/docker.sock && echo socket || echo none"],
                cwd=session.root_in_runner,
                on_output=out.append,
            )
            assert status == 0
            found[name] = b"".join(out).decode().strip()
            host_config = runner.client().api.inspect_container(session.container_id)
            assert host_config["HostConfig"]["PidsLimit"] == 321
            mode = host_config["HostConfig"]["NetworkMode"]
            if mode.startswith("container:"):  # a namespace prepared ahead of the build
                holder = runner.client().api.inspect_container(mode.removeprefix("container:"))
                mode = holder["HostConfig"]["NetworkMode"]
            assert mode == "none"
        finally:
            session.cleanup()
    assert found == {"privileged": "none", "privileged-with-socket": "socket"}
    runner.close()


# --- recognising builds at the server (no engine needed) -------------------------------


@pytest.mark.no_db
@pytest.mark.parametrize("path", ["/metrics", "/ready", "/_forgeline/reset", "/moto-api/reset"])
def test_operator_endpoints_refuse_the_build_forwarder(tmp_path: Path, path: str) -> None:
    import asyncio

    from forgeline.core.server import create_app

    app = create_app(settings=Settings(data_dir=tmp_path, allow_reset=False))
    method = "GET" if path in ("/metrics", "/ready") else "POST"

    async def ask(client_host: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=(client_host, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            return await http.request(method, path)

    for build in (FORWARDED_SOURCE_ADDRESS, f"::ffff:{FORWARDED_SOURCE_ADDRESS}"):
        refused = asyncio.run(ask(build))
        assert refused.status_code == 403
        assert "not served to builds" in refused.json()["message"]
    operator = asyncio.run(ask("127.0.0.1"))
    assert "not served to builds" not in operator.text
    if path == "/metrics":
        assert operator.status_code == 200
    # /health stays open to builds.
    assert asyncio.run(_get(app, FORWARDED_SOURCE_ADDRESS, "/health")).status_code == 200


async def _get(app: Any, client_host: str, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, client=(client_host, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        return await http.get(path)


@pytest.mark.no_db
def test_build_network_subnets_mark_builds(tmp_path: Path) -> None:
    network = {"Name": "forgeline-builds", "IPAM": {"Config": [{"Subnet": "172.30.0.0/16"}]}}
    asked: list[int] = []

    def subnets() -> list[Any]:
        asked.append(1)
        return subnets_of(network)

    clients = BuildClients(Settings(data_dir=tmp_path), subnets)
    assert clients.includes("172.30.4.5")
    assert clients.includes("::ffff:172.30.4.5")
    assert not clients.includes("172.31.0.1")  # the stack's own network
    assert not clients.includes("127.0.0.1") and not clients.includes("::1")
    assert clients.includes(FORWARDED_SOURCE_ADDRESS)
    assert not clients.includes(None) and not clients.includes("testclient")
    assert len(asked) == 1  # found subnets are kept a while
    # No isolation chosen: nothing but the forwarder's address is a build's.
    on_host = BuildClients(Settings(data_dir=tmp_path, build_network="host"), subnets)
    assert not on_host.includes("172.30.4.5")
    assert ipaddress.ip_network("172.30.0.0/16") in subnets_of(network)


@pytest.mark.no_db
def test_the_gateway_forwards_nothing_outside_the_repositories() -> None:
    import asyncio

    from starlette.requests import Request

    from forgeline.core.gateway import GatewayProxy

    forwarded: list[str] = []

    def upstream(request: httpx.Request) -> httpx.Response:
        forwarded.append(request.url.raw_path.decode())
        return httpx.Response(200, text="ok")

    proxy = GatewayProxy({"repo": "http://repo"})
    proxy.client = httpx.AsyncClient(transport=httpx.MockTransport(upstream))

    async def ask(raw_path: bytes) -> int:
        scope = {
            "type": "http",
            "method": "GET",
            "path": raw_path.decode(),
            "raw_path": raw_path,
            "query_string": b"",
            "headers": [],
        }
        return (await proxy.forward_git(Request(scope))).status_code

    for sneaky in (b"/v1/repos/../../metrics", b"/v1/repos/%2e%2e/%2E%2e/_forgeline/reset"):
        assert asyncio.run(ask(sneaky)) == 404
    assert forwarded == []
    assert asyncio.run(ask(b"/v1/repos/app/info/refs")) == 200
    assert forwarded == ["/v1/repos/app/info/refs"]


# --- what is relayed, and the bridge-networking path (no engine needed) ------------------


@pytest.mark.no_db
def test_the_loopback_urls_builds_are_given_are_relayed(tmp_path: Path) -> None:
    from forgeline.codebuild.runners.server_endpoints import routed_urls, server_endpoints

    plain = Settings(data_dir=tmp_path, host="127.0.0.1", port=4750)
    assert server_endpoints(plain) == (
        ("127.0.0.1", 4750, "127.0.0.1", 4750),
        ("127.0.0.1", 4751, "127.0.0.1", 4751),
    )
    # A public URL on localhost: both of its loopback names in the build, to 127.0.0.1.
    local = Settings(
        data_dir=tmp_path, host="0.0.0.0", port=80, tls_port=0, public_url="http://localhost"
    )
    assert server_endpoints(local) == (
        ("127.0.0.1", 80, "127.0.0.1", 80),
        ("::1", 80, "127.0.0.1", 80),
    )
    assert routed_urls(local) == []
    # Names and other addresses are reached by routing, and IPv6 loopback is not relayed.
    public = Settings(
        data_dir=tmp_path, host="::1", port=4750, public_url="https://forgeline.example.com"
    )
    assert server_endpoints(public) == ()
    assert routed_urls(public) == [
        "::1:4750",
        "::1:4751",
        "forgeline.example.com:443",
        "forgeline.example.com:4751",
    ]


@pytest.mark.no_db
def test_the_build_network_is_announced(tmp_path: Path) -> None:
    from forgeline.codebuild.runners.select import describe_build_network

    host = Settings(data_dir=tmp_path, build_network="host")
    line, warn = describe_build_network(host, True)
    assert warn and "build network: host" in line and "the database" in line
    isolated = Settings(data_dir=tmp_path, port=4750)
    line, warn = describe_build_network(isolated, False)
    assert not warn and "network none" in line and "127.0.0.1:4750, 127.0.0.1:4751" in line
    line, warn = describe_build_network(isolated, True)
    assert not warn and "Docker network forgeline-builds" in line
    elsewhere = Settings(data_dir=tmp_path, public_url="http://forgeline.internal:8080")
    line, warn = describe_build_network(elsewhere, False)
    assert warn and "cannot reach forgeline.internal:8080" in line
    assert not describe_build_network(elsewhere, True)[1]  # routed on a bridge network
    # A worker that is not root cannot relay: said at start, as a warning.
    with patch("os.geteuid", return_value=1000):
        line, warn = describe_build_network(isolated, False)
    assert warn and "needs root" in line and "cannot reach this server" in line


class _BridgeEngine:
    """The parts of docker-py's low-level API a build's start uses, on an engine with bridge
    networking (this machine's has none, so the path is checked against this stand-in)."""

    def __init__(self, build_network: dict[str, Any] | None = None) -> None:
        self.networks: dict[str, dict[str, Any]] = {"bridge": {"Driver": "bridge"}}
        if build_network is not None:
            self.networks["forgeline-builds"] = build_network
        self.created_networks: list[dict[str, Any]] = []
        self.host_configs: list[dict[str, Any]] = []
        # Another worker makes the network between our look and our create.
        self.made_meanwhile = False

    def inspect_image(self, image: str) -> dict[str, Any]:
        return {"Id": image}

    def inspect_network(self, name: str) -> dict[str, Any]:
        import docker

        if name not in self.networks:
            raise docker.errors.NotFound(f"network {name} not found")
        return self.networks[name]

    def create_network(self, name: str, **options: Any) -> dict[str, Any]:
        import docker

        self.created_networks.append({"name": name, **options})
        self.networks[name] = {"Driver": options["driver"], "Options": options["options"]}
        if self.made_meanwhile:
            response = SimpleNamespace(status_code=409, reason="Conflict", url="")
            raise docker.errors.APIError("network already exists", response=response)
        return {"Id": name}

    def create_host_config(self, **config: Any) -> dict[str, Any]:
        self.host_configs.append(config)
        return config

    def create_container(self, image: str, **_: Any) -> dict[str, Any]:
        return {"Id": "c0ffee"}

    def start(self, container_id: str) -> None:
        pass

    def inspect_container(self, container_id: str) -> dict[str, Any]:
        return {"State": {"Pid": 0}}  # no process to relay into: the runner says so and goes on

    def remove_container(self, container_id: str, **_: Any) -> None:
        pass


def _bridge_runner(engine: _BridgeEngine) -> Any:
    from forgeline.codebuild.runners.docker_runner import DockerRunner

    # No namespaces prepared ahead: the stand-in engine records one container per build.
    return DockerRunner(client_factory=lambda: SimpleNamespace(api=engine), prepared_namespaces=0)


@pytest.mark.no_db
def test_on_a_bridge_engine_builds_join_their_own_network(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from forgeline.codebuild.runners.base import RunSpec

    engine = _BridgeEngine()
    runner = _bridge_runner(engine)
    spec = RunSpec(
        "bridge-test:1",
        tmp_path,
        TINY_IMAGE,
        {},
        server_endpoints=[("127.0.0.1", 4750, "127.0.0.1", 4750)],
        pids_limit=64,
        privileged=True,
    )
    with caplog.at_level("WARNING", logger="forgeline.build.network"):
        session = runner.prepare(spec)
        runner.prepare(spec)
    # Made once, as a plain bridge network with no traffic between its containers.
    assert engine.created_networks == [
        {
            "name": "forgeline-builds",
            "driver": "bridge",
            "options": {"com.docker.network.bridge.enable_icc": "false"},
            "labels": {"org.forgeline.build-network": "isolated builds"},
            "check_duplicate": True,
        }
    ]
    config = engine.host_configs[0]
    assert config["network_mode"] == "forgeline-builds"
    assert config["pids_limit"] == 64
    assert [mount["Target"] for mount in config["mounts"]] == [session.root_in_runner]
    # No way in could be opened (no such process): said once, and the build goes on.
    warnings = [
        r.getMessage() for r in caplog.records if "cannot reach this server" in r.getMessage()
    ]
    assert len(warnings) == 1 and "127.0.0.1:4750" in warnings[0]
    # ...and the build's own log is told, at PROVISIONING, through the session's notes.
    assert (
        len(session.notes) == 1 and "no way in to Forgeline at 127.0.0.1:4750" in session.notes[0]
    )
    # The operator's choice of the host network is kept as it is.
    from dataclasses import replace

    runner.prepare(replace(spec, network="host"))
    assert engine.host_configs[-1]["network_mode"] == "host"


@pytest.mark.no_db
def test_a_build_network_that_is_not_a_plain_bridge_is_refused(tmp_path: Path) -> None:
    from forgeline.codebuild.runners.base import RunnerError, RunSpec

    spec = RunSpec("bridge-test:2", tmp_path, TINY_IMAGE, {})
    engine = _BridgeEngine({"Driver": "host", "Options": {}})
    with pytest.raises(RunnerError) as refused:
        _bridge_runner(engine).prepare(spec)
    assert refused.value.fault and "FORGELINE_BUILD_NETWORK_NAME" in refused.value.message
    # One the operator made with traffic between containers on is used, with a warning.
    shared = _BridgeEngine({"Driver": "bridge", "Options": {}})
    _bridge_runner(shared).prepare(spec)
    assert shared.host_configs[0]["network_mode"] == "forgeline-builds"
    assert shared.created_networks == []
    # Two workers making it at once: the loser uses the winner's.
    raced = _BridgeEngine()
    raced.made_meanwhile = True
    _bridge_runner(raced).prepare(spec)
    assert raced.host_configs[0]["network_mode"] == "forgeline-builds"
