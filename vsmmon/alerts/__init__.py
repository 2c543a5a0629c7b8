"""The alert manager: signals from every stage in, alerts and notifications out.

- `model`: the values (`Signal`, `Alert`, `Silence`, `Notification`, `Event`, `AlertPolicy`, `AlertState`).
- `manager`: the pure lifecycle, `step(state, signals, now, policy)`, and `acknowledge` / `resolve` / silences.
- `routing`: stage outputs as signals (`signals_from_assessment`, `signal_from_recommendation`,
  `signals_from_pain`) and the Alertmanager payload.
- `book`: the ledger in Redis (state, cooldowns, each source's latest signals) under a lock.
- `desk`: what the API, the CLI and the workers do to it (`report`, `acknowledge`, `resolve`, silences).
- `codec`: alerts, signals and notifications as JSON.
- `alertmanager`: alerts as Alertmanager's API v2 takes them (`POST /api/v2/alerts`), the way Prometheus sends them.
"""
