"""Generated requests for the branch and content operations, aimed at a repository with content.

The model-wide fuzz test mostly meets repositories that do not exist; here requests name
a real repository, and their branch names, commit ids, blob ids and paths are often real
ones, so the handlers' own checks run. Every answer is a success or an error the
operation declares (or a generic validation error), never a 5xx.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forgeline.core.protocol.catalog import service_model
from tests.support.modelgen import request_strategy
from tests.support.signing import signed_headers

OPERATIONS = [
    "CreateBranch",
    "DeleteBranch",
    "GetBranch",
    "ListBranches",
    "UpdateDefaultBranch",
    "GetFile",
    "GetFolder",
    "GetBlob",
    "PutFile",
    "DeleteFile",
    "CreateCommit",
    "GetCommit",
    "BatchGetCommits",
    "GetDifferences",
    "ListFileCommitHistory",
]
MODEL = service_model("codecommit")
TARGET_PREFIX = MODEL.metadata["targetPrefix"]
COMMIT_MEMBERS = {
    "commitId",
    "parentCommitId",
    "commitSpecifier",
    "beforeCommitSpecifier",
    "afterCommitSpecifier",
}
PATH_MEMBERS = {"filePath", "folderPath", "beforePath", "afterPath"}
BRANCH_MEMBERS = {"branchName", "defaultBranchName"}


@pytest.fixture(scope="module")
def world(forgeline) -> dict[str, Any]:
    cc = forgeline.client("codecommit")
    name = f"fuzz-{uuid.uuid4().hex[:10]}"
    cc.create_repository(repositoryName=name)
    first = cc.create_commit(
        repositoryName=name,
        branchName="main",
        putFiles=[
            {"filePath": "README.md", "fileContent": b"readme"},
            {"filePath": "src/app.py", "fileContent": b"print()\n", "fileMode": "EXECUTABLE"},
            {"filePath": "src/lib/util.py", "fileContent": b"\x00\x01binary"},
        ],
    )
    second = cc.put_file(
        repositoryName=name,
        branchName="main",
        filePath="src/app.py",
        fileContent=b"print(1)\n",
        parentCommitId=first["commitId"],
    )
    cc.create_branch(repositoryName=name, branchName="dev", commitId=first["commitId"])
    with httpx.Client(timeout=20.0, limits=httpx.Limits(max_keepalive_connections=0)) as http:
        yield {
            "name": name,
            "url": forgeline.url,
            "credentials": forgeline.admin_credentials(),
            "http": http,
            "commits": [
                first["commitId"],
                second["commitId"],
                second["commitId"][:8],
                "HEAD",
                "main",
            ],
            "blobs": [second["blobId"]],
            "paths": ["README.md", "/src/app.py", "src", "/", "src/lib/util.py", "nope"],
            "branches": ["main", "dev", "ghost"],
        }
    cc.delete_repository(repositoryName=name)


def aim(value: Any, world: dict[str, Any], draw: Any) -> Any:
    """Swap generated members for real names and ids most of the time."""
    if isinstance(value, list):
        return [aim(item, world, draw) for item in value]
    if not isinstance(value, dict):
        return value
    aimed = {}
    for key, item in value.items():
        pool = (
            world["commits"]
            if key in COMMIT_MEMBERS
            else world["paths"]
            if key in PATH_MEMBERS
            else world["branches"]
            if key in BRANCH_MEMBERS
            else world["blobs"]
            if key == "blobId"
            else world["commits"][:2]
            if key == "commitIds"
            else None
        )
        if key == "repositoryName":
            item = world["name"] if draw(st.integers(0, 9)) else item
        elif pool is not None and draw(st.integers(0, 3)):
            item = pool if key == "commitIds" else draw(st.sampled_from(pool))
        aimed[key] = aim(item, world, draw)
    return aimed


@settings(
    deadline=None,
    derandomize=True,
    database=None,
    max_examples=200,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(data=st.data())
def test_aimed_requests_get_declared_answers(world, data):
    operation = data.draw(st.sampled_from(OPERATIONS), label="operation")
    model = MODEL.operation_model(operation)
    request = aim(data.draw(request_strategy(model), label="request"), world, data.draw)
    body = json.dumps(request).encode()
    headers = signed_headers(
        world["url"],
        body,
        target=f"{TARGET_PREFIX}.{operation}",
        signing_name="codecommit",
        credentials=world["credentials"],
    )
    response = world["http"].post(world["url"] + "/", content=body, headers=headers)
    detail = f"{operation} answered {response.status_code}: {response.text[:500]}\n{body[:500]!r}"
    assert response.status_code < 500, detail
    if response.status_code == 200:
        return
    code = response.json()["__type"]
    declared = {shape.name for shape in model.error_shapes}
    assert code in declared | {"ValidationException", "SerializationException"}, detail
