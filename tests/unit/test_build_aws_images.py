"""AWS's curated CodeBuild image names mapped onto Forgeline's local images."""

from __future__ import annotations

import pytest

from forgeline.codebuild.aws_images import (
    RUNTIMES_IMAGE,
    STANDARD_IMAGE,
    ImageMapError,
    choose_local_image,
    curated_family,
    curated_names,
    parse_image_map,
)


def nothing_present(_ref: str) -> bool:
    return False


def runtimes_present(ref: str) -> bool:
    return ref == RUNTIMES_IMAGE


@pytest.mark.parametrize(
    "name",
    [
        "aws/codebuild/standard:7.0",
        "aws/codebuild/standard:5.0",
        "aws/codebuild/amazonlinux2-x86_64-standard:5.0",
        "aws/codebuild/amazonlinux-x86_64-standard:5.0",
        "aws/codebuild/amazonlinux-aarch64-standard:3.0",
        "aws/codebuild/amazonlinux2-aarch64-standard:2.0",
        "aws/codebuild/amazonlinux-x86_64-lambda-standard:python3.12",
        "public.ecr.aws/codebuild/amazonlinux-x86_64-standard:5.0",
        "aws/codebuild/amazonlinux2-x86_64-standard:4.0-1.0.0",  # a pinned version
    ],
)
def test_curated_names_map_to_the_standard_image(name: str) -> None:
    choice = choose_local_image(name, {}, nothing_present)
    assert (choice.requested, choice.local, choice.mapped) == (name, STANDARD_IMAGE, True)
    assert choice.build_command == "forgeline images build standard"
    message = choice.missing_message()
    assert name in message and "forgeline images build standard" in message


def test_the_runtimes_image_is_preferred_when_present() -> None:
    choice = choose_local_image("aws/codebuild/standard:7.0", {}, runtimes_present)
    assert choice.local == RUNTIMES_IMAGE
    assert choice.build_command == "forgeline images build standard --runtimes"


@pytest.mark.parametrize(
    "name",
    [
        "forgeline/tiny:latest",
        "node:20",
        "aws/codebuild/windows-base:2019-3.0",  # Windows images have no local counterpart
        "aws/codebuild/standard",  # no tag: not a curated name
        "myregistry/aws/codebuild/standard:7.0",
    ],
)
def test_other_names_are_used_as_they_are(name: str) -> None:
    choice = choose_local_image(name, {}, runtimes_present)
    assert (choice.local, choice.mapped) == (name, False)


def test_overrides_win_and_accept_both_spellings() -> None:
    overrides = parse_image_map(
        " aws/codebuild/standard:7.0=forgeline/tiny:latest ,, "
        "public.ecr.aws/codebuild/amazonlinux-x86_64-standard:5.0=my/al:1,node:20=my/node"
    )
    assert overrides == {
        "aws/codebuild/standard:7.0": "forgeline/tiny:latest",
        "aws/codebuild/amazonlinux-x86_64-standard:5.0": "my/al:1",
        "node:20": "my/node",
    }
    tiny = choose_local_image("public.ecr.aws/codebuild/standard:7.0", overrides, nothing_present)
    assert (tiny.local, tiny.mapped) == ("forgeline/tiny:latest", True)
    assert tiny.build_command == "forgeline images build tiny"
    custom = choose_local_image(
        "aws/codebuild/amazonlinux-x86_64-standard:5.0", overrides, runtimes_present
    )
    assert custom.local == "my/al:1" and custom.build_command is None
    assert "docker load" in custom.missing_message()
    # Names the override does not mention keep the built-in map.
    assert choose_local_image("aws/codebuild/standard:6.0", overrides, nothing_present).local == (
        STANDARD_IMAGE
    )
    assert choose_local_image("node:20", overrides, nothing_present).local == "my/node"


@pytest.mark.parametrize("text", ["aws/codebuild/standard:7.0", "=x", "a=", "a=b,c"])
def test_malformed_maps_are_refused(text: str) -> None:
    with pytest.raises(ImageMapError, match="aws-name=local-image"):
        parse_image_map(text)


def test_the_listing_holds_the_documented_names() -> None:
    names = curated_names()
    for name in (
        "aws/codebuild/standard:7.0",
        "aws/codebuild/amazonlinux2-x86_64-standard:5.0",
        "aws/codebuild/amazonlinux-x86_64-standard:5.0",
        "aws/codebuild/amazonlinux-aarch64-standard:3.0",
    ):
        assert name in names
    assert all(curated_family(name) is not None for name in names)
    assert len(names) == len(set(names))
