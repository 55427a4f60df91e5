"""The build's directory on the host, and the engine's steps that work on it.

Layout of `<data_dir>/builds/<uuid>/` (the runner shows it to commands at its
`root_in_runner`):

    src/            the primary source (CODEBUILD_SRC_DIR)
    src_<id>/       each secondary source (CODEBUILD_SRC_DIR_<id>)
    plan/           the compiled phase scripts, the environment file, cache scripts
    state/          the shell session state and per-phase status files (plan.py)
    cache/          the build's cache while it runs (restored before INSTALL, saved after)
    home/           HOME for the host runner

Variables reach commands through `plan/env`, sourced before each phase script, rather than
through the container's environment: they are only known after the sources are fetched,
and the container already runs by then.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.orm import Session

from forgeline.codebuild import artifacts, cache, runtime_versions
from forgeline.codebuild.artifacts import ArtifactError
from forgeline.codebuild.buildspec import Artifacts
from forgeline.codebuild.plan import BuildPlan, shell_quote
from forgeline.codebuild.reports import files as report_files
from forgeline.core.blobstore import get_blob_store
from forgeline.core.db import utcnow
from forgeline.core.settings import Settings
from forgeline.s3 import buckets
from forgeline.s3.errors import S3Error

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CACHE_RESTORE_SCRIPT = "cache-restore.sh"
CACHE_SAVE_SCRIPT = "cache-save.sh"

__all__ = ["ArtifactError"]


class BuildFacts(Protocol):
    build_id: str
    arn: str
    uuid: str
    account_id: str
    region: str
    project_name: str
    build_number: int
    document: dict[str, Any]


class Log(Protocol):
    def note(self, text: str) -> None: ...


# ---------------------------------------------------------------- environment and plan


def base_environment(uses_image: bool, root: Path) -> dict[str, str]:
    """The environment the runner starts with; the image's own for containers."""
    if uses_image:
        return {}
    home = root / "home"
    home.mkdir(parents=True, exist_ok=True)
    return {"PATH": HOST_PATH, "HOME": str(home), "LANG": "C.UTF-8"}


def copy_source(source: Path, dest: Path) -> None:
    """Copy a source tree of this machine into the build (links as links, modes kept);
    sockets, pipes and devices are left out, as a copy of them would block or mean nothing."""

    def special(directory: str, names: list[str]) -> set[str]:
        skipped = set()
        for name in names:
            mode = os.lstat(os.path.join(directory, name)).st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode)):
                skipped.add(name)
        return skipped

    shutil.copytree(source, dest, symlinks=True, ignore=special, dirs_exist_ok=True)


def cap_cpus(cpus: float) -> float:
    return float(min(cpus, os.cpu_count() or 1))


def cap_memory(memory: int) -> int:
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return memory
    return int(min(memory, physical * 3 // 4))


def write_plan(root: Path, plan: BuildPlan, variables: dict[str, str]) -> None:
    plan_dir = root / "plan"
    plan_dir.mkdir(parents=True, exist_ok=True)
    for phase in plan.phases:
        (plan_dir / f"{phase.name}.sh").write_text(phase.script)
    lines = [
        f"export {name}={shell_quote(value)}"
        for name, value in variables.items()
        if _NAME.match(name)
    ]
    env_file = plan_dir / "env"
    env_file.write_text("\n".join(lines) + "\n")
    env_file.chmod(0o600)


def open_to_other_users(root: Path, *, first_time: bool) -> None:
    """Let a buildspec `run-as` user write the build's state (and, the first time, its
    sources and cache): the files belong to the user the runner started as."""
    parts = ("state", "src", "cache", "plan") if first_time else ("state",)
    for part in parts:
        top = root / part
        if not top.exists():
            continue
        for directory, _subdirs, files in os.walk(top):
            _add_mode(Path(directory), 0o777)
            for name in files:
                path = Path(directory) / name
                if not path.is_symlink():
                    _add_mode(path, 0o666 if part != "plan" else 0o644)


def _add_mode(path: Path, bits: int) -> None:
    try:
        path.chmod(path.stat().st_mode | bits)
    except OSError:
        pass  # a file the build made unchangeable stays as it is


def phase_argv(root_in_runner: str, shell: str, phase_name: str) -> list[str]:
    """`sh -c` that loads the build's variables, then runs the phase script in `shell`."""
    return [
        "sh",
        "-c",
        '. "$1" && exec "$2" "$3" "$4"',
        "forgeline-phase",
        f"{root_in_runner}/plan/env",
        shell,
        f"{root_in_runner}/plan/{phase_name}.sh",
        f"{root_in_runner}/state",
    ]


def runtime_problem(uses_image: bool, image: str, plan: BuildPlan) -> str | None:
    """Why IMAGE (the one the runner started) cannot provide the buildspec's
    runtime-versions (None if it can, or if the runner uses no image)."""
    if not plan.runtime_versions or not uses_image:
        return None
    requested = {name: [version] for name, version in plan.runtime_versions.items()}
    return runtime_versions.check_runtime_versions(image, requested)


# ---------------------------------------------------------------- cache


def _cache_config(facts: BuildFacts) -> dict[str, Any]:
    return dict(facts.document.get("cache") or {"type": "NO_CACHE"})


def _cache_paths(facts: BuildFacts, plan: BuildPlan | None) -> tuple[str, ...]:
    if plan is None or plan.cache is None or not cache.uses_path_cache(_cache_config(facts)):
        return ()
    return plan.cache.paths


def cache_restore(
    settings: Settings, facts: BuildFacts, plan: BuildPlan | None, root: Path
) -> str | None:
    """Bring the project's cache into `root/cache` and write the restore script; returns
    the script's name in plan/, or None when the build uses no cache."""
    paths = _cache_paths(facts, plan)
    if not paths:
        return None
    working = root / "cache"
    shutil.rmtree(working, ignore_errors=True)
    config = _cache_config(facts)
    if config.get("type") == "LOCAL":
        kept = cache.local_cache_dir(settings, facts.account_id, facts.region, facts.project_name)
        if kept.is_dir():
            # A rename, not a copy: the cache moves into the build and back afterwards.
            shutil.move(str(kept), str(working))
    elif config.get("type") == "S3":
        working.mkdir(parents=True, exist_ok=True)
        try:
            store = get_blob_store(settings)
            cache.download(store, _s3_cache_location(store, facts), working)
        except cache.CacheError:
            # An unreadable cache is a cache miss, not a failed build.
            shutil.rmtree(working, ignore_errors=True)
    working.mkdir(parents=True, exist_ok=True)
    script = cache.cache_restore_script(paths, "$CODEBUILD_CACHE_DIR")
    _write_cache_script(root, CACHE_RESTORE_SCRIPT, script)
    return CACHE_RESTORE_SCRIPT


def cache_save_script(
    settings: Settings, facts: BuildFacts, plan: BuildPlan | None, root: Path
) -> str | None:
    paths = _cache_paths(facts, plan)
    if not paths:
        return None
    (root / "cache").mkdir(parents=True, exist_ok=True)
    _write_cache_script(
        root, CACHE_SAVE_SCRIPT, cache.cache_save_script(paths, "$CODEBUILD_CACHE_DIR")
    )
    return CACHE_SAVE_SCRIPT


def cache_persist(
    settings: Settings, facts: BuildFacts, plan: BuildPlan | None, root: Path
) -> None:
    """Keep what the save script gathered: locally by rename, or as one S3 object."""
    if not _cache_paths(facts, plan):
        return
    working = root / "cache"
    config = _cache_config(facts)
    if config.get("type") == "LOCAL":
        kept = cache.local_cache_dir(settings, facts.account_id, facts.region, facts.project_name)
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(kept, ignore_errors=True)
        shutil.move(str(working), str(kept))
    elif config.get("type") == "S3":
        store = get_blob_store(settings)
        cache.upload(store, _s3_cache_location(store, facts), working)


def _s3_cache_location(store: Any, facts: BuildFacts) -> str:
    """The object InvalidateProjectCache deletes: one per project, account and region, in
    a bucket of the build's own account (never read from or written into another's)."""
    location = cache.s3_cache_location(
        _cache_config(facts), facts.account_id, facts.region, facts.project_name
    )
    bucket = location.split("/", 1)[0]
    try:
        buckets.owned_bucket(store, bucket, facts.account_id)
    except S3Error as exc:
        raise cache.CacheError(f"{exc.code}: {exc.message}: {bucket}") from None
    return location


def _write_cache_script(root: Path, name: str, body: str) -> None:
    # The cache directory is found from the build root, wherever the runner shows it.
    prelude = 'CODEBUILD_CACHE_DIR="$(cd "$(dirname "$0")/.." && pwd)/cache"\n'
    (root / "plan" / name).write_text(prelude + body)


# ---------------------------------------------------------------- reports and artifacts


def ingest_reports(
    settings: Settings,
    sessions: Callable[[], Session],
    facts: BuildFacts,
    plan: BuildPlan,
    root: Path,
    log: Log,
) -> list[str]:
    """Parse the buildspec's report files, then store them (the parse holds no DB lock)."""
    if not plan.reports:
        return []
    from forgeline.codebuild.reports.ingest import collect_build_reports, store_build_reports

    try:
        pending = collect_build_reports(plan.reports, root / "src")
        with sessions() as session, session.begin():
            return list(
                store_build_reports(
                    session,
                    facts.account_id,
                    facts.region,
                    facts.project_name,
                    facts.arn,
                    pending,
                    utcnow(),
                    log=log.note,
                    blob_store=get_blob_store(settings),
                )
            )
    except Exception as exc:  # a broken report must not fail the build's artifacts
        log.note(f"Could not upload the test reports: {exc}")
        return []


def copy_report_files(plan: BuildPlan, root: Path, target: Path, log: Log) -> None:
    """Each report group's files into `target/<group>/`, paths kept below the base
    directory (the build directory is gone once the run ends; `forgeline build-local`)."""
    for name, group in plan.reports.items():
        try:
            base = report_files.resolve_base(root / "src", group.base_directory)
            found = report_files.collect(root / "src", group.base_directory, group.files)
        except report_files.ReportFilesError as exc:
            log.note(f"Report files of {name} not copied: {exc}")
            continue
        for path in found:
            copy = target / name / path.relative_to(base)
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, copy)
        if found:
            log.note(f"Copied {len(found)} report files of {name} to {target / name}")


def upload_artifacts(
    settings: Settings, facts: BuildFacts, plan: BuildPlan, root: Path, env: dict[str, str]
) -> dict[str, Any]:
    """Store the primary and secondary artifacts; returns the build's result fields."""
    results: dict[str, Any] = {}
    store = get_blob_store(settings)
    primary = facts.document.get("artifacts") or {"type": "NO_ARTIFACTS"}
    spec = plan.artifacts
    if primary.get("type", "NO_ARTIFACTS") != "NO_ARTIFACTS":
        if spec is None:
            raise ArtifactError("no artifact files were specified in the buildspec")
        if spec.files:
            results["artifacts"] = _store(store, facts, primary, spec, root, env)
    secondary_outputs = []
    secondary_specs = spec.secondary_artifacts if spec is not None else {}
    for config in facts.document.get("secondaryArtifacts") or []:
        identifier = config.get("artifactIdentifier") or ""
        secondary = secondary_specs.get(identifier)
        if secondary is None:
            raise ArtifactError(
                f"no secondary artifact definition found for identifier {identifier}"
            )
        secondary_outputs.append(_store(store, facts, config, secondary, root, env))
    if secondary_outputs:
        results["secondaryArtifacts"] = secondary_outputs
    return results


def _store(
    store: Any,
    facts: BuildFacts,
    config: dict[str, Any],
    spec: Artifacts,
    root: Path,
    env: dict[str, str],
) -> dict[str, Any]:
    """One artifact: the buildspec's files, stored where the project's settings say."""
    _check_bucket(store, facts, config)
    stored = artifacts.store_artifacts(
        store,
        artifacts.select_files(root / "src", spec),
        config,
        facts.build_id,
        facts.build_number,
        spec.name,
        env=env,
        s3_prefix=spec.s3_prefix,
    )
    return stored.as_build_artifacts()


def _check_bucket(store: Any, facts: BuildFacts, config: dict[str, Any]) -> None:
    """S3 artifacts go to an existing bucket of the build's account, as on AWS."""
    if config.get("type") != "S3":
        return
    name = (config.get("location") or "").strip("/")
    try:
        buckets.owned_bucket(store, name, facts.account_id)
    except S3Error as exc:
        raise ArtifactError(f"{exc.code}: {exc.message}: {name}") from None


# ---------------------------------------------------------------- exported variables


def exported_variables(root: Path, plan: BuildPlan, env: dict[str, str]) -> list[dict[str, str]]:
    """Each exported-variables name with its value when the build's shell session ended."""
    session = _session_values(root / "state" / "session")
    return [
        {"name": name, "value": session.get(name, env.get(name, ""))}
        for name in plan.exported_variables
    ]


def _session_values(path: Path) -> dict[str, str]:
    """NAME=value assignments from the sourceable state file plan.py's scripts write."""
    if not path.exists():
        return {}
    values: dict[str, str] = {}
    try:
        tokens = shlex.split(path.read_text(errors="replace"), posix=True)
    except ValueError:
        return {}
    for token in tokens:
        name, sep, value = token.partition("=")
        if sep and _NAME.match(name):
            values[name] = value
    return values
