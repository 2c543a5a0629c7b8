"""Scenario suite with labelled truth (`python -m bench.scenarios`, `make scenarios`).

Each scenario runs its own vsmmon pipeline (worker, beat, HTTP service when agents push) against the
machine's PostgreSQL and Redis, with time compressed, drives a real fleet (Celery workers with the plugin,
`vsmmon simulate`) through a fault or a planned change, and judges the alerts and S3 actions the pipeline
recorded against what must, may and must not happen (`truth`). Results go to BENCHMARKS.md ("Scenarios").
"""
