"""The built wheel: the tasks ship as `vsmmon.workers`, no top-level `workers` or `beat_schedule` beside them.

A monitored app's own `workers` package (a common name) would collide with a top-level one in site-packages.
The wheel is built from a copy of this checkout (links kept as links, as git keeps them), so the repository
gets no `build/` or egg-info from the test.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SKIP = shutil.ignore_patterns(".git", ".venv", ".matrix", ".vsmmon", "*.egg-info", "build", "dist", "__pycache__",
                              ".*_cache", ".hypothesis", "node_modules")  # fmt: skip


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    source = tmp_path_factory.mktemp("source") / "vsmmon"
    shutil.copytree(REPO, source, symlinks=True, ignore=SKIP)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check", "--no-deps",
                    "-w", str(out), str(source)], check=True, timeout=600)  # fmt: skip
    (wheel,) = out.glob("vsmmon-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def test_the_wheel_ships_every_task_module_under_vsmmon_workers(wheel_names: set[str]) -> None:
    tasks = {f"vsmmon/workers/{p.name}" for p in (REPO / "workers").glob("*.py")}
    assert "vsmmon/workers/app.py" in tasks
    assert "vsmmon/workers/beat_schedule.py" in tasks
    assert tasks - wheel_names == set()


def test_the_wheel_installs_no_top_level_workers_or_beat_schedule(wheel_names: set[str]) -> None:
    tops = {name.split("/")[0] for name in wheel_names if not name.startswith("vsmmon-")}
    assert tops == {"vsmmon"}, tops  # and the dist-info, filtered above
    assert "vsmmon/__init__.py" in wheel_names
    assert "vsmmon/agent/plugin.py" in wheel_names
