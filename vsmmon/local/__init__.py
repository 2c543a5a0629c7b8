"""`vsmmon up`: the whole pipeline on one machine. `up.up` runs it; `embedded` starts the embedded
PostgreSQL and Redis (closed to other local users: `_sandbox`), `processes` supervises the child
processes, `runfile` is `run.json` (how the CLI finds a running instance).
"""
