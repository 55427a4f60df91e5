"""Buildspec parsing and validation (pure: text in, dataclasses or BuildspecError out)."""

from __future__ import annotations

import textwrap

import pytest

from forgeline.codebuild.buildspec import (
    Buildspec,
    BuildspecError,
    SecretReference,
    parse_buildspec,
)


def parse(text: str, **kwargs) -> Buildspec:
    return parse_buildspec(textwrap.dedent(text), **kwargs)


def error_of(text: str, **kwargs) -> BuildspecError:
    with pytest.raises(BuildspecError) as caught:
        parse(text, **kwargs)
    return caught.value


FULL = """\
version: 0.2
run-as: builder
env:
  shell: bash
  variables:
    HOME_COPY: $HOME
    COUNT: 3
    ENABLED: yes
  parameter-store:
    DB_PASSWORD: /prod/db/password
  secrets-manager:
    PLAIN: my-secret
    KEYED: my-secret:username:AWSPREVIOUS
    BY_ID: my-secret:password::c3a1
    ARN: arn:aws:secretsmanager:us-east-1:111122223333:secret:app-AbCdEf:token
  exported-variables:
    - IMAGE_TAG
  git-credential-helper: yes
proxy:
  upload-artifacts: yes
batch:
  fast-fail: false
  build-list:
    - identifier: linux
phases:
  install:
    run-as: root
    on-failure: CONTINUE
    runtime-versions:
      python: 3.11
    commands:
      - pip install -r requirements.txt
  pre_build:
    commands:
  build:
    commands:
      - make
      - 42
      - true
      - |
        echo one
        echo two
    finally:
      - echo done
  post_build:
reports:
  unit:
    files: ["**/*.xml"]
    base-directory: reports
    discard-paths: yes
    file-format: NUNIT3XML
artifacts:
  files:
    - target/app.jar
  name: app-$(date +%s)
  discard-paths: no
  base-directory: out
  exclude-paths: ["*.tmp"]
  enable-symlinks: yes
  s3-prefix: builds
  secondary-artifacts:
    docs:
      files: docs/**/*
cache:
  paths:
    - /root/.m2/**/*
  key: deps-v1
  fallback-keys: [deps-]
"""


def test_full_buildspec_parses_into_typed_sections() -> None:
    spec = parse(FULL)
    assert spec.version == "0.2"
    assert spec.run_as == "builder"
    assert spec.env.shell == "bash"
    assert spec.env.variables == {"HOME_COPY": "$HOME", "COUNT": "3", "ENABLED": "yes"}
    assert spec.env.parameter_store == {"DB_PASSWORD": "/prod/db/password"}
    assert spec.env.exported_variables == ("IMAGE_TAG",)
    assert spec.env.git_credential_helper is True
    assert spec.proxy == {"upload-artifacts": True}
    assert spec.batch == {"fast-fail": False, "build-list": [{"identifier": "linux"}]}

    install = spec.phase("install")
    assert (install.run_as, install.on_failure) == ("root", "CONTINUE")
    assert install.runtime_versions == {"python": "3.11"}
    assert spec.phase("pre_build").commands == ()
    build = spec.phase("build")
    assert build.on_failure == "ABORT"
    assert build.commands == ("make", "42", "true", "echo one\necho two")
    assert build.finally_commands == ("echo done",)
    assert spec.phase("post_build").commands == ()

    report = spec.reports["unit"]
    assert report.files == ("**/*.xml",)
    assert (report.base_directory, report.discard_paths, report.file_format) == (
        "reports",
        True,
        "NUNIT3XML",
    )
    artifacts = spec.artifacts
    assert artifacts is not None
    assert artifacts.files == ("target/app.jar",)
    assert artifacts.name == "app-$(date +%s)"
    assert (artifacts.discard_paths, artifacts.enable_symlinks) == (False, True)
    assert (artifacts.base_directory, artifacts.s3_prefix) == ("out", "builds")
    assert artifacts.exclude_paths == ("*.tmp",)
    assert artifacts.secondary_artifacts["docs"].files == ("docs/**/*",)
    assert spec.cache is not None
    assert spec.cache.paths == ("/root/.m2/**/*",)
    assert (spec.cache.key, spec.cache.fallback_keys) == ("deps-v1", ("deps-",))


def test_secrets_manager_references_are_split_into_parts() -> None:
    secrets = parse(FULL).env.secrets_manager
    assert secrets["PLAIN"] == SecretReference("my-secret")
    assert secrets["KEYED"] == SecretReference("my-secret", "username", "AWSPREVIOUS")
    assert secrets["BY_ID"] == SecretReference("my-secret", "password", None, "c3a1")
    assert secrets["ARN"] == SecretReference(
        "arn:aws:secretsmanager:us-east-1:111122223333:secret:app-AbCdEf", "token"
    )


def test_minimal_buildspec_has_defaults_and_empty_phases() -> None:
    spec = parse("version: 0.1\n")
    assert spec.version == "0.1"
    assert spec.phases == {}
    assert spec.phase("build").commands == ()
    assert spec.phase("build").on_failure == "ABORT"
    assert spec.env.shell is None and spec.env.variables == {}
    assert spec.reports == {} and spec.artifacts is None and spec.cache is None


def test_report_file_format_defaults_to_junit() -> None:
    spec = parse(
        """\
        version: 0.2
        reports:
          group:
            files: out.xml
        """
    )
    assert spec.reports["group"].file_format == "JUNITXML"
    assert spec.reports["group"].files == ("out.xml",)


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("version: 0.3\n", 1, "Unsupported buildspec version '0.3'"),
        ("version: 1\n", 1, "Unsupported buildspec version '1'"),
        ("phases: {}\n", 1, "missing version"),
        ("version: 0.2\nsurprise: 1\n", 2, "Unknown key 'surprise' in buildspec"),
        ("version: 0.2\nphases:\n  compile: {}\n", 3, "Unknown phase 'compile'"),
        (
            "version: 0.2\nphases:\n  build:\n    commands:\n      - ok\n      - key: value\n",
            6,
            "found a map or list",
        ),
        (
            "version: 0.2\nphases:\n  build:\n    on-failure: RETRY_LATER\n",
            4,
            "Invalid on-failure 'RETRY_LATER'",
        ),
        (
            "version: 0.2\nphases:\n  build:\n    runtime-versions:\n      python: 3.11\n",
            4,
            "Unknown key 'runtime-versions' in phases/build",
        ),
        ("version: 0.2\nenv:\n  shell: zsh\n", 3, "Invalid env/shell 'zsh'"),
        ("version: 0.2\nenv:\n  variables:\n    A: [1, 2]\n", 4, "Expected env/variables"),
        ("version: 0.2\nenv:\n  git-credential-helper: maybe\n", 3, "expected yes or no"),
        (
            "version: 0.2\nreports:\n  r:\n    files: [a]\n    file-format: XUNIT\n",
            5,
            "Invalid file-format 'XUNIT'",
        ),
        ("version: 0.2\nreports:\n  r:\n    base-directory: x\n", 4, "Missing files"),
        ("version: 0.2\nartifacts:\n  filez: [a]\n", 3, "Unknown key 'filez' in artifacts"),
        ("version: 0.2\nversion: 0.2\n", 2, "Duplicate key 'version'"),
        ("- just\n- a list\n", 1, "Expected the buildspec to be a map"),
    ],
)
def test_invalid_buildspecs_name_the_problem_and_line(text: str, line: int, fragment: str) -> None:
    error = error_of(text)
    assert error.message.startswith("YAML_FILE_ERROR")
    assert fragment in error.message
    assert error.line == line
    assert str(error) == error.message


def test_broken_yaml_reports_the_scanner_message_and_line() -> None:
    text = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo a\n     - echo b\n"
    error = error_of(text)
    assert error.message.startswith("YAML_FILE_ERROR Message: ")
    assert error.line == 6
    assert error.message.endswith("at line 6")


def test_empty_text_is_an_error() -> None:
    assert "empty" in error_of("").message


def test_runtime_versions_are_checked_against_the_image_when_known() -> None:
    image = {"python": ["3.11", "3.12"], "nodejs": ["20"]}
    text = """\
    version: 0.2
    phases:
      install:
        runtime-versions:
          python: 3.10
    """
    error = error_of(text, available_runtimes=image)
    assert error.message == (
        "YAML_FILE_ERROR: Unknown runtime version named '3.10' of python. This build image "
        "has the following versions: 3.11, 3.12 at line 5"
    )
    unknown = error_of(text.replace("python", "pythn"), available_runtimes=image)
    assert "Unknown runtime named 'pythn'" in unknown.message
    assert unknown.line == 5
    ok = parse(text.replace("3.10", "3.12"), available_runtimes=image)
    assert ok.phase("install").runtime_versions == {"python": "3.12"}
    # Without image information any runtime is accepted as written.
    assert parse(text).phase("install").runtime_versions == {"python": "3.10"}


def test_empty_command_item_is_an_error() -> None:
    error = error_of("version: 0.2\nphases:\n  build:\n    commands:\n      -\n")
    assert "Empty command" in error.message
    assert error.line == 5
