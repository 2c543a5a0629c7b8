"""Celery is imported only by the tasks (`workers/`, shipped as `vsmmon.workers`) and the worker plugin; the rest of
`vsmmon/` imports no task module, and nothing anywhere imports a top-level `workers` or `beat_schedule`."""

import ast
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import vsmmon

ROOT = Path(vsmmon.__file__).parent
CELERY_ALLOWED = {"vsmmon.agent.plugin"}
TASKS = "vsmmon.workers"  # the symlink vsmmon/workers -> ../workers
REPO = ROOT.parent


def library_modules() -> list[str]:
    names = [m.name for m in pkgutil.walk_packages([str(ROOT)], prefix="vsmmon.")]
    tasks = [n for n in names if n == TASKS or n.startswith(TASKS + ".")]
    return sorted(n for n in names if n not in CELERY_ALLOWED and n != "vsmmon.__main__" and n not in tasks)


def test_the_library_imports_without_celery_and_without_reading_the_environment() -> None:
    modules = library_modules()
    assert "vsmmon.cli" in modules
    assert "vsmmon.store.postgres" in modules
    code = (
        "import importlib, os, sys\n"
        "reads = []\n"
        "real = os.environ.__class__.__getitem__\n"
        "def spy(self, key):\n"
        "    frame = sys._getframe(1)\n"
        "    while frame.f_code.co_filename.endswith(('os.py', '_collections_abc.py', 'os>', '_collections_abc>')):\n"
        "        frame = frame.f_back\n"
        "    if '/vsmmon/' in frame.f_code.co_filename:\n"
        "        reads.append((key, frame.f_code.co_filename))\n"
        "    return real(self, key)\n"
        "os.environ.__class__.__getitem__ = spy\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "tasks = ('celery.', 'workers', 'vsmmon.workers')\n"
        "bad = sorted(m for m in sys.modules if m == 'celery' or m.startswith(tasks))\n"
        "print(bad, reads)\n"
        "sys.exit(1 if bad or reads else 0)\n"
    )
    env = {**os.environ, "VSMMON_HTTP_PORT": "8123", "VSMMON_DATA_DIR": "/nonexistent"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, env=env)
    assert result.returncode == 0, result.stdout + result.stderr


def imported_names(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names += [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
    return names


def names_tasks(names: list[str]) -> bool:
    return any(n == TASKS or n.startswith(TASKS + ".") for n in names)


def test_no_library_module_names_the_tasks_except_the_cli_composition_root_modules() -> None:
    library = [p for p in ROOT.rglob("*.py") if "workers" not in p.relative_to(ROOT).parts]  # rglob: no symlinks
    assert len(library) > 50
    offenders = [str(p.relative_to(ROOT)) for p in library if names_tasks(imported_names(p)) and p.parent.name != "cli"]
    assert offenders == []
    assert names_tasks(imported_names(ROOT / "cli" / "main.py"))  # the check sees an import of the tasks


def test_nothing_imports_a_top_level_workers_or_beat_schedule() -> None:
    """A top-level `workers.app` beside `vsmmon.workers.app` would be a second Celery app, and the distribution
    ships neither name: every import of the tasks goes through `vsmmon.workers`."""
    paths = [p for d in ("vsmmon", "workers", "tests", "bench", "alembic") for p in (REPO / d).rglob("*.py")]
    paths += [REPO / "beat_schedule.py"]
    top = ("workers", "beat_schedule")
    offenders = sorted({str(p.relative_to(REPO)) for p in paths
                        if any(n.split(".")[0] in top for n in imported_names(p))})  # fmt: skip
    assert len(paths) > 100
    assert offenders == []


def test_the_tasks_are_the_top_level_workers_directory_under_the_library_name() -> None:
    assert (ROOT / "workers").is_symlink()
    assert (ROOT / "workers").resolve() == (REPO / "workers").resolve()
    assert (REPO / "workers" / "beat_schedule.py").resolve() == (REPO / "beat_schedule.py").resolve()
