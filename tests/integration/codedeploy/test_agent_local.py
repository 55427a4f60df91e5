"""The agent's executor and `forgeline deploy-local` running real bundles with real scripts
on disk: files installed with their modes and owners, hooks in order with AWS's
environment, the previous revision's scripts and files, file-exists behaviours, every
script error code, and unsafe archives refused."""

from __future__ import annotations

import io
import os
import pwd
import stat
import subprocess
import tarfile
import tempfile
import textwrap
import time
import zipfile
from pathlib import Path

import pytest

from forgeline.codedeploy.agent import events
from forgeline.codedeploy.agent.command_executor import CommandExecutor
from forgeline.codedeploy.agent.layout import Layout
from forgeline.codedeploy.agent.results import CommandResult, ErrorCode
from forgeline.codedeploy.agent.spec import DeploymentSpec, LocalRevision
from tests.support.paths import REPO_ROOT
from tests.support.server import FORGELINE

pytestmark = pytest.mark.no_db

EVENT_LOG_SCRIPT = """\
#!/bin/sh
echo "$LIFECYCLE_EVENT|$DEPLOYMENT_ID|$APPLICATION_NAME|$DEPLOYMENT_GROUP_NAME|$DEPLOYMENT_GROUP_ID|$BUNDLE_ETAG" >> "{record}"
"""


# --- bundles and deployments -------------------------------------------------------------


def write_tree(root: Path, files: dict[str, str], modes: dict[str, int] | None = None) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod((modes or {}).get(name, 0o755 if name.endswith(".sh") else 0o644))
    return root


def zip_tree(tree: Path, target: Path) -> Path:
    with zipfile.ZipFile(target, "w") as archive:
        for path in sorted(tree.rglob("*")):
            if path.is_file():
                info = zipfile.ZipInfo(str(path.relative_to(tree)))
                info.create_system = 3
                info.external_attr = (stat.S_IFREG | stat.S_IMODE(path.stat().st_mode)) << 16
                archive.writestr(info, path.read_bytes())
    return target


def tar_tree(tree: Path, target: Path, prefix: str = "") -> Path:
    with tarfile.open(target, "w:gz") as archive:
        for path in sorted(tree.rglob("*")):
            archive.add(path, arcname=prefix + str(path.relative_to(tree)), recursive=False)
    return target


class Host:
    """One agent root directory and the deployments run on it."""

    def __init__(self, root: Path, group: str = "group-1") -> None:
        self.layout = Layout(root)
        self.executor = CommandExecutor(self.layout)
        self.group = group
        self.count = 0

    def spec(self, location: Path, bundle_type: str, **overrides: object) -> DeploymentSpec:
        self.count += 1
        fields: dict[str, object] = dict(
            deployment_id=f"d-TEST{self.count:05d}",
            deployment_group_id=self.group,
            deployment_group_name="web-fleet",
            application_name="shop",
            revision=LocalRevision(str(location), bundle_type),
        )
        fields.update(overrides)
        return DeploymentSpec(**fields)  # type: ignore[arg-type]

    def deploy(
        self, spec: DeploymentSpec, steps: tuple[str, ...] = events.LOCAL_DEFAULT_EVENTS
    ) -> dict[str, CommandResult]:
        results = {}
        for step in steps:
            results[step] = result = self.executor.execute(step, spec)
            if not result.succeeded:
                break
        return results


def appspec(destination: Path, hooks: str = "", extra: str = "") -> str:
    return (
        textwrap.dedent(
            f"""\
            version: 0.0
            os: linux
            files:
              - source: app
                destination: {destination}
            """
        )
        + extra
        + hooks
    )


@pytest.fixture
def host(tmp_path: Path) -> Host:
    return Host(tmp_path / "agent-root")


# --- a whole deployment ------------------------------------------------------------------


def test_files_permissions_and_hooks_in_order_with_their_environment(tmp_path, host):
    www = tmp_path / "www"
    record = tmp_path / "hooks.txt"
    hook_events = ("BeforeInstall", "AfterInstall", "ApplicationStart", "ValidateService")
    hooks = "hooks:\n" + "".join(
        f"  {event}:\n    - location: scripts/record.sh\n      timeout: 30\n"
        for event in hook_events
    )
    permissions = textwrap.dedent(
        f"""\
        permissions:
          - object: {www}
            pattern: "*.sh"
            mode: 750
            owner: nobody
            type: [file]
          - object: {www}/config
            mode: 700
            type: [directory]
          - object: {www}/config/secret.txt
            mode: 600
        """
    )
    tree = write_tree(
        tmp_path / "bundle",
        {
            "appspec.yml": appspec(www, hooks, permissions),
            "scripts/record.sh": EVENT_LOG_SCRIPT.format(record=record),
            "app/index.html": "<h1>v1</h1>",
            "app/start.sh": "#!/bin/sh\necho start\n",
            "app/config/secret.txt": "s3cret",
            "app/config/nested/deep.txt": "deep",
        },
    )
    spec = host.spec(zip_tree(tree, tmp_path / "bundle.zip"), "zip")

    results = host.deploy(spec)

    assert all(result.succeeded for result in results.values()), results
    assert (www / "index.html").read_text() == "<h1>v1</h1>"
    assert stat.S_IMODE((www / "start.sh").stat().st_mode) == 0o750
    assert (www / "start.sh").stat().st_uid == pwd.getpwnam("nobody").pw_uid
    assert stat.S_IMODE((www / "index.html").stat().st_mode) == 0o644  # pattern *.sh only
    assert stat.S_IMODE((www / "config" / "nested").stat().st_mode) == 0o700
    assert stat.S_IMODE((www / "config" / "secret.txt").stat().st_mode) == 0o600
    lines = record.read_text().splitlines()
    assert [line.split("|")[0] for line in lines] == list(hook_events)
    assert set(line.split("|", 1)[1] for line in lines) == {
        f"{spec.deployment_id}|shop|web-fleet|group-1|"
    }
    log_file = host.layout.script_log(host.layout.deployment_dir(spec))
    assert "LifecycleEvent - ValidateService" in log_file.read_text()


def test_permission_patterns_and_exceptions_apply_to_what_was_installed_only(tmp_path, host):
    www = tmp_path / "www"
    www.mkdir()
    (www / "theirs.conf").write_text("not ours")
    (www / "theirs.conf").chmod(0o644)
    permissions = textwrap.dedent(
        f"""\
        permissions:
          - object: {www}
            pattern: "*.conf"
            except: [keep.conf]
            mode: 640
            type: [file]
        """
    )
    tree = write_tree(
        tmp_path / "b",
        {
            "appspec.yml": appspec(www, extra=permissions),
            "app/app.conf": "a",
            "app/keep.conf": "k",
            "app/sub/deep.conf": "d",
        },
    )
    results = host.deploy(host.spec(tree, "directory"), ("DownloadBundle", "Install"))
    assert results["Install"].succeeded, results

    def mode(name: str) -> int:
        return stat.S_IMODE((www / name).stat().st_mode)

    assert mode("app.conf") == 0o640
    assert mode("keep.conf") == 0o644  # excepted
    assert mode("sub/deep.conf") == 0o644  # a pattern other than ** takes direct children only
    assert mode("theirs.conf") == 0o644  # not installed by the deployment


def test_a_pattern_on_a_file_object_is_refused(tmp_path, host):
    www = tmp_path / "www"
    permissions = f"permissions:\n  - object: {www}/index.html\n    pattern: '*.html'\n"
    tree = write_tree(
        tmp_path / "b", {"appspec.yml": appspec(www, extra=permissions), "app/index.html": "x"}
    )
    results = host.deploy(host.spec(tree, "directory"), ("DownloadBundle", "Install"))
    assert results["Install"].error_code == ErrorCode.UNKNOWN_ERROR
    assert "may not have a pattern" in results["Install"].message
    assert not www.exists()  # refused while planning: nothing was written


def test_hooks_get_the_s3_bundle_variables(tmp_path, host):
    from forgeline.codedeploy.agent.spec import S3Revision

    record = tmp_path / "env.txt"
    tree = write_tree(
        tmp_path / "bundle",
        {
            "appspec.yml": appspec(
                tmp_path / "www",
                "hooks:\n  BeforeInstall:\n    - location: env.sh\n",
            ),
            "env.sh": f'#!/bin/sh\necho "$BUNDLE_BUCKET $BUNDLE_KEY $BUNDLE_ETAG $BUNDLE_VERSION" > {record}\n',
            "app/a.txt": "a",
        },
    )
    bundle = zip_tree(tree, tmp_path / "bundle.zip")

    def fetch(revision: S3Revision, target: Path) -> None:
        target.write_bytes(bundle.read_bytes())

    host.executor.s3_fetcher = fetch
    spec = host.spec(
        bundle, "zip", revision=S3Revision("releases", "shop/v1.zip", "zip", "v7", '"abc123"')
    )
    results = host.deploy(spec, ("DownloadBundle", "BeforeInstall"))
    assert results["BeforeInstall"].succeeded, results
    assert record.read_text().split() == ["releases", "shop/v1.zip", "abc123", "v7"]


def test_a_tar_bundle_with_a_leading_directory_is_taken_from_that_directory(tmp_path, host):
    www = tmp_path / "www"
    tree = write_tree(
        tmp_path / "bundle",
        {"appspec.yml": appspec(www), "app/index.html": "nested"},
    )
    spec = host.spec(tar_tree(tree, tmp_path / "b.tgz", prefix="shop-1.0/"), "tgz")
    results = host.deploy(spec)
    assert all(r.succeeded for r in results.values()), results
    assert (www / "index.html").read_text() == "nested"


# --- the previous revision -----------------------------------------------------------------


def revision(
    tmp_path: Path, name: str, www: Path, files: dict[str, str], stop_marker: Path
) -> Path:
    hooks = "hooks:\n  ApplicationStop:\n    - location: stop.sh\n"
    return write_tree(
        tmp_path / name,
        {
            "appspec.yml": appspec(www, hooks),
            "stop.sh": f"#!/bin/sh\necho 'stopped by {name}' >> {stop_marker}\n",
            **{f"app/{path}": text for path, text in files.items()},
        },
    )


def test_application_stop_runs_the_last_successful_revision_and_install_removes_its_files(
    tmp_path, host
):
    www, stops = tmp_path / "www", tmp_path / "stops.txt"
    first = revision(tmp_path, "v1", www, {"old.txt": "1", "lib/only-v1.txt": "1"}, stops)
    second = revision(tmp_path, "v2", www, {"new.txt": "2"}, stops)

    results = host.deploy(host.spec(first, "directory"))
    assert results["ApplicationStop"].succeeded  # nothing to stop on a first deployment
    assert not stops.exists()
    (www / "lib" / "someone-elses.txt").write_text("kept")  # not the deployment's
    results = host.deploy(host.spec(second, "directory"))

    assert all(r.succeeded for r in results.values()), results
    assert stops.read_text() == "stopped by v1\n"
    assert sorted(p.relative_to(www).as_posix() for p in www.rglob("*")) == [
        "lib",
        "lib/someone-elses.txt",
        "new.txt",
    ]


def test_only_the_newest_revisions_are_kept_but_never_the_last_successful_one(tmp_path):
    host = Host(tmp_path / "root")
    host.executor.max_revisions = 2
    www = tmp_path / "www"
    tree = write_tree(tmp_path / "b", {"appspec.yml": appspec(www), "app/x": "x"})
    specs = [host.spec(tree, "directory") for _ in range(4)]
    for spec in specs:
        assert host.deploy(spec, ("DownloadBundle", "Install"))["Install"].succeeded
        os.utime(host.layout.deployment_dir(spec), (time.time() + specs.index(spec),) * 2)
    kept = sorted(p.name for p in (tmp_path / "root" / "group-1").iterdir())
    assert kept == [specs[2].deployment_id, specs[3].deployment_id]


# --- file exists behaviour ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("appspec_behavior", "override", "outcome"),
    [
        (None, None, "refused"),
        (None, "DISALLOW", "refused"),
        (None, "OVERWRITE", "replaced"),
        (None, "RETAIN", "kept"),
        ("OVERWRITE", None, "replaced"),
        ("RETAIN", "OVERWRITE", "replaced"),
    ],
)
def test_file_exists_behavior(tmp_path, host, appspec_behavior, override, outcome):
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.html").write_text("someone else's")
    extra = f"file_exists_behavior: {appspec_behavior}\n" if appspec_behavior else ""
    tree = write_tree(
        tmp_path / "b", {"appspec.yml": appspec(www, extra=extra), "app/index.html": "ours"}
    )
    spec = host.spec(tree, "directory", file_exists_behavior=override)

    results = host.deploy(spec, ("DownloadBundle", "Install"))

    install = results["Install"]
    if outcome == "refused":
        assert install.error_code == ErrorCode.UNKNOWN_ERROR
        assert f"already exists at this location: {www / 'index.html'}" in install.message
        assert (www / "index.html").read_text() == "someone else's"
        assert host.layout.last_successful_install("group-1") is None
    else:
        assert install.succeeded, install
        expected = "ours" if outcome == "replaced" else "someone else's"
        assert (www / "index.html").read_text() == expected


# --- script errors ----------------------------------------------------------------------------


def run_hook(
    tmp_path: Path,
    host: Host,
    files: dict[str, str],
    hook: str,
    modes: dict[str, int] | None = None,
) -> CommandResult:
    tree = write_tree(
        tmp_path / "b",
        {"appspec.yml": appspec(tmp_path / "www", hook), "app/x": "x", **files},
        modes=modes,
    )
    spec = host.spec(tree, "directory")
    results = host.deploy(spec, ("DownloadBundle", "Install", "AfterInstall"))
    return results["AfterInstall"]


def test_a_missing_script(tmp_path, host):
    result = run_hook(tmp_path, host, {}, "hooks:\n  AfterInstall:\n    - location: nope.sh\n")
    assert result.error_code == ErrorCode.SCRIPT_MISSING
    assert result.script_name == "nope.sh"
    assert result.message == "Script does not exist at specified location: nope.sh"


def test_a_location_that_is_not_a_file_is_not_executable(tmp_path, host):
    result = run_hook(
        tmp_path,
        host,
        {"scripts/README": "x"},
        "hooks:\n  AfterInstall:\n    - location: scripts\n",
    )
    assert result.error_code == ErrorCode.SCRIPT_NOT_EXECUTABLE
    assert "scripts" in result.message


def test_a_script_without_the_execute_bit_or_a_shebang_still_runs(tmp_path, host):
    marker = tmp_path / "ran"
    result = run_hook(
        tmp_path,
        host,
        {"plain.sh": f"echo ran > {marker}\n"},
        "hooks:\n  AfterInstall:\n    - location: plain.sh\n",
        modes={"plain.sh": 0o644},
    )
    assert result.succeeded, result
    assert marker.read_text() == "ran\n"


def test_a_failing_script_reports_its_exit_code_and_the_tail_of_its_output(tmp_path, host):
    script = "#!/bin/sh\nfor i in $(seq 1 400); do echo line-$i; done\necho broken >&2\nexit 3\n"
    result = run_hook(
        tmp_path, host, {"fail.sh": script}, "hooks:\n  AfterInstall:\n    - location: fail.sh\n"
    )
    assert result.error_code == ErrorCode.SCRIPT_FAILED
    assert result.message == "Script at specified location: fail.sh failed with exit code 3"
    assert len(result.log) <= 2048
    assert result.log.endswith("[stdout]line-400\n[stderr]broken\n")
    assert "line-1\n" not in result.log


def test_a_script_past_its_timeout_is_ended_with_its_children(tmp_path, host):
    pid_file = tmp_path / "child.pid"
    script = f"#!/bin/sh\nsleep 60 &\necho $! > {pid_file}\nsleep 60\n"
    started = time.monotonic()
    result = run_hook(
        tmp_path,
        host,
        {"slow.sh": script},
        "hooks:\n  AfterInstall:\n    - location: slow.sh\n      timeout: 1\n",
    )
    assert result.error_code == ErrorCode.SCRIPT_TIMED_OUT
    assert result.message == "Script at specified location: slow.sh failed to complete in 1 seconds"
    assert time.monotonic() - started < 15
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5  # the signal reaches the group's processes in its time
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def test_a_background_child_holding_the_output_open(tmp_path, host):
    pid_file = tmp_path / "daemon.pid"
    script = f"#!/bin/sh\nsleep 30 &\necho $! > {pid_file}\necho started\n"
    started = time.monotonic()
    result = run_hook(
        tmp_path,
        host,
        {"daemon.sh": script},
        "hooks:\n  AfterInstall:\n    - location: daemon.sh\n      timeout: 2\n",
    )
    try:
        assert result.error_code == ErrorCode.OUTPUTS_LEFT_OPEN
        assert "failed to close" in result.message
        assert "[stdout]started" in result.log
        assert 1.5 < time.monotonic() - started < 15
    finally:
        os.kill(int(pid_file.read_text()), 9)


@pytest.mark.skipif(os.geteuid() != 0, reason="switching user needs root")
def test_runas_runs_the_script_as_that_user(tmp_path):
    # The user must be able to reach the script: pytest's own temporary tree is private.
    with tempfile.TemporaryDirectory() as shared:
        Path(shared).chmod(0o755)
        host = Host(Path(shared) / "agent-root")
        script = "#!/bin/sh\nid -un\necho $HOME\n"
        result = run_hook(
            tmp_path,
            host,
            {"who.sh": script},
            "hooks:\n  AfterInstall:\n    - location: who.sh\n      runas: nobody\n",
        )
        assert result.succeeded, result
        spec_dir = next((Path(shared) / "agent-root" / "group-1").iterdir())
        log_text = (spec_dir / "logs" / "scripts.log").read_text()
    assert "[stdout]nobody" in log_text
    assert f"[stdout]{pwd.getpwnam('nobody').pw_dir}" in log_text


def test_runas_a_user_that_does_not_exist(tmp_path, host):
    result = run_hook(
        tmp_path,
        host,
        {"who.sh": "#!/bin/sh\nid\n"},
        "hooks:\n  AfterInstall:\n    - location: who.sh\n      runas: no-such-user-here\n",
    )
    assert result.error_code == ErrorCode.UNKNOWN_ERROR
    assert "no-such-user-here" in result.message


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie waiting for its (killed) parent's reaper counts as gone.
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "State:\tZ" not in status.read_text()


# --- unsafe bundles ---------------------------------------------------------------------------


def _tar_with(tmp_path: Path, member: tarfile.TarInfo, data: bytes = b"") -> Path:
    target = tmp_path / "evil.tar"
    with tarfile.open(target, "w") as archive:
        info = tarfile.TarInfo("appspec.yml")
        body = appspec(tmp_path / "www").encode()
        info.size = len(body)
        archive.addfile(info, io.BytesIO(body))
        archive.addfile(member, io.BytesIO(data) if data else None)
    return target


def _member(
    name: str, kind: bytes = tarfile.REGTYPE, link: str = "", data: bytes = b""
) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info


@pytest.mark.parametrize(
    ("member", "words"),
    [
        (_member("../../escaped.txt", data=b"x"), "climbs out"),
        (_member("/tmp/absolute.txt", data=b"x"), "absolute path"),
        (_member("app/link", tarfile.SYMTYPE, "/etc/passwd"), "symbolic link"),
        (_member("app/hard", tarfile.LNKTYPE, "appspec.yml"), "hard link"),
        (_member("app/dev", tarfile.CHRTYPE), "device or pipe"),
    ],
    ids=["dotdot", "absolute", "symlink", "hardlink", "device"],
)
def test_unsafe_tar_members_are_refused_before_anything_is_written(tmp_path, host, member, words):
    data = b"x" if member.type == tarfile.REGTYPE else b""
    bundle = _tar_with(tmp_path, member, data)
    spec = host.spec(bundle, "tar")
    result = host.executor.execute("DownloadBundle", spec)
    assert result.error_code == ErrorCode.UNKNOWN_ERROR
    assert words in result.message
    assert member.name in result.message
    archive = host.layout.archive_dir(spec)
    assert not archive.exists() or list(archive.iterdir()) == []
    assert not (tmp_path.parent / "escaped.txt").exists()


def test_a_zip_with_a_symlink_is_refused(tmp_path, host):
    target = tmp_path / "evil.zip"
    with zipfile.ZipFile(target, "w") as archive:
        archive.writestr("appspec.yml", appspec(tmp_path / "www"))
        link = zipfile.ZipInfo("app/link")
        link.create_system = 3
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/shadow")
    result = host.executor.execute("DownloadBundle", host.spec(target, "zip"))
    assert result.error_code == ErrorCode.UNKNOWN_ERROR
    assert "symbolic link" in result.message


def test_a_bundle_without_an_appspec(tmp_path, host):
    tree = write_tree(tmp_path / "b", {"app/x": "x"})
    result = host.executor.execute("DownloadBundle", host.spec(tree, "directory"))
    assert result.error_code == ErrorCode.UNKNOWN_ERROR
    assert "no appspec.yml" in result.message


# --- the command line -----------------------------------------------------------------------


def deploy_local(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*FORGELINE, "deploy-local", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_deploy_local_runs_the_default_events_and_fails_on_a_failing_validation(tmp_path):
    www, record = tmp_path / "www", tmp_path / "events.txt"
    hooks = "hooks:\n" + "".join(
        f"  {event}:\n    - location: record.sh\n"
        for event in ("ApplicationStop", "BeforeInstall", "ValidateService")
    )
    good = write_tree(
        tmp_path / "good",
        {
            "appspec.yml": appspec(www, hooks),
            "record.sh": EVENT_LOG_SCRIPT.format(record=record),
            "app/v": "1",
        },
    )
    bad = write_tree(
        tmp_path / "bad",
        {
            "appspec.yml": appspec(www, hooks),
            "record.sh": EVENT_LOG_SCRIPT.format(record=record)
            + 'if [ "$LIFECYCLE_EVENT" = ValidateService ]; then echo unhealthy; exit 1; fi\n',
            "app/v": "2",
        },
    )
    root = tmp_path / "agent-root"

    first = deploy_local("--bundle-location", str(good), "--application-folder", str(root))
    assert first.returncode == 0, first.stderr
    assert [line.split(":")[0] for line in first.stdout.splitlines()[1:]] == list(
        events.LOCAL_DEFAULT_EVENTS
    )
    zipped = zip_tree(bad, tmp_path / "bad.zip")
    second = deploy_local("-l", str(zipped), "--application-folder", str(root))

    assert second.returncode == 1
    assert "ValidateService: Failed (SCRIPT_FAILED)" in second.stdout
    assert "[stdout]unhealthy" in second.stdout
    assert (www / "v").read_text() == "2"
    ran = [line.split("|")[0] for line in record.read_text().splitlines()]
    assert ran == [
        "BeforeInstall",
        "ValidateService",
        "ApplicationStop",
        "BeforeInstall",
        "ValidateService",
    ]


def test_deploy_local_refuses_a_new_revision_event_before_download(tmp_path):
    tree = write_tree(tmp_path / "b", {"appspec.yml": appspec(tmp_path / "www"), "app/x": "x"})
    result = deploy_local(
        "-l",
        str(tree),
        "--events",
        "BeforeInstall,DownloadBundle",
        "--application-folder",
        str(tmp_path / "r"),
    )
    assert result.returncode == 2
    assert "BeforeInstall" in result.stderr and "DownloadBundle" in result.stderr
