"""Celery is imported only in `workers/` and the worker plugin; nothing in `vsmmon/` imports `workers/`."""

import ast
import os
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
        "bad = sorted(m for m in sys.modules if m == 'celery' or m.startswith(('celery.', 'workers')))\n"
        "print(bad, reads)\n"
        "sys.exit(1 if bad or reads else 0)\n"
    )
    env = {**os.environ, "VSMMON_HTTP_PORT": "8123", "VSMMON_DATA_DIR": "/nonexistent"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, env=env)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_library_module_names_workers_except_the_cli_composition_root_modules() -> None:
    offenders = []
    for path in ROOT.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n == "workers" or n.startswith("workers.") for n in names) and path.parent.name != "cli":
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
