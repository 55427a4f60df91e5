"""appspec.yml parsing: every section as AWS's agent reads it, and a clear error for each
way an appspec can be wrong."""

from __future__ import annotations

import textwrap

import pytest

from forgeline.codedeploy.agent.appspec import (
    AppSpecError,
    FileMapping,
    HookScript,
    Permission,
    bundle_path,
    parse_appspec,
    parse_mode,
)

FULL = textwrap.dedent(
    """\
    version: 0.0
    os: linux
    files:
      - source: /
        destination: /srv/app
      - source: config/app.conf
        destination: /etc/app/
    file_exists_behavior: overwrite
    permissions:
      - object: /srv/app
        pattern: "*.sh"
        except: [skip.sh]
        owner: www-data
        group: www-data
        mode: 750
        type:
          - file
        acls: ["u:bob:rw"]
        context: {type: httpd_sys_content_t}
      - object: /etc/app/app.conf
    hooks:
      BeforeInstall:
        - location: scripts/install_deps.sh
          timeout: 300
          runas: root
      ApplicationStart:
        - location: /scripts/start.sh
        - location: scripts/warm.sh
          timeout: "60"
      ValidateService:
    """
)


def test_a_full_appspec():
    spec = parse_appspec(FULL)
    assert spec.os == "linux"
    assert spec.files == (
        FileMapping(source="", destination="/srv/app"),
        FileMapping(source="config/app.conf", destination="/etc/app"),
    )
    assert spec.file_exists_behavior == "OVERWRITE"
    assert spec.permissions == (
        Permission(
            object="/srv/app",
            pattern="*.sh",
            except_=("skip.sh",),
            types=("file",),
            owner="www-data",
            group="www-data",
            mode=0o750,
        ),
        Permission(object="/etc/app/app.conf"),
    )
    assert spec.scripts_for("BeforeInstall") == (
        HookScript("scripts/install_deps.sh", timeout=300, runas="root"),
    )
    assert spec.scripts_for("ApplicationStart") == (
        HookScript("scripts/start.sh"),  # no timeout: the rest of the event's hour
        HookScript("scripts/warm.sh", timeout=60),
    )
    assert spec.scripts_for("ValidateService") == ()
    assert spec.scripts_for("AfterInstall") == ()


def test_a_minimal_appspec_and_json():
    spec = parse_appspec('{"version": 0.0, "os": "linux"}')
    assert (spec.files, spec.permissions, spec.hooks, spec.file_exists_behavior) == (
        (),
        (),
        {},
        None,
    )
    assert parse_appspec("version: '0.0'\nos: linux\n").os == "linux"


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("version: 0.0\nos: linux\nfiles: [", "not valid YAML"),
        ("- a\n- b\n", "must be a mapping"),
        ("version: 1.0\nos: linux\n", "version must be 0.0"),
        ("os: linux\n", "version must be 0.0"),
        ("version: 0.0\nos: windows\n", "windows"),
        ("version: 0.0\nos: beos\n", "os must be linux"),
        ("version: 0.0\nos: linux\nfiles: {source: a}\n", "files must be a list"),
        ("version: 0.0\nos: linux\nfiles:\n  - destination: /x\n", "no source"),
        ("version: 0.0\nos: linux\nfiles:\n  - source: a\n", "has no destination"),
        ("version: 0.0\nos: linux\nfiles:\n  - {source: a, destination: rel}\n", "absolute"),
        (
            "version: 0.0\nos: linux\nfiles:\n  - {source: ../a, destination: /x}\n",
            "outside the bundle",
        ),
        ("version: 0.0\nos: linux\nfile_exists_behavior: maybe\n", "file_exists_behavior"),
        ("version: 0.0\nos: linux\npermissions:\n  - mode: 644\n", "has no object"),
        ("version: 0.0\nos: linux\npermissions:\n  - {object: rel}\n", "absolute path"),
        ("version: 0.0\nos: linux\npermissions:\n  - {object: /x, mode: 648}\n", "not octal"),
        ("version: 0.0\nos: linux\npermissions:\n  - {object: /x, mode: 12345}\n", "four digits"),
        (
            "version: 0.0\nos: linux\npermissions:\n  - {object: /x, type: [socket]}\n",
            "file and directory",
        ),
        ("version: 0.0\nos: linux\nhooks: [BeforeInstall]\n", "hooks must map"),
        ("version: 0.0\nos: linux\nhooks:\n  BeforeInstall: run.sh\n", "must be a list"),
        ("version: 0.0\nos: linux\nhooks:\n  BeforeInstall:\n    - timeout: 5\n", "no location"),
        (
            "version: 0.0\nos: linux\nhooks:\n  BeforeInstall:\n    - {location: a, timeout: 0}\n",
            "more than 0",
        ),
        (
            "version: 0.0\nos: linux\nhooks:\n  BeforeInstall:\n    - {location: a, timeout: soon}\n",
            "number of seconds",
        ),
        (
            "version: 0.0\nos: linux\nhooks:\n  BeforeInstall:\n    - {location: ../../bin/sh}\n",
            "outside the bundle",
        ),
    ],
)
def test_errors_name_what_is_wrong(body, words):
    with pytest.raises(AppSpecError, match=words):
        parse_appspec(body)


def hooks_with_timeouts(*timeouts: int | None) -> str:
    scripts = "".join(
        f"    - location: s{index}.sh\n" + (f"      timeout: {timeout}\n" if timeout else "")
        for index, timeout in enumerate(timeouts)
    )
    return f"version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n{scripts}"


def test_an_events_own_timeouts_may_add_up_to_an_hour():
    spec = parse_appspec(hooks_with_timeouts(1800, 1800, None))
    assert [s.timeout for s in spec.scripts_for("AfterInstall")] == [1800, 1800, None]
    with pytest.raises(AppSpecError, match="AfterInstall have timeouts adding up to 3601"):
        parse_appspec(hooks_with_timeouts(1800, 1801))


@pytest.mark.parametrize(
    ("value", "mode"),
    [(644, 0o644), ("755", 0o755), (7, 0o007), ("4755", 0o4755), ("0640", 0o640), (0, 0)],
)
def test_modes(value, mode):
    assert parse_mode(value) == mode


@pytest.mark.parametrize(
    ("path", "relative"),
    [("/", ""), ("", ""), ("a/b", "a/b"), ("/a//b/", "a/b"), ("a/../b", "b"), ("./a", "a")],
)
def test_bundle_paths(path, relative):
    assert bundle_path(path, "x") == relative


def test_bundle_paths_may_not_leave_the_bundle():
    for path in ("..", "../a", "a/../../b", "/../etc"):
        with pytest.raises(AppSpecError, match="outside the bundle"):
            bundle_path(path, "files[0].source")
