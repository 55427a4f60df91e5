"""The default layout a new user gets from `./scripts/run`: a server started in a folder on
its relative default data directory (`.forgeline`), exercised through git and boto3.

A relative data directory once made git resolve the push hook inside the bare repository,
so pushes were taken but never recorded: no default branch, no events, no webhook builds.
"""

from __future__ import annotations

import time

import pytest

from tests.support.builds import create_project, unique, wait_for_build
from tests.support.git_cli import Git, http_url
from tests.support.server import ForgelineServer

BUILDSPEC = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo pushed-and-built\n"


@pytest.fixture(scope="module")
def default_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("new-user")
    server = ForgelineServer(
        folder / ".forgeline", cwd=folder, extra_env={"FORGELINE_BUILD_RUNNER": "host"}
    )
    try:
        yield server.start()
    finally:
        server.stop()


def test_settings_paths_are_absolute(tmp_path, monkeypatch):
    from forgeline.core.settings import Settings, builds_root

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FORGELINE_DATA_DIR", raising=False)
    monkeypatch.setenv("FORGELINE_BUILD_DIR", "b")
    settings = Settings()
    assert settings.data_dir == tmp_path / ".forgeline"
    assert builds_root(settings) == tmp_path / "b"
    assert settings.resolved_database_url.startswith(f"sqlite:///{tmp_path}/")


def test_push_sets_default_branch_and_starts_webhook_build(default_server, tmp_path):
    server = default_server
    assert (server.cwd / ".forgeline" / "credentials").is_file()
    codecommit, codebuild = server.client("codecommit"), server.client("codebuild")
    name = unique("first-push")
    codecommit.create_repository(repositoryName=name)
    project = create_project(
        codebuild,
        source={"type": "CODECOMMIT", "location": http_url(server, name)},
    )
    codebuild.create_webhook(
        projectName=project, filterGroups=[[{"type": "EVENT", "pattern": "PUSH"}]]
    )

    git = Git(server, tmp_path / "home")
    work = git.new_work_tree(tmp_path / "work")
    head = git.commit(work, "buildspec.yml", BUILDSPEC, "first")
    git.helper("push", "-q", http_url(server, name), "main", cwd=work)

    # The push was recorded: the empty repository's default branch is the pushed one.
    metadata = codecommit.get_repository(repositoryName=name)["repositoryMetadata"]
    assert metadata.get("defaultBranch") == "main"
    assert (
        codecommit.get_branch(repositoryName=name, branchName="main")["branch"]["commitId"] == head
    )

    # ... and the webhook started a build of the pushed commit, which ran.
    deadline = time.monotonic() + 60
    ids: list[str] = []
    while not ids and time.monotonic() < deadline:
        ids = codebuild.list_builds_for_project(projectName=project)["ids"]
        time.sleep(0.2)
    assert ids, f"the push started no build:\n{server.log()}"
    build = wait_for_build(codebuild, ids[0])
    assert build["buildStatus"] == "SUCCEEDED", build
    assert build["resolvedSourceVersion"] == head
