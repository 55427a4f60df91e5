"""CodeBuild details clients rely on, checked over HTTP with boto3 against real builds:
AWS's curated image names, malformed build ids, phase contexts, the log deep link and
the `[Container]` timestamps (on both runners)."""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from botocore.exceptions import ClientError

from forgeline.codebuild import images
from tests.support.builds import (
    build_server,
    context_of,
    create_project,
    log_lines,
    output_lines,
    phases_of,
    run_build,
)

AWS_IMAGE = "aws/codebuild/standard:7.0"
ECHO_IMAGE = (
    "version: 0.2\nphases:\n  build:\n    commands:\n"
    '      - echo "image=$CODEBUILD_BUILD_IMAGE"\n      - echo second\n'
)
FAILING = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo before\n      - exit 3\n"
STAMPED = re.compile(r"^\[Container\] \d{4}/\d\d/\d\d \d\d:\d\d:\d\d\.\d{6} \S")


@pytest.fixture(scope="module")
def server(tmp_path_factory: Any, tiny_image: str) -> Any:
    yield from build_server(
        tmp_path_factory,
        "docker",
        FORGELINE_BUILD_IMAGE_MAP=f"{AWS_IMAGE}=forgeline/tiny:latest",
    )


@pytest.fixture(scope="module")
def codebuild(server: Any) -> Any:
    return server.client("codebuild")


def error_of(call: Any, **kwargs: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    error = caught.value.response["Error"]
    return error["Code"], error["Message"]


# ---------------------------------------------------------------- AWS image names


def test_an_aws_image_name_builds_in_its_mapped_local_image(server: Any, codebuild: Any) -> None:
    project = create_project(codebuild, ECHO_IMAGE, image=AWS_IMAGE)
    build = run_build(codebuild, project)
    assert build["buildStatus"] == "SUCCEEDED", context_of(build, "PROVISIONING")
    # The build keeps the name its project gave, as on AWS; only the runner maps it.
    assert build["environment"]["image"] == AWS_IMAGE
    assert f"image={AWS_IMAGE}" in output_lines(server, build)
    assert any(
        "local image forgeline/tiny:latest" in line and AWS_IMAGE in line
        for line in log_lines(server, build)
    )


def test_curated_listing_shows_the_aws_names_whose_image_is_present(codebuild: Any) -> None:
    platforms = codebuild.list_curated_environment_images()["platforms"]
    names = {
        image["name"]: platform["platform"]
        for platform in platforms
        for language in platform["languages"]
        for image in language["images"]
    }
    assert names[AWS_IMAGE] == "UBUNTU"
    assert names["forgeline/tiny:latest"] == "DEBIAN"
    standard_present = images.image_present(images.DEFAULT_TAGS["standard"])
    # Names that map to forgeline/standard are listed only when that image exists.
    assert ("aws/codebuild/amazonlinux-x86_64-standard:5.0" in names) == standard_present


def test_a_missing_mapped_image_says_which_image_to_build(codebuild: Any) -> None:
    if images.image_present(images.DEFAULT_TAGS["standard"]) or images.image_present(
        images.RUNTIMES_TAG
    ):
        pytest.skip("this engine has the standard image, so the name maps to a present image")
    name = "aws/codebuild/amazonlinux2-x86_64-standard:5.0"
    build = run_build(codebuild, create_project(codebuild, ECHO_IMAGE, image=name))
    assert build["buildStatus"] == "FAILED"
    context = phases_of(build)["PROVISIONING"]["contexts"][0]
    assert context["statusCode"] == "BUILD_CONTAINER_UNABLE_TO_PULL_IMAGE"
    assert name in context["message"]
    assert "forgeline images build standard" in context["message"]
    assert build["environment"]["image"] == name


# ---------------------------------------------------------------- build ids


@pytest.mark.parametrize(
    "bad_id", ["hello", "hello:", ":0d7c", "arn:aws:codebuild:us-east-1:000000000000:project/x"]
)
def test_malformed_build_ids_are_invalid_input(codebuild: Any, bad_id: str) -> None:
    expected = ("InvalidInputException", "Invalid build ID provided")
    assert error_of(codebuild.batch_get_builds, ids=[bad_id]) == expected
    assert error_of(codebuild.stop_build, id=bad_id) == expected


def test_well_formed_unknown_build_ids_are_not_found(codebuild: Any) -> None:
    unknown = "nope:0d7c5a46-1f7e-4f5e-9a43-3f0a4b7c9e11"
    assert codebuild.batch_get_builds(ids=[unknown])["buildsNotFound"] == [unknown]
    code, _ = error_of(codebuild.stop_build, id=unknown)
    assert code == "ResourceNotFoundException"


# ---------------------------------------------------------------- phase contexts, deep link


def test_phase_contexts_have_aws_shape(codebuild: Any) -> None:
    passed = run_build(codebuild, create_project(codebuild, ECHO_IMAGE))
    failed = run_build(codebuild, create_project(codebuild, FAILING))
    assert passed["buildStatus"] == "SUCCEEDED" and failed["buildStatus"] == "FAILED"
    for build in (passed, failed):
        for phase in build["phases"]:
            kind = phase["phaseType"]
            if kind in ("SUBMITTED", "QUEUED", "COMPLETED"):
                assert "contexts" not in phase, phase
            elif phase["phaseStatus"] == "SUCCEEDED":
                # Code written for AWS reads contexts[0] of every ended phase.
                assert phase["contexts"] == [{"statusCode": "", "message": ""}], phase
    failure = phases_of(failed)["BUILD"]
    assert failure["phaseStatus"] == "FAILED"
    assert failure["contexts"][0]["statusCode"] == "COMMAND_EXECUTION_ERROR"
    assert "exit 3" in failure["contexts"][0]["message"]


def test_the_deep_link_answers_with_the_log_text(server: Any, codebuild: Any) -> None:
    build = run_build(codebuild, create_project(codebuild, ECHO_IMAGE))
    link = codebuild.batch_get_builds(ids=[build["id"]])["builds"][0]["logs"]["deepLink"]
    assert link.startswith(server.url)
    # The last line is written as the build's slot is handed back: wait for it.
    deadline = time.monotonic() + 10
    while not any("Phase complete: FINALIZING" in line for line in log_lines(server, build)):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    with urllib.request.urlopen(link, timeout=10) as answer:
        assert answer.headers["Content-Type"].startswith("text/plain")
        text = answer.read().decode()
    assert text.splitlines() == log_lines(server, build)
    assert "second" in text.splitlines()
    # The token belongs to this build: changed, the link reads nothing.
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(link[:-4] + "0000", timeout=10)
    assert refused.value.code == 404
    # Every API answer carries it, also StartBuild's for a build not yet running.
    started = codebuild.start_build(projectName=build["projectName"])["build"]
    assert started["logs"]["deepLink"].startswith(server.url)


# ---------------------------------------------------------------- [Container] timestamps


def container_lines_are_stamped_alike(server: Any, codebuild: Any, image: str) -> None:
    build = run_build(codebuild, create_project(codebuild, ECHO_IMAGE, image=image))
    assert build["buildStatus"] == "SUCCEEDED", context_of(build, "PROVISIONING")
    container = [line for line in log_lines(server, build) if line.startswith("[Container]")]
    assert any(" Running command echo second" in line for line in container)
    assert any(" Entering phase BUILD" in line for line in container)
    unlike = [line for line in container if not STAMPED.match(line)]
    assert unlike == []


def test_container_lines_have_microseconds_in_busybox(server: Any, codebuild: Any) -> None:
    # The tiny image's BusyBox `date` has no %N.
    container_lines_are_stamped_alike(server, codebuild, "forgeline/tiny:latest")


@pytest.fixture(scope="module")
def host_server(tmp_path_factory: Any) -> Any:
    yield from build_server(tmp_path_factory, "host")


def test_container_lines_have_microseconds_on_the_host(host_server: Any) -> None:
    container_lines_are_stamped_alike(
        host_server, host_server.client("codebuild"), "forgeline/tiny:latest"
    )
    # Choosing the host runner is announced loudly at start.
    [line] = [line for line in host_server.log().splitlines() if "build runner:" in line]
    assert '"level": "WARNING"' in line and "without isolation" in line
