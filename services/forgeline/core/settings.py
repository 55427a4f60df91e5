"""Process-wide configuration, read from FORGELINE_* environment variables.

Every knob an operator can turn lives here so the README's configuration table and
the code cannot drift apart: `forgeline config` prints this model's fields.
"""

from __future__ import annotations

import functools
import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from forgeline.core.service_names import SERVICE_NAMES  # noqa: F401 - re-exported


class Settings(BaseSettings):
    # populate_by_name: fields with deprecated aliases are still set by name in code.
    model_config = SettingsConfigDict(
        env_prefix="FORGELINE_", extra="ignore", populate_by_name=True
    )

    data_dir: Path = Field(
        default=Path(".forgeline"),
        description="Directory for the SQLite database, blobs, git repositories, "
        "the server key and the generated credentials file.",
    )
    host: str = Field(default="127.0.0.1", description="Address the HTTP server binds.")
    port: int = Field(default=4750, description="Port the HTTP server binds.")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the state store; default: SQLite in the data "
        "directory. Production: postgresql+psycopg://user@host/db.",
    )
    broker_url: str = Field(
        default="memory://",
        description="Celery broker. `memory://` runs the worker inside the server process; "
        "production: redis://host:6379/0.",
    )
    events_fanout_url: str | None = Field(
        default=None,
        description="Redis URL for event fan-out between processes; default: the broker "
        "when it is Redis, otherwise in-process.",
    )
    worker: Literal["embedded", "external"] = Field(
        default="embedded",
        description="`embedded` runs a Celery worker thread and the lease reaper inside "
        "`forgeline serve`; `external` leaves them to `forgeline worker` and `forgeline beat`.",
    )
    worker_concurrency: int = Field(default=2, description="Task slots per worker.")
    broker_queue: str = Field(
        default="forgeline",
        description="The broker queue this deployment's processes share. Deployments that "
        "share one Redis database need different names.",
    )
    build_dir: Path | None = Field(
        default=None,
        description="Where builds' working directories live (default `<data-dir>/builds`). "
        "A worker in a container that starts build containers through the host's Docker "
        "needs it at the same path inside and outside.",
    )
    build_slots: int = Field(
        default=2,
        ge=1,
        description="Builds one worker process runs at once; further builds wait in order.",
    )
    build_minute_seconds: float = Field(
        default=60.0,
        gt=0,
        description="Length of a minute for build timeouts (timeoutInMinutes, "
        "queuedTimeoutInMinutes). Lower it only to test timeouts quickly.",
    )
    auth: Literal["enforce", "permissive"] = Field(
        default="enforce",
        description="`enforce` verifies every SigV4 signature; `permissive` (loopback only) "
        "accepts any well-formed SigV4 request and maps unknown keys to the default account.",
    )
    default_account: str = Field(
        default="000000000000",
        description="Account id unknown access keys map to in permissive mode.",
    )
    default_region: str = Field(
        default="us-east-1", description="Region used where a request names none."
    )
    server_key: str | None = Field(
        default=None,
        description="Key (Fernet, urlsafe base64) that encrypts secrets at rest; default: "
        "generated once into <data-dir>/server.key.",
    )
    allow_reset: bool = Field(
        default=False,
        description="Enables POST /_forgeline/reset (and moto's /moto-api/reset), which "
        "wipes all state (loopback only).",
    )
    blob_store: Literal["local", "s3"] = Field(
        default="local", description="Where blobs live: `local` (data dir) or `s3`."
    )
    s3_endpoint_url: str | None = Field(default=None, description="S3-compatible endpoint.")
    s3_bucket: str = Field(default="forgeline", description="Bucket for blobs in S3 mode.")
    s3_access_key_id: str | None = Field(default=None, description="S3 access key id.")
    s3_secret_access_key: str | None = Field(default=None, description="S3 secret key.")
    s3_region: str = Field(default="us-east-1", description="S3 region name.")
    service_urls: str | None = Field(
        default=None,
        description="Gateway proxy mode: comma-separated `service=url` pairs "
        "(repo=http://repo:4750,…); unset: the gateway serves every service in-process.",
    )
    cors_allowed_origins: str | None = Field(
        default=None,
        description="Origins a browser may call the API from: `*` or a comma-separated list "
        "(https://console.example.com,…); unset: any origin on a loopback server, none otherwise.",
    )
    public_url: str | None = Field(
        default=None, description="Base URL clients use to reach Forgeline (clone URLs)."
    )
    tls_port: int | None = Field(
        default=None,
        validation_alias=AliasChoices("FORGELINE_TLS_PORT", "FORGELINE_GIT_TLS_PORT"),
        description="Port of the HTTPS endpoint, which serves the whole server: the API, git "
        "over HTTPS (git-remote-codecommit speaks only HTTPS) and the CodeDeploy agents' "
        "command service (agents speak only HTTPS). Default: port + 1 (4751); 0 turns it off. "
        "FORGELINE_GIT_TLS_PORT is its deprecated name.",
    )
    tls_cert_file: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("FORGELINE_TLS_CERT_FILE", "FORGELINE_GIT_TLS_CERT_FILE"),
        description="PEM certificate (chain) of the HTTPS endpoint; default: one issued by a "
        "local CA, both generated into <data-dir>/tls/ on first start (clients trust "
        "<data-dir>/tls/ca.pem). FORGELINE_GIT_TLS_CERT_FILE is its deprecated name.",
    )
    tls_key_file: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("FORGELINE_TLS_KEY_FILE", "FORGELINE_GIT_TLS_KEY_FILE"),
        description="PEM private key of tls_cert_file. FORGELINE_GIT_TLS_KEY_FILE is its "
        "deprecated name.",
    )
    git_regions: str = Field(
        default="",
        description="Comma-separated regions a CodeCommit git password may be signed for "
        "(the password does not say which); default: every region botocore lists for "
        "CodeCommit, plus default_region.",
    )
    api_threads: int = Field(
        default=40,
        description="Threads that run API handlers per process (handlers are synchronous).",
    )
    workers: int = Field(
        default=0,
        ge=0,
        description="Processes `forgeline serve` runs, sharing its ports (`--workers`); 0: one "
        "per CPU core this process may use, at most 4, when it serves every service, and one "
        "for a single `--service` (scaled by replicas). Each runs its own handler threads and, "
        "with the embedded worker, its own job worker and lease reaper (jobs run in the "
        "process that queued them); /metrics counts the requests of the process that answers it.",
    )
    max_body_bytes: int = Field(
        # CodeCommit takes files up to 6 MB, base64-encoded in JSON: 8 MiB and a margin.
        default=12 * 1024 * 1024,
        description="Largest API request body accepted.",
    )
    extra_task_modules: str = Field(
        default="",
        description="Comma-separated extra modules a worker imports to register job kinds.",
    )
    lease_seconds: int = Field(
        default=30, description="How long a worker's claim on a task lasts unless renewed."
    )
    reap_interval_seconds: float = Field(
        default=5.0, description="How often expired leases are reaped."
    )
    build_log_max_bytes: int = Field(
        default=64 * 1024 * 1024,
        description="Most bytes of text one build's log stores; later output is replaced "
        "by one truncation notice (the build keeps running).",
    )
    build_runner: Literal["auto", "docker", "host"] = Field(
        default="auto",
        description="Where builds run: `docker` (one container per build), `host` (plain "
        "processes of the worker's machine, no isolation, the image ignored; announced with "
        "a warning at start) or `auto` (Docker when an engine answers; with no engine, "
        "container builds are refused with a FAULT saying so, never run on the host).",
    )
    build_network: Literal["isolated", "host"] = Field(
        default="isolated",
        description="How a Docker build reaches the network: `isolated` (its own network "
        "namespace: on an engine with bridge networking a dedicated build network with no "
        "route to the stack's internal services; on one without, no network at all but a "
        "way in to this server's own endpoints, at the same URLs) or `host` (the host's "
        "network, loopback included: the database, the broker and every admin endpoint; "
        "announced with a warning at start).",
    )
    build_network_name: str = Field(
        default="forgeline-builds",
        description="The Docker network isolated builds join on an engine with bridge "
        "networking (created when missing).",
    )
    build_privileged: str = Field(
        default="",
        description="Who may run privileged builds (privilegedMode): `*` for every account, "
        "or a comma-separated list of account ids; empty (the default): nobody, and "
        "CreateProject, UpdateProject and StartBuild with privilegedMode are refused.",
    )
    build_docker_socket: bool = Field(
        default=False,
        description="Hand the host's Docker socket to privileged builds (root on the host: "
        "only for a single trusted team). Off: a privileged build gets its own Docker "
        "daemon where its image has one, never the host's.",
    )
    build_pids_limit: int = Field(
        default=4096,
        description="Most processes one build container may run at once (a fork bomb "
        "ends its own build, not the worker); 0: no limit.",
    )
    build_prepared_namespaces: int = Field(
        default=2,
        ge=0,
        le=16,
        description="Network namespaces each worker keeps made ahead of isolated Docker "
        "builds (a sleeping container each), so a build does not wait for one; 0: make "
        "each build's own as it starts (about 120 ms slower).",
    )
    build_disk_limit_bytes: int = Field(
        default=20 * 1024**3,
        description="Most bytes a build's directory (sources, outputs, cache) may hold; a "
        "build past it ends FAILED with a phase context saying so; 0: no limit.",
    )
    build_image_map: str = Field(
        default="",
        description="Local images for AWS's curated image names, as `aws-name=local-image` "
        "pairs separated by commas (e.g. `aws/codebuild/standard:7.0=my/image:1`); these win "
        "over the built-in map, which sends every Linux curated name to "
        "forgeline/standard:runtimes when present, else forgeline/standard:latest.",
    )
    codepipeline_s3_poll_seconds: float = Field(
        default=30.0,
        gt=0,
        description="How often pipelines whose S3 source polls for changes "
        "(PollForSourceChanges) look at the source object; a new ETag starts the pipeline.",
    )
    codedeploy_poll_seconds: float = Field(
        default=20.0,
        gt=0,
        le=60,
        description="How long a CodeDeploy agent's PollHostCommand waits for a command "
        "before answering that there is none (the agent then polls again at once).",
    )
    codedeploy_agent_pickup_timeout_seconds: int = Field(
        default=3600,
        gt=0,
        description="How long a lifecycle event waits for the instance's agent to take its "
        "command up before the instance fails (AWS: one hour).",
    )
    codedeploy_event_run_timeout_seconds: int = Field(
        default=3900,
        gt=0,
        description="How long a lifecycle event may run on an agent before the instance "
        "fails (scripts' own timeouts add up to an hour at most; AWS's limit plus a margin).",
    )
    codedeploy_agent_silence_seconds: float = Field(
        default=300.0,
        gt=0,
        description="An instance fails when the agent running its command has not called "
        "(polled or reported progress) for this long: the agent is gone.",
    )
    lambda_function_routes: str = Field(
        default="",
        description="Where Lambda functions are invoked (CodeDeploy's Lambda and ECS hook "
        "functions, CodePipeline's Invoke actions): JSON mapping function names to URLs "
        '(`{"CheckBefore": "http://127.0.0.1:9001/"}`, `"*"` for any other, `{function}` in '
        "its URL for the name), or the path of a file holding it. Each URL is POSTed the "
        "payload AWS would pass the function; the function answers through the API "
        "(PutLifecycleEventHookExecutionStatus, PutJobSuccessResult).",
    )
    codedeploy_hook_timeout_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="How long a Lambda or ECS deployment waits for a hook function's "
        "verdict before the hook fails (AWS: one hour).",
    )
    codedeploy_minute_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How many seconds a minute of a traffic-shifting deployment "
        "configuration lasts (canary and linear intervals); shorten it to run a "
        "`10 percent for 5 minutes` canary in seconds for tests and demos.",
    )
    log_level: str = Field(default="INFO", description="Log level of the JSON logs.")
    strict_output: bool = Field(
        default=False,
        description="Treat a response member the model does not know as a server bug "
        "(HTTP 500) instead of dropping it; the test suite turns this on.",
    )
    migrate_on_start: bool = Field(
        default=True,
        description="Apply database migrations when a server starts (serialized by a lock "
        "on Postgres); the production stack runs `forgeline db upgrade` instead.",
    )

    @field_validator("data_dir", "build_dir", "tls_cert_file", "tls_key_file")
    @classmethod
    def _absolute(cls, path: Path | None) -> Path | None:
        # Resolved once, here: every path derived from these must be absolute. A relative
        # one means different places to git (a relative core.hooksPath resolves inside the
        # bare repository), to Docker (which refuses relative bind mounts) and to a
        # process started in another folder.
        return None if path is None else path.expanduser().absolute()

    @functools.cached_property
    def resolved_database_url(self) -> str:
        # Cached: every session asks.
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'forgeline.db'}"

    @property
    def server_processes(self) -> int:
        # One Python process serves about one core's worth of API calls (the GIL), so the
        # default uses the cores there are; past four, SQLite's single writer is the limit.
        if self.workers:
            return self.workers
        return max(1, min(len(os.sched_getaffinity(0)), 4))

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @property
    def resolved_fanout_url(self) -> str | None:
        if self.events_fanout_url:
            return self.events_fanout_url
        if self.broker_url.startswith("redis"):
            return self.broker_url
        return None

    def service_url_map(self) -> dict[str, str]:
        if not self.service_urls:
            return {}
        pairs = (item.split("=", 1) for item in self.service_urls.split(",") if "=" in item)
        return {name.strip(): url.strip().rstrip("/") for name, url in pairs}


# Environment variables still read under an old name, each with the name replacing it.
DEPRECATED_ENVIRONMENT = {
    "FORGELINE_GIT_TLS_PORT": "FORGELINE_TLS_PORT",
    "FORGELINE_GIT_TLS_CERT_FILE": "FORGELINE_TLS_CERT_FILE",
    "FORGELINE_GIT_TLS_KEY_FILE": "FORGELINE_TLS_KEY_FILE",
}


def deprecated_names_in_use(environ: Mapping[str, str] | None = None) -> list[str]:
    """One warning line for each deprecated variable the environment sets."""
    names = {name.upper() for name in (os.environ if environ is None else environ)}
    return [
        f"{old} is deprecated; it still works, but set {new} instead"
        for old, new in DEPRECATED_ENVIRONMENT.items()
        if old in names
    ]


def is_loopback_host(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reset_settings_cache() -> None:
    get_settings.cache_clear()


def builds_root(settings: Settings) -> Path:
    """The directory holding each build's working directory (absolute, as every settings
    path is: Docker bind-mounts it by path)."""
    return settings.build_dir or settings.data_dir / "builds"
