"""Package boundaries: private modules stay inside their package; the agent ships without the server.

A module whose name starts with `_` (`vsmmon/store/_tables.py`) is private to its package: only modules
of that package import it. Checked on the code that uses the library as others would (`vsmmon/`,
`workers/` with `beat_schedule.py`, shipped as `vsmmon.workers`, `alembic/`, `bench/`); tests may reach into a
private module to test it. (`rglob` walks no symlink, so `vsmmon/workers` is not read twice.)
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHECKED = ("vsmmon", "workers", "beat_schedule.py", "alembic", "bench")
KERNEL = {"vsmmon", "vsmmon.codec", "vsmmon.config", "vsmmon.errors", "vsmmon.models", "vsmmon.names",
          "vsmmon.redact", "vsmmon.sketch"}  # fmt: skip
AGENT_THIRD_PARTY = {"celery", "kombu", "billiard", "psutil", "httpx"}  # billiard: Celery's own pool library


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[0] in ("workers", "beat_schedule"):  # the tasks' name as shipped (the symlink vsmmon/workers)
        parts = ["vsmmon", "workers", *parts[1:]] if parts[0] == "workers" else ["vsmmon", "workers", *parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported(tree: ast.AST) -> Iterator[str]:
    """Every module name an import statement names (`from a import b` names `a` and `a.b`)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{a.name}" for a in node.names)


def private_package(name: str) -> str | None:
    """`a.b._c.d` -> `a.b` (the package `_c` is private to), or None when nothing in the name is private."""
    parts = name.split(".")
    for i, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[:i])
    return None


def violations(root: Path, targets: Iterable[str]) -> list[str]:
    found = []
    for target in targets:
        paths = [root / target] if target.endswith(".py") else sorted((root / target).rglob("*.py"))
        for path in paths:
            importer = module_name(path, root)
            for name in imported(ast.parse(path.read_text(), str(path))):
                owner = private_package(name)
                if owner is not None and owner and not (importer == owner or importer.startswith(owner + ".")):
                    found.append(f"{path.relative_to(root)} imports {name}, private to {owner}")
    return sorted(set(found))


def test_no_private_module_is_imported_from_outside_its_package() -> None:
    assert violations(REPO, CHECKED) == []


def test_the_check_finds_a_private_module_imported_from_outside(tmp_path: Path) -> None:
    (tmp_path / "pkg" / "inner").mkdir(parents=True)
    for init in ("pkg/__init__.py", "pkg/inner/__init__.py"):
        (tmp_path / init).write_text("")
    (tmp_path / "pkg" / "inner" / "_secret.py").write_text("X = 1\n")
    (tmp_path / "pkg" / "inner" / "public.py").write_text("from pkg.inner._secret import X\n")  # inside: fine
    (tmp_path / "pkg" / "outside.py").write_text("from pkg.inner import _secret\n")
    (tmp_path / "other.py").write_text("import pkg.inner._secret\n")
    assert violations(tmp_path, ["pkg", "other.py"]) == [
        "other.py imports pkg.inner._secret, private to pkg.inner",
        "pkg/outside.py imports pkg.inner._secret, private to pkg.inner",
    ]


def test_at_most_a_dozen_modules_stay_at_the_top_of_the_library() -> None:
    top = sorted(p.name for p in (REPO / "vsmmon").glob("*.py"))
    assert len(top) <= 12, top
    assert not [n for n in top if n.startswith(("alert_", "health_", "cli_"))]


def test_no_module_is_over_400_lines() -> None:
    long = {str(p.relative_to(REPO)): n for p in (REPO / "vsmmon").rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 400}  # fmt: skip
    assert long == {}


def test_every_package_names_its_entry_points() -> None:
    for init in (REPO / "vsmmon").rglob("__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc, f"{init.relative_to(REPO)} has no docstring"
        assert len(doc) > 40, f"{init.relative_to(REPO)}: a docstring that names no entry points"


def test_the_agent_imports_nothing_of_the_server() -> None:
    """Importing every agent module loads only the agent and the kernel of vsmmon (in a fresh interpreter),
    and those import, of third parties, only Celery/kombu, psutil and httpx (read from their source)."""
    agent = sorted(module_name(p, REPO) for p in (REPO / "vsmmon" / "agent").rglob("*.py"))
    code = f"import importlib, sys\nfor name in {agent!r}: importlib.import_module(name)\nprint(*sys.modules)\n"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    ours = {m for m in result.stdout.split() if m == "vsmmon" or m.startswith("vsmmon.")}
    assert {m for m in ours if not m.startswith("vsmmon.agent")} - KERNEL == set()
    foreign = set()
    for name in ours:
        path = REPO / (name.replace(".", "/") + ".py")
        path = path if path.exists() else REPO / name.replace(".", "/") / "__init__.py"
        foreign |= {m.split(".")[0] for m in imported(ast.parse(path.read_text())) if not m.startswith("vsmmon")}
    assert foreign - set(sys.stdlib_module_names) - {"__future__"} <= AGENT_THIRD_PARTY
