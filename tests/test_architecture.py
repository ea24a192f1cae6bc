"""The layering rule's second half (README, "Architecture"): no project import inside a function.

import-linter (`make lint`) checks that every import points down a layer, wherever it is written. An
import written inside a function was the old way of dodging an import cycle; with the layers in place
there is no cycle to dodge, so a project module is imported at the top of the module that needs it,
where a reader sees what the module depends on."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = (
    "accounts",
    "api",
    "compliance",
    "cs_platform",
    "dashboards",
    "journeys",
    "metrics",
    "monitoring",
    "nightly",
    "provisioning",
    "scorecards",
    "segments",
    "webhooks",
)


# Modules loaded before Django's app registry is ready, where a top-level import of a model module
# would fail: the settings' logging config, the Celery app module, gunicorn's hooks.
BEFORE_DJANGO = {
    "cs_platform/celery.py",
    "cs_platform/observability/gunicorn_hooks.py",
    "cs_platform/observability/logs.py",
}


def _modules() -> list[Path]:
    files = []
    for package in PACKAGES:
        files += [p for p in (ROOT / package).rglob("*.py") if "migrations" not in p.parts]
    return sorted(files)


def _imported(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        return [node.module]
    if isinstance(node, ast.ImportFrom) and node.level:
        return ["."]  # a relative import is always the project's own
    return []


def local_project_imports(path: Path) -> list[str]:
    """`path:line module` for every project import inside a function of `path`."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    if str(path.relative_to(ROOT)) in BEFORE_DJANGO:
        return []
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if path.name == "apps.py" and function.name == "ready":
            continue  # Django's place for wiring signal receivers once every model is loaded
        for node in ast.walk(function):
            for module in _imported(node):
                if module == "." or module.split(".")[0] in PACKAGES:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} {module}")
    return sorted(set(found))


def test_the_scan_finds_an_import_inside_a_function(tmp_path):
    # The check itself: a function-level project import is found, a module-level one and a library's are not.
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from metrics.models import NightlyRun\n"
        "def f():\n"
        "    import json\n"
        "    from accounts.models import Account\n"
        "    return Account\n"
    )
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        assert local_project_imports(sample) == ["sample.py:4 accounts.models"]
    finally:
        ROOT = saved


def test_no_project_module_is_imported_inside_a_function():
    found = [line for path in _modules() for line in local_project_imports(path)]
    assert not found, "Import these at the top of the module (README, Architecture):\n" + "\n".join(found)
