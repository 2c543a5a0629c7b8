"""`vsmmon up`: the whole pipeline on one machine. `up.up` runs it; `embedded` starts the embedded
PostgreSQL and Redis, `processes` supervises the child processes, `runfile` is `run.json` (how the CLI
finds a running instance).
"""
