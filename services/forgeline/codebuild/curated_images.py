"""ListCuratedEnvironmentImages: the build images this server can run, by platform and
language.

The local Forgeline images are listed under DEBIAN; AWS's curated names under UBUNTU or
AMAZON_LINUX when the local image they run as is present (aws_images.py maps them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from forgeline.codebuild import aws_images, images
from forgeline.codebuild.generated import shapes

# The model's LanguageType for each runtime name an image's label declares.
_LANGUAGES = {
    "python": "PYTHON",
    "java": "JAVA",
    "nodejs": "NODE_JS",
    "ruby": "RUBY",
    "golang": "GOLANG",
    "php": "PHP",
    "dotnet": "DOTNET",
    "android": "ANDROID",
    "docker": "DOCKER",
}


def curated_images(image_map: Mapping[str, str] | None = None) -> list[shapes.EnvironmentPlatform]:
    """ListCuratedEnvironmentImages' `platforms`: the local Forgeline images (DEBIAN), and
    AWS's curated names whose mapped local image is present (UBUNTU, AMAZON_LINUX).

    Every image is listed under BASE and under each language it has a runtime of (an AWS
    name: each language of the local image it runs as).
    """
    local = images.list_images()
    runtimes = {entry["image"]: entry["runtimes"] for entry in local}
    platforms: dict[str, dict[str, list[shapes.EnvironmentImage]]] = {}

    def add(platform: str, image: shapes.EnvironmentImage, runtime_names: Iterable[str]) -> None:
        languages = ["BASE"] + [_LANGUAGES[name] for name in runtime_names if name in _LANGUAGES]
        for language in languages:
            platforms.setdefault(platform, {}).setdefault(language, []).append(image)

    for entry in local:
        created = str(entry["created"])[:10].replace("-", ".")
        add(
            "DEBIAN",
            {
                "name": entry["image"],
                "description": entry["description"] or entry["kind"],
                "versions": [f"{entry['image']}-{created}" if created else entry["image"]],
            },
            entry["runtimes"],
        )

    overrides = dict(image_map or {})
    present: dict[str, bool] = {}

    def is_present(ref: str) -> bool:
        if ref not in present:
            present[ref] = ref in runtimes or images.image_present(ref)
        return present[ref]

    names = aws_images.curated_names() + [
        name for name in overrides if name not in aws_images.curated_names()
    ]
    for name in names:
        family = aws_images.curated_family(name)
        if family is None:
            continue  # an override of a non-AWS name is not a curated image
        choice = aws_images.choose_local_image(name, overrides, is_present)
        if not is_present(choice.local):
            continue
        add(
            "UBUNTU" if family == "standard" else "AMAZON_LINUX",
            {
                "name": name,
                "description": f"AWS CodeBuild's {name}, run here as {choice.local}",
                "versions": [name],
            },
            runtimes.get(choice.local, {}),
        )
    return [
        {
            "platform": platform,
            "languages": [
                {"language": language, "images": found}
                for language, found in sorted(languages.items())
            ],
        }
        for platform, languages in sorted(platforms.items())
    ]
