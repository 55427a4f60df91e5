"""AWS's curated CodeBuild image names, mapped onto Forgeline's local images.

A project copied from AWS names an image such as ``aws/codebuild/standard:7.0``; no
registry serves it here, so the runner uses a local image instead. Every Linux image of
AWS's "Docker images provided by CodeBuild" (the standard, Amazon Linux and Lambda
families, under ``aws/codebuild/`` or ``public.ecr.aws/codebuild/``, any tag, so pinned
versions like ``4.0-1.0.0`` too) maps to ``forgeline/standard:runtimes`` when that image
is present, else to ``forgeline/standard:latest``. FORGELINE_BUILD_IMAGE_MAP
(``aws-name=local-image,...``) overrides single names.

Only the runner sees the local name: the build keeps the image its project gave
(BatchGetBuilds and CODEBUILD_BUILD_IMAGE show the AWS name, as on AWS).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

STANDARD_IMAGE = "forgeline/standard:latest"
RUNTIMES_IMAGE = "forgeline/standard:runtimes"
_BUILD_COMMANDS = {
    STANDARD_IMAGE: "forgeline images build standard",
    RUNTIMES_IMAGE: "forgeline images build standard --runtimes",
    "forgeline/tiny:latest": "forgeline images build tiny",
}

_PREFIXES = ("public.ecr.aws/codebuild/", "aws/codebuild/")
_LAMBDA_TAGS = (
    "corretto11 corretto17 corretto21 dotnet6 dotnet8 go1.21 nodejs18 nodejs20 "
    "python3.11 python3.12 ruby3.2"
).split()
# Repository name (after the prefix) -> the tags AWS documents for it, current and
# deprecated; `amazonlinux2-*` are the older aliases of the `amazonlinux-*` names.
CURATED: dict[str, tuple[str, ...]] = {
    "standard": ("4.0", "5.0", "6.0", "7.0", "8.0"),
    "amazonlinux-x86_64-standard": ("4.0", "5.0", "corretto8", "corretto11"),
    "amazonlinux2-x86_64-standard": ("3.0", "4.0", "5.0", "corretto8", "corretto11"),
    "amazonlinux-aarch64-standard": ("2.0", "3.0"),
    "amazonlinux2-aarch64-standard": ("2.0", "3.0"),
    "amazonlinux-x86_64-lambda-standard": tuple(_LAMBDA_TAGS),
    "amazonlinux-aarch64-lambda-standard": tuple(_LAMBDA_TAGS),
    "amazonlinux2-x86_64-lambda-standard": tuple(_LAMBDA_TAGS),
    "amazonlinux2-aarch64-lambda-standard": tuple(_LAMBDA_TAGS),
}


class ImageMapError(ValueError):
    """FORGELINE_BUILD_IMAGE_MAP is not a list of name=image pairs."""


@dataclass(frozen=True)
class ImageChoice:
    requested: str  # what the project or StartBuild gave
    local: str  # what the runner starts
    mapped: bool  # local differs from requested because of the map

    @property
    def build_command(self) -> str | None:
        """The command that makes the local image, when it is one of Forgeline's recipes."""
        return _BUILD_COMMANDS.get(self.local)

    def missing_message(self) -> str:
        """What to tell the user when the mapped local image is not on this host."""
        how = (
            f"build it with `{self.build_command}`"
            if self.build_command
            else "build or `docker load` it"
        )
        return (
            f"Unable to pull customer's container image. Image {self.requested!r} runs as "
            f"the local image {self.local!r} on Forgeline, which is not on this host: {how}, "
            "or map the name to another local image with FORGELINE_BUILD_IMAGE_MAP."
        )


def parse_image_map(text: str) -> dict[str, str]:
    """`name=image,name=image` (spaces and empty items ignored) -> {name: image}."""
    mapping: dict[str, str] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, image = item.partition("=")
        if not sep or not name.strip() or not image.strip():
            raise ImageMapError(
                f"FORGELINE_BUILD_IMAGE_MAP: {item!r} is not of the form aws-name=local-image"
            )
        mapping[_canonical(name.strip())] = image.strip()
    return mapping


def curated_family(name: str) -> str | None:
    """The curated repository name (e.g. "standard") of an AWS image name, else None."""
    for prefix in _PREFIXES:
        if name.startswith(prefix):
            repository, sep, tag = name[len(prefix) :].partition(":")
            if sep and tag and repository in CURATED:
                return repository
    return None


def choose_local_image(
    requested: str, overrides: Mapping[str, str], present: Callable[[str], bool]
) -> ImageChoice:
    """The image the runner uses for REQUESTED: an override, a curated default, or itself.

    PRESENT says whether a local image exists; it only decides between the runtimes
    image and the standard one for a curated name.
    """
    override = overrides.get(_canonical(requested))
    if override is not None:
        return ImageChoice(requested, override, override != requested)
    if curated_family(requested) is None:
        return ImageChoice(requested, requested, False)
    local = RUNTIMES_IMAGE if present(RUNTIMES_IMAGE) else STANDARD_IMAGE
    return ImageChoice(requested, local, True)


def curated_names() -> list[str]:
    """Every documented curated name, in AWS's `aws/codebuild/<name>:<tag>` form."""
    return [
        f"aws/codebuild/{repository}:{tag}" for repository, tags in CURATED.items() for tag in tags
    ]


def _canonical(name: str) -> str:
    # The ECR Public spelling and the short one name the same image.
    if name.startswith(_PREFIXES[0]):
        return _PREFIXES[1] + name[len(_PREFIXES[0]) :]
    return name
