"""Batch builds, the pure part: reading a buildspec's `batch:` section into build tasks,
and deciding what a running batch does next.

A batch is one of three kinds (AWS "Batch build buildspec reference"):

- `build-list`: independent builds, all started at once;
- `build-graph`: builds with `depend-on`; a build starts once its dependencies succeeded;
- `build-matrix`: the product of `dynamic` buildspecs, images, compute types and variable
  values, each combination one build, with `static` settings shared by all.

`fast-fail: true` stops the running builds and starts no more once one build fails
(unless that build has `ignore-failure`). Nothing here does I/O: the coordinator
(services/forgeline/codebuild/batch_coordinator.py) stores the groups and acts on `plan_next`.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

BUILD_LIST = "build-list"
BUILD_GRAPH = "build-graph"
BUILD_MATRIX = "build-matrix"
KINDS = (BUILD_LIST, BUILD_GRAPH, BUILD_MATRIX)

# A task identifier becomes part of environment variables and build summaries: AWS allows
# letters, digits and underscores.
_IDENTIFIER = re.compile(r"[A-Za-z0-9_]{1,127}")
_TASK_KEYS = frozenset({"identifier", "buildspec", "debug-session", "env", "ignore-failure"})
_GRAPH_TASK_KEYS = _TASK_KEYS | {"depend-on"}
_ENV_KEYS = frozenset({"compute-type", "fleet", "image", "privileged-mode", "type", "variables"})
_MATRIX_STATIC_KEYS = frozenset({"ignore-failure", "env", "debug-session"})
_MATRIX_DYNAMIC_KEYS = frozenset({"buildspec", "env"})
_MATRIX_DYNAMIC_ENV_KEYS = frozenset({"compute-type", "image", "variables"})
_TOP_KEYS = frozenset({"fast-fail", *KINDS, "build-fanout"})

# Group states the coordinator keeps beside the build statuses.
PENDING = "PENDING"  # waiting for its dependencies (or for the batch to start)
SKIPPED = "SKIPPED"  # never started: a dependency failed, or the batch failed fast
IN_PROGRESS = "IN_PROGRESS"
SUCCEEDED = "SUCCEEDED"
STOPPED = "STOPPED"
FAILED = "FAILED"
TIMED_OUT = "TIMED_OUT"
FINAL_BUILD_STATUSES = frozenset({"SUCCEEDED", "FAILED", "FAULT", "TIMED_OUT", "STOPPED"})


class BatchspecError(ValueError):
    """An unusable `batch:` section; the message says what to fix."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class TaskEnv:
    """A task's environment overrides (None: keep the batch's setting)."""

    image: str | None = None
    compute_type: str | None = None
    environment_type: str | None = None
    privileged_mode: bool | None = None
    variables: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchTask:
    identifier: str
    buildspec: str | None = None
    env: TaskEnv = field(default_factory=TaskEnv)
    depends_on: tuple[str, ...] = ()
    ignore_failure: bool = False
    debug_session: bool | None = None


@dataclass(frozen=True)
class Batchspec:
    kind: str
    tasks: tuple[BatchTask, ...]
    fast_fail: bool = False


# -- parsing --------------------------------------------------------------------------
def parse_batchspec(raw: Any) -> Batchspec:
    """The batch described by a buildspec's `batch:` value (as `Buildspec.batch` holds it)."""
    if raw is None:
        raise BatchspecError(
            "The buildspec has no batch section: a batch build needs batch/build-list, "
            "batch/build-graph or batch/build-matrix."
        )
    section = _mapping(raw, "batch")
    _check_keys(section, _TOP_KEYS, "batch")
    if "build-fanout" in section:
        raise BatchspecError("batch/build-fanout is not supported by Forgeline.")
    kinds = [kind for kind in KINDS if kind in section]
    if not kinds:
        raise BatchspecError(
            "The batch section must contain one of build-list, build-graph or build-matrix."
        )
    if len(kinds) > 1:
        raise BatchspecError(
            f"The batch section may contain only one batch type; it has {', '.join(kinds)}."
        )
    kind = kinds[0]
    fast_fail = _boolean(section.get("fast-fail", False), "batch/fast-fail")
    if kind == BUILD_MATRIX:
        tasks = _matrix_tasks(section[kind])
    else:
        tasks = _listed_tasks(section[kind], kind)
    if kind == BUILD_GRAPH:
        check_graph(tasks)
    return Batchspec(kind=kind, tasks=tuple(tasks), fast_fail=fast_fail)


def _listed_tasks(raw: Any, kind: str) -> list[BatchTask]:
    if not isinstance(raw, list) or not raw:
        raise BatchspecError(f"batch/{kind} must be a non-empty list of build tasks.")
    allowed = _GRAPH_TASK_KEYS if kind == BUILD_GRAPH else _TASK_KEYS
    tasks: list[BatchTask] = []
    seen: set[str] = set()
    for index, item in enumerate(raw, start=1):
        where = f"batch/{kind} item {index}"
        entry = _mapping(item, where)
        _check_keys(entry, allowed, where)
        identifier = entry.get("identifier")
        if not isinstance(identifier, str) or not _IDENTIFIER.fullmatch(identifier):
            raise BatchspecError(
                f"{where}: identifier is required and must be 1-127 letters, digits or "
                f"underscores (got {identifier!r})."
            )
        if identifier in seen:
            raise BatchspecError(f"batch/{kind}: identifier {identifier!r} is used twice.")
        seen.add(identifier)
        where = f"batch/{kind}/{identifier}"
        depends_on: tuple[str, ...] = ()
        if "depend-on" in entry:
            depends_on = tuple(_strings(entry["depend-on"], f"{where}/depend-on"))
        tasks.append(
            BatchTask(
                identifier=identifier,
                buildspec=_optional_string(entry.get("buildspec"), f"{where}/buildspec"),
                env=_task_env(entry.get("env"), f"{where}/env"),
                depends_on=depends_on,
                ignore_failure=_boolean(entry.get("ignore-failure", False), where),
                debug_session=_optional_boolean(entry.get("debug-session"), where),
            )
        )
    return tasks


def _task_env(raw: Any, where: str) -> TaskEnv:
    if raw is None:
        return TaskEnv()
    env = _mapping(raw, where)
    _check_keys(env, _ENV_KEYS, where)
    if "fleet" in env:
        raise BatchspecError(f"{where}/fleet: reserved capacity fleets are not supported.")
    privileged = env.get("privileged-mode")
    return TaskEnv(
        image=_optional_string(env.get("image"), f"{where}/image"),
        compute_type=_optional_string(env.get("compute-type"), f"{where}/compute-type"),
        environment_type=_optional_string(env.get("type"), f"{where}/type"),
        privileged_mode=None if privileged is None else _boolean(privileged, where),
        variables=_variables(env.get("variables"), f"{where}/variables"),
    )


def _matrix_tasks(raw: Any) -> list[BatchTask]:
    matrix = _mapping(raw, "batch/build-matrix")
    _check_keys(matrix, frozenset({"static", "dynamic"}), "batch/build-matrix")
    static = _mapping(matrix.get("static") or {}, "batch/build-matrix/static")
    _check_keys(static, _MATRIX_STATIC_KEYS, "batch/build-matrix/static")
    shared_env = _task_env(static.get("env"), "batch/build-matrix/static/env")
    ignore_failure = _boolean(static.get("ignore-failure", False), "batch/build-matrix/static")
    debug_session = _optional_boolean(static.get("debug-session"), "batch/build-matrix/static")

    if "dynamic" not in matrix:
        raise BatchspecError("batch/build-matrix/dynamic is required.")
    dynamic = _mapping(matrix["dynamic"], "batch/build-matrix/dynamic")
    _check_keys(dynamic, _MATRIX_DYNAMIC_KEYS, "batch/build-matrix/dynamic")
    where = "batch/build-matrix/dynamic"
    buildspecs: list[str | None] = [None]
    if "buildspec" in dynamic:
        buildspecs = list(_strings(dynamic["buildspec"], f"{where}/buildspec"))
    env = _mapping(dynamic.get("env") or {}, f"{where}/env")
    _check_keys(env, _MATRIX_DYNAMIC_ENV_KEYS, f"{where}/env")
    images: list[str | None] = [None]
    if "image" in env:
        images = list(_strings(env["image"], f"{where}/env/image"))
    compute_types: list[str | None] = [None]
    if "compute-type" in env:
        compute_types = list(_strings(env["compute-type"], f"{where}/env/compute-type"))
    variable_axes: list[list[tuple[str, str]]] = []
    for name, values in _mapping(env.get("variables") or {}, f"{where}/env/variables").items():
        listed = values if isinstance(values, list) else [values]
        variable_axes.append(
            [(str(name), _scalar(value, f"{where}/env/variables/{name}")) for value in listed]
        )
    if buildspecs == [None] and images == [None] and compute_types == [None] and not variable_axes:
        raise BatchspecError(
            f"{where} must vary something: buildspec, env/image, env/compute-type or env/variables."
        )

    tasks = []
    axes = itertools.product(buildspecs, images, compute_types)
    combinations = itertools.product(axes, itertools.product(*variable_axes))
    for number, ((buildspec, image, compute_type), pairs) in enumerate(combinations, start=1):
        variables = dict(shared_env.variables)
        variables.update(dict(pairs))
        tasks.append(
            BatchTask(
                identifier=_matrix_identifier(number, buildspec, image, compute_type, pairs),
                buildspec=buildspec or None,
                env=TaskEnv(
                    image=image or shared_env.image,
                    compute_type=compute_type or shared_env.compute_type,
                    environment_type=shared_env.environment_type,
                    privileged_mode=shared_env.privileged_mode,
                    variables=variables,
                ),
                ignore_failure=ignore_failure,
                debug_session=debug_session,
            )
        )
    return tasks


def _matrix_identifier(
    number: int,
    buildspec: str | None,
    image: str | None,
    compute_type: str | None,
    pairs: Sequence[tuple[str, str]],
) -> str:
    """A readable, unique identifier for one matrix combination.

    The running number keeps it unique after the values are squeezed into the
    identifier alphabet; the values make it recognisable in BatchGetBuildBatches.
    """
    parts = [value for value in (buildspec, image, compute_type) if value]
    parts.extend(value for _, value in pairs)
    readable = re.sub(r"[^A-Za-z0-9_]+", "_", "_".join(parts)).strip("_")
    return f"build{number}_{readable}"[:127].rstrip("_") if readable else f"build{number}"


def check_graph(tasks: Sequence[BatchTask]) -> None:
    """Every dependency names a task of the batch, and the graph has no cycle."""
    known = {task.identifier for task in tasks}
    for task in tasks:
        for dependency in task.depends_on:
            if dependency not in known:
                raise BatchspecError(
                    f"batch/build-graph/{task.identifier}/depend-on names {dependency!r}, "
                    "which is not a build task of this batch."
                )
            if dependency == task.identifier:
                raise BatchspecError(f"batch/build-graph/{task.identifier} depends on itself.")
    dependencies = {task.identifier: task.depends_on for task in tasks}
    state: dict[str, int] = {}  # 1: being visited, 2: done

    def visit(identifier: str, path: list[str]) -> None:
        if state.get(identifier) == 2:
            return
        if state.get(identifier) == 1:
            cycle = path[path.index(identifier) :] + [identifier]
            raise BatchspecError(f"batch/build-graph has a dependency cycle: {' -> '.join(cycle)}.")
        state[identifier] = 1
        for dependency in dependencies[identifier]:
            visit(dependency, [*path, identifier])
        state[identifier] = 2

    for task in tasks:
        visit(task.identifier, [])


# -- small readers --------------------------------------------------------------------
def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise BatchspecError(f"{where} must be a mapping.")
    return value


def _check_keys(value: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    unknown = sorted(str(key) for key in value if key not in allowed)
    if unknown:
        raise BatchspecError(
            f"{where}: unknown key {unknown[0]!r}; expected one of {', '.join(sorted(allowed))}."
        )


def _boolean(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no"):
        return value.lower() in ("true", "yes")
    raise BatchspecError(f"{where}: expected true or false, got {value!r}.")


def _optional_boolean(value: Any, where: str) -> bool | None:
    return None if value is None else _boolean(value, where)


def _scalar(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise BatchspecError(f"{where}: expected a string, got {type(value).__name__}.")


def _optional_string(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise BatchspecError(f"{where}: expected a non-empty string.")
    return value


def _strings(value: Any, where: str) -> list[str]:
    listed = value if isinstance(value, list) else [value]
    if not listed:
        raise BatchspecError(f"{where}: expected at least one value.")
    return [_scalar(item, where) for item in listed]


def _variables(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    return {
        str(name): _scalar(item, f"{where}/{name}") for name, item in _mapping(value, where).items()
    }


# -- restrictions ---------------------------------------------------------------------
def check_restrictions(
    spec: Batchspec, restrictions: Mapping[str, Any] | None, default_compute_type: str
) -> None:
    """Project buildBatchConfig/restrictions: how many builds, which compute types."""
    if not restrictions:
        return
    maximum = restrictions.get("maximumBuildsAllowed")
    if maximum is not None and len(spec.tasks) > maximum:
        raise BatchspecError(
            f"The batch has {len(spec.tasks)} builds; the project's batch configuration "
            f"allows at most {maximum} (restrictions/maximumBuildsAllowed)."
        )
    allowed = restrictions.get("computeTypesAllowed")
    if allowed:
        for task in spec.tasks:
            compute_type = task.env.compute_type or default_compute_type
            if compute_type not in allowed:
                raise BatchspecError(
                    f"Build {task.identifier} uses compute type {compute_type}, which the "
                    "project's batch configuration does not allow "
                    f"(restrictions/computeTypesAllowed: {', '.join(allowed)})."
                )


# -- scheduling -----------------------------------------------------------------------
@dataclass(frozen=True)
class GroupState:
    identifier: str
    status: str  # PENDING, SKIPPED, IN_PROGRESS or a final build status
    depends_on: tuple[str, ...] = ()
    ignore_failure: bool = False


@dataclass(frozen=True)
class NextStep:
    start: tuple[str, ...] = ()
    stop: tuple[str, ...] = ()
    skip: tuple[str, ...] = ()
    # Set once every group is final: the batch's own status.
    batch_status: str | None = None


def _done(status: str) -> bool:
    return status == SKIPPED or status in FINAL_BUILD_STATUSES


def _blocking_failure(group: GroupState) -> bool:
    """A group that ended badly and whose failure counts against the batch."""
    if group.status == SKIPPED:
        return True
    return (
        group.status in FINAL_BUILD_STATUSES
        and group.status != SUCCEEDED
        and not (group.ignore_failure)
    )


def _satisfied(group: GroupState) -> bool:
    return group.status == SUCCEEDED or (
        group.ignore_failure and group.status in FINAL_BUILD_STATUSES
    )


def plan_next(
    groups: Sequence[GroupState],
    *,
    fast_fail: bool,
    stop_requested: bool = False,
    timed_out: bool = False,
) -> NextStep:
    """What the batch does now, given every group's state.

    Pending groups start once all their dependencies are satisfied and are skipped once
    one of them can no longer be; with fast-fail one blocking failure, and a stop request
    or the batch timeout at once, stops every running build and skips every pending one.
    When nothing is left to run, `batch_status` says how the batch ended.
    """
    by_id = {group.identifier: group for group in groups}
    failing = any(_blocking_failure(group) for group in groups)
    halt = stop_requested or timed_out or (fast_fail and failing)
    start: list[str] = []
    stop: list[str] = []
    skip: list[str] = []
    for group in groups:
        if group.status == IN_PROGRESS and halt:
            stop.append(group.identifier)
        elif group.status == PENDING:
            dependencies = [by_id[name] for name in group.depends_on if name in by_id]
            if halt or any(_done(d.status) and not _satisfied(d) for d in dependencies):
                skip.append(group.identifier)
            elif all(_satisfied(d) for d in dependencies):
                start.append(group.identifier)
    finished = not start and all(
        _done(group.status) or group.identifier in skip for group in groups
    )
    batch_status = None
    if finished:
        if stop_requested:
            batch_status = STOPPED
        elif timed_out:
            batch_status = TIMED_OUT
        elif failing or skip:
            batch_status = FAILED
        else:
            batch_status = SUCCEEDED
    return NextStep(
        start=tuple(start), stop=tuple(stop), skip=tuple(skip), batch_status=batch_status
    )
