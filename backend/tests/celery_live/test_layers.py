"""The package's rooms: imports run one way down the event's path, and never into the demo host.

Read from the source (not by importing it), so a new module is checked the day it lands.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import celery_live

PACKAGE_DIR = Path(celery_live.__file__).resolve().parent

#: Stage -> the stages (and top-level modules) its modules may import. The log is the
#: base; what runs in Celery's processes and the runs build on it; the live stream on the
#: runs; control (what is sent to Celery) on the runs; the pages (web) and the JSON API
#: (api) side by side on everything below them, the terminal on the runs.
ALLOWED = {
    "conf": set(),
    "access": {"conf"},
    "validation": set(),
    "declarations": set(),
    "launchable": {"conf", "declarations"},
    "scenarios": {"access", "conf", "declarations", "log"},
    "log": {"conf"},
    "worker": {"conf", "log"},
    "bridge": {"conf", "log"},
    "runs": {"conf", "log", "validation"},
    "stream": {"access", "conf", "launchable", "log", "runs"},
    "control": {"conf", "launchable", "log", "runs", "validation"},
    "web": {"access", "conf", "control", "launchable", "log", "runs", "scenarios", "stream", "validation"},
    "api": {"access", "conf", "control", "launchable", "log", "runs", "scenarios", "validation"},
    "terminal": {"conf", "log", "runs"},
    "processes": {"conf"},
    # the `celery-live` command: a Django project of its own around the app
    "standalone": {"conf", "processes", "stream"},
}
#: Django's and Celery's entry points: they wire the stages together and may import any.
ENTRY_POINTS = {"apps", "urls", "models", "tasks", "management", "migrations", "__init__"}


def stage_of(path: Path) -> str:
    part = path.relative_to(PACKAGE_DIR).parts[0]
    return part.removesuffix(".py")


def imported_modules(path: Path) -> list[str]:
    """Absolute names of the modules `path` imports (relative imports resolved)."""
    module = ".".join(("celery_live", *path.relative_to(PACKAGE_DIR).with_suffix("").parts))
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = module.rsplit(".", node.level)[0]
                base = f"{parent}.{base}" if base else parent
            names += [f"{base}.{alias.name}" for alias in node.names]
    return names


SOURCES = sorted(p for p in PACKAGE_DIR.rglob("*.py") if "migrations" not in p.parts)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE_DIR)))
def test_imports_only_go_down_the_stages(path):
    stage = stage_of(path)
    if stage in ENTRY_POINTS:
        return
    assert stage in ALLOWED, f"{stage}/ is a new room: add it to ALLOWED with what it may import"
    upward = [
        name
        for name in imported_modules(path)
        if name.startswith("celery_live.")
        and name.split(".")[1] != stage
        and name.split(".")[1] not in ALLOWED[stage]
    ]
    assert not upward, f"{path.relative_to(PACKAGE_DIR)} imports up the stages: {upward}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE_DIR)))
def test_the_app_never_imports_the_demo_host(path):
    host = [n for n in imported_modules(path) if n.split(".")[0] in {"config", "apps", "tests"}]
    assert not host, f"{path.relative_to(PACKAGE_DIR)} imports the demo host: {host}"
