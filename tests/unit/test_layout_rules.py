"""The layout's rules, read from the source: the core names no service, services meet
only through declared interfaces, and every hook between them is a manifest's line."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from forgeline.core.manifest import hook_lists, resolve, service_manifests
from forgeline.core.service_names import SERVICE_NAMES

PACKAGE = Path(__file__).resolve().parents[2] / "services" / "forgeline"
SERVICE_PACKAGES = frozenset(
    path.name for path in PACKAGE.iterdir() if (path / "__init__.py").is_file()
) - {"core", "cli"}


def _modules(folder: Path) -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(folder.rglob("*.py")):
        relative = path.relative_to(folder).as_posix()
        yield relative, ast.parse(path.read_text(), filename=str(path))


def _imported(tree: ast.Module) -> Iterator[str]:
    """Every module name the code imports, `from forgeline import x` as `forgeline.x`."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def _service_of(module: str) -> str | None:
    parts = module.split(".")
    if len(parts) >= 2 and parts[0] == "forgeline" and parts[1] in SERVICE_PACKAGES:
        return parts[1]
    return None


def test_the_service_packages_are_found():
    assert {"codecommit", "codebuild", "logs", "s3"} <= SERVICE_PACKAGES


def test_core_imports_no_service_package():
    offenders = [
        f"core/{relative} imports {module}"
        for relative, tree in _modules(PACKAGE / "core")
        for module in _imported(tree)
        if _service_of(module)
    ]
    assert offenders == [], "the core reads services through forgeline/manifests.py only"


def test_codebuild_reaches_codecommit_only_through_its_interface():
    interface = "forgeline.codecommit.interface"
    offenders = [
        f"codebuild/{relative} imports {module}"
        for relative, tree in _modules(PACKAGE / "codebuild")
        for module in _imported(tree)
        if _service_of(module) == "codecommit"
        and module != "forgeline.codecommit"  # `from forgeline.codecommit import interface`
        and not (module == interface or module.startswith(interface + "."))
    ]
    assert offenders == [], "use forgeline.codecommit.interface"


def test_no_module_subscribes_a_listener_itself():
    """Listeners are a manifest's subscriptions, never an `.append` at import time."""
    offenders = [
        f"{relative}:{node.lineno}"
        for relative, tree in _modules(PACKAGE)
        if not relative.startswith("core/")
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("append", "extend", "insert")
        and isinstance(node.func.value, ast.Attribute | ast.Name)
        and (getattr(node.func.value, "attr", None) or getattr(node.func.value, "id", ""))
        .upper()
        .endswith("LISTENERS")
    ]
    assert offenders == []


def test_one_manifest_per_service_app():
    manifests = service_manifests()
    assert sorted(manifest.service for manifest in manifests) == sorted(SERVICE_NAMES)
    assert len({manifest.name for manifest in manifests}) == len(manifests)
    for manifest in manifests:
        assert manifest.name in SERVICE_PACKAGES


def test_every_subscription_names_a_declared_hook():
    hooks = hook_lists(service_manifests())
    for manifest in service_manifests():
        for subscription in manifest.subscriptions:
            assert subscription.hook in hooks, (manifest.name, subscription.hook)


@pytest.mark.parametrize("manifest", service_manifests(), ids=lambda manifest: manifest.name)
def test_every_reference_of_a_manifest_resolves(manifest):
    hooks = [hook.listeners for hook in manifest.hooks]
    for reference in hooks:
        assert isinstance(resolve(reference), list), reference
    callables = [
        *manifest.http_mounts,
        *manifest.endpoints,
        *(subscription.listener for subscription in manifest.subscriptions),
        *manifest.on_worker_start,
        *manifest.on_worker_stop,
        *manifest.on_server_stopping,
    ]
    for reference in callables:
        assert callable(resolve(reference)), reference
    for module in manifest.table_modules + manifest.task_modules:
        resolve(f"{module}:__name__")
