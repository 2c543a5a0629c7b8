"""Celery is imported only in `workers/` and the worker plugin; nothing in `vsmmon/` imports `workers/`."""

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import vsmmon

ROOT = Path(vsmmon.__file__).parent
CELERY_ALLOWED = {"vsmmon.agent.plugin"}


def library_modules() -> list[str]:
    names = [m.name for m in pkgutil.walk_packages([str(ROOT)], prefix="vsmmon.")]
    return sorted(n for n in names if n not in CELERY_ALLOWED and n != "vsmmon.__main__")


def test_the_library_imports_without_celery_and_without_reading_the_environment() -> None:
    modules = library_modules()
    assert "vsmmon.cli" in modules
    assert "vsmmon.storage.postgres" in modules
    code = (
        "import importlib, os, sys\n"
        "reads = []\n"
        "real = os.environ.__class__.__getitem__\n"
        "os.environ.__class__.__getitem__ = lambda self, k: reads.append(k) or real(self, k)\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m == 'celery' or m.startswith(('celery.', 'workers')))\n"
        "vsm = [k for k in reads if k.startswith('VSMMON_')]\n"
        "print(bad, vsm)\n"
        "sys.exit(1 if bad or vsm else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_library_module_names_workers_except_the_cli_composition_root() -> None:
    offenders = []
    for path in ROOT.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n == "workers" or n.startswith("workers.") for n in names) and path.name != "cli.py":
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
