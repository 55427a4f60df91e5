"""Build images made on this machine, and builds run here without a server."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from forgeline.cli.boundary import Command, Group


@click.group("images", cls=Group)
def images_group() -> None:
    """Local build images (made from a root filesystem; no registry needed)."""


@images_group.command("build")
@click.argument("kind", type=click.Choice(["standard", "tiny"]), default="standard")
@click.option(
    "--runtimes",
    is_flag=True,
    help="Add Debian's language runtimes (standard only); tagged forgeline/standard:runtimes.",
)
@click.option(
    "--tag",
    default=None,
    help="Image reference (default forgeline/<kind>:latest, or forgeline/standard:runtimes "
    "with --runtimes).",
)
def images_build(kind: str, runtimes: bool, tag: str | None) -> None:
    """Build the standard (debootstrap, about a minute) or tiny (BusyBox) image."""
    from forgeline.codebuild import images

    click.echo(images.build_image(kind, runtimes=runtimes, tag=tag, progress=click.echo))


@images_group.command("list")
def images_list() -> None:
    """List the local Forgeline build images and the runtimes each holds."""
    from forgeline.codebuild import images

    click.echo(json.dumps(images.list_images(), indent=2))


@click.command("build-local", cls=Command)
@click.option(
    "--source",
    "-s",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=".",
    show_default=True,
    help="Source directory (copied into the build, never changed).",
)
@click.option(
    "--secondary-source",
    "secondary_sources",
    multiple=True,
    metavar="ID:DIR",
    help="A secondary source directory, copied to CODEBUILD_SRC_DIR_<ID> (repeatable).",
)
@click.option(
    "--buildspec",
    "-b",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Buildspec file (default: buildspec.yml in the source directory).",
)
@click.option("--image", "-i", default=None, help="Build image (Docker runner).")
@click.option(
    "--runner",
    type=click.Choice(["auto", "docker", "host"]),
    default="auto",
    show_default=True,
    help="auto: Docker when an engine answers, else host processes.",
)
@click.option(
    "--artifacts",
    "-a",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory the build's artifacts are written to.",
)
@click.option(
    "--packaging",
    type=click.Choice(["ZIP", "NONE"], case_sensitive=False),
    default="ZIP",
    show_default=True,
    help="ZIP writes artifacts.zip and <id>.zip per secondary artifact; NONE writes the "
    "files, each secondary artifact's in <id>/.",
)
@click.option(
    "--reports",
    "-r",
    "report_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory the report groups' files are copied to (<group>/...).",
)
@click.option(
    "--env-file",
    "-e",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="KEY=VALUE lines added to the build's environment variables.",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the LOCAL cache is kept between runs "
    "(default ~/.cache/forgeline/build-local/<hash of the source path>).",
)
@click.option("--no-cache", is_flag=True, help="Neither restore nor save the cache.")
@click.option(
    "--compute-type", default="BUILD_GENERAL1_SMALL", show_default=True, help="CPU/memory size."
)
@click.option("--privileged", is_flag=True, help="Privileged mode (e.g. Docker in the build).")
def build_local(
    source: Path,
    secondary_sources: tuple[str, ...],
    buildspec: Path | None,
    image: str | None,
    runner: str,
    artifacts: Path | None,
    packaging: str,
    report_dir: Path | None,
    env_file: Path | None,
    cache_dir: Path | None,
    no_cache: bool,
    compute_type: str,
    privileged: bool,
) -> None:
    """Run a buildspec on this machine, without a server (like AWS's local CodeBuild agent).

    Exits 0 when the build SUCCEEDED, 1 otherwise, 2 for a command line that cannot be built.
    """
    from forgeline.codebuild import local

    try:
        secondary = tuple(local.parse_secondary_source(text) for text in secondary_sources)
    except local.LocalBuildUsageError as exc:
        raise click.UsageError(str(exc)) from None
    options = local.LocalBuildOptions(
        source=source,
        secondary_sources=secondary,
        buildspec=buildspec,
        image=image,
        runner=runner,
        artifacts=artifacts,
        packaging=packaging.upper(),
        report_dir=report_dir,
        env_file=env_file,
        cache_dir=cache_dir,
        use_cache=not no_cache,
        compute_type=compute_type,
        privileged=privileged,
    )
    try:
        status = local.run_local_build(options, click.echo)
    except local.LocalBuildUsageError as exc:
        raise click.UsageError(str(exc)) from None
    sys.exit(status)
