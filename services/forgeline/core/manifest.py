"""What a service tells the core about itself: one declared entry per service.

The core never imports a service package. It reads the manifests, listed once in
`forgeline/manifests.py`, for the APIs a process serves, the tables, the worker's task
modules, the routes beside the AWS API, the hooks services subscribe to, and what to
start and stop beside a worker. Code is named by "module:attribute" references, resolved
when used, so reading a manifest loads none of its service.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from starlette.types import Receive, Scope, Send

if TYPE_CHECKING:
    from forgeline.core.settings import Settings


@dataclasses.dataclass(frozen=True)
class ApiSpec:
    model_name: str  # botocore service name
    app: str  # the Forgeline service app that serves it: repo, build, deploy, pipeline
    title: str
    # Error code for a malformed member when the model names no more specific one.
    validation_error: str
    # Error code for a forged or stale pagination token.
    invalid_token_error: str
    # The package implementing it, `forgeline.<package>` (named after the API; dotted for
    # one inside a service's package): its `generated/` holds the stubs, its `api.py` the
    # provider.
    package: str
    # For an API botocore has no model of (the CodeDeploy agents' command service): the
    # package's folder holding our own model in botocore's layout,
    # `<folder>/<model_name>/<api version>/service-2.json`.
    model_dir: str | None = None

    @property
    def package_path(self) -> str:
        """The package's folder under `forgeline/`."""
        return self.package.replace(".", "/")


@dataclasses.dataclass(frozen=True)
class Hook:
    """A list of listeners a service calls at a point of its own (inside its transaction).

    Its full name is "<manifest name>.<name>"; `listeners` references the list."""

    name: str
    listeners: str


@dataclasses.dataclass(frozen=True)
class Subscription:
    hook: str  # a hook's full name, e.g. "codecommit.ref_changes"
    listener: str  # "module:callable"


@dataclasses.dataclass(frozen=True)
class ServiceManifest:
    name: str  # the service package, named after its API: codecommit, codebuild, ...
    service: str  # the service app (`--service`, docker-compose): repo|build|deploy|pipeline
    apis: tuple[ApiSpec, ...] = ()
    # APIs served beside the main one (CodeBuild's logs, parameters, secrets); listed
    # after every service's own APIs.
    supporting_apis: tuple[ApiSpec, ...] = ()
    table_modules: tuple[str, ...] = ()
    task_modules: tuple[str, ...] = ()
    # "module:mount", called as mount(app, settings): routes besides the AWS API (git).
    http_mounts: tuple[str, ...] = ()
    # "module:factory", called as factory(settings): a `ClaimingEndpoint` (S3).
    endpoints: tuple[str, ...] = ()
    hooks: tuple[Hook, ...] = ()
    subscriptions: tuple[Subscription, ...] = ()
    # Run where jobs run in this process (embedded worker): after it starts, called with
    # the settings; before it stops, called without arguments.
    on_worker_start: tuple[str, ...] = ()
    on_worker_stop: tuple[str, ...] = ()
    # Called without arguments as soon as a server process begins to stop, before its
    # requests in flight drain: what waits inside a request (long polls) answers now.
    on_server_stopping: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for spec in self.apis + self.supporting_apis:
            if spec.app != self.service:
                raise ValueError(f"{self.name}: {spec.model_name} is served by {spec.app!r}")

    @property
    def all_apis(self) -> tuple[ApiSpec, ...]:
        return self.apis + self.supporting_apis


class ClaimingEndpoint(Protocol):
    """An ASGI endpoint that recognises its own requests among those to any path."""

    async def claims(self, scope: Scope, routes: list[Any]) -> bool: ...

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None: ...


@functools.cache
def service_manifests() -> tuple[ServiceManifest, ...]:
    # The one place the core learns which services exist; imported late because the
    # manifests themselves import this module.
    from forgeline.manifests import MANIFESTS

    return tuple(MANIFESTS)


def serving(apps: Iterable[str]) -> list[ServiceManifest]:
    wanted = set(apps)
    return [manifest for manifest in service_manifests() if manifest.service in wanted]


def resolve(reference: str) -> Any:
    """The object a "module:attribute" reference names."""
    module_name, _, attribute = reference.partition(":")
    if not attribute:
        raise ValueError(f"{reference!r} is not a module:attribute reference")
    return getattr(importlib.import_module(module_name), attribute)


def table_modules() -> list[str]:
    return [name for manifest in service_manifests() for name in manifest.table_modules]


def task_modules() -> list[str]:
    return [name for manifest in service_manifests() for name in manifest.task_modules]


def hook_lists(manifests: Sequence[ServiceManifest]) -> dict[str, str]:
    """Full hook name -> reference to its listener list."""
    return {
        f"{manifest.name}.{hook.name}": hook.listeners
        for manifest in manifests
        for hook in manifest.hooks
    }


def subscribe_listeners(manifests: Sequence[ServiceManifest] | None = None) -> None:
    """Add every declared listener to its hook's list, once (safe to call again).

    Called where a process starts (server start-up, Celery worker start-up): every
    process that may change a repository or end a build has the same listeners."""
    manifests = service_manifests() if manifests is None else manifests
    lists = hook_lists(manifests)
    for manifest in manifests:
        for subscription in manifest.subscriptions:
            if subscription.hook not in lists:
                raise ValueError(f"{manifest.name} subscribes to unknown hook {subscription.hook}")
            listeners: list[Callable[..., Any]] = resolve(lists[subscription.hook])
            listener = resolve(subscription.listener)
            if listener not in listeners:
                listeners.append(listener)


def run_worker_start_hooks(settings: Settings) -> None:
    for manifest in service_manifests():
        for reference in manifest.on_worker_start:
            resolve(reference)(settings)


def run_worker_stop_hooks() -> None:
    for manifest in service_manifests():
        for reference in manifest.on_worker_stop:
            resolve(reference)()


def run_server_stopping_hooks() -> None:
    for manifest in service_manifests():
        for reference in manifest.on_server_stopping:
            resolve(reference)()
