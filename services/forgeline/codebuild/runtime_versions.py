"""A buildspec's `runtime-versions` against what a build image holds.

Forgeline's images declare their runtimes in a label (images.py probes them when it builds
the image); the install phase asks for runtimes by name and version, and a version the
image lacks fails the build with AWS's message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from forgeline.codebuild import images


def check_runtime_versions(image_ref: str, requested: Mapping[str, Sequence[str]]) -> str | None:
    """Why IMAGE_REF cannot serve the buildspec's runtime-versions, or None when it can.

    An image without Forgeline's label (a custom image) is not checked: what it holds is
    its owner's business, as on CodeBuild.
    """
    if not requested:
        return None
    labels = images.image_labels(image_ref)
    if labels is None:
        # A missing image (or engine) fails the build when the runner prepares it.
        return None
    if images.IMAGE_LABEL not in labels:
        return None
    available = images.parse_runtimes_label(labels.get(images.RUNTIMES_LABEL))
    return runtime_versions_error(available, requested)


def runtime_versions_error(
    available: Mapping[str, Sequence[str]], requested: Mapping[str, Sequence[str]]
) -> str | None:
    """The AWS-style error for the first requested runtime version AVAILABLE lacks."""
    for runtime, versions in requested.items():
        have = available.get(runtime)
        if have is None:
            names = ", ".join(sorted(available)) or "none"
            return (
                f"Unknown runtime named '{runtime}'. This build image has the following "
                f"runtimes: {names}"
            )
        for version in versions:
            if not any(version_matches(str(version), offered) for offered in have):
                return (
                    f"Unknown runtime version named '{version}' of {runtime}. This build "
                    f"image has the following versions: {', '.join(have)}"
                )
    return None


def version_matches(requested: str, offered: str) -> bool:
    """ "latest", an exact version, or a prefix ending at a dot ("3" ~ "3.11", "8" ~ "8.2").

    Vendor prefixes are ignored so "corretto17" asks for the same Java as "openjdk17", and
    a trailing ".x" ("18.x") means the major version.
    """
    wanted = _plain_version(requested)
    have = _plain_version(offered)
    if wanted == "latest":
        return True
    return bool(wanted) and (have == wanted or have.startswith(wanted + "."))


def _plain_version(version: str) -> str:
    version = version.strip().lower()
    if version == "latest":
        return version
    version = re.sub(r"^[a-z]+(?=\d)", "", version)
    return re.sub(r"(\.x)+$", "", version)
