"""The analysis stage: trends, forecasts, capacity plans and recommendations from the real-time window.

- `analysis`: the one entry point, `analyse_fleet(now, memory, series, queues)`, and forecast accuracy (`observe`).
- `trends`: least-squares fits with their significance, Holt, robust anomaly score, level-shift change point.
- `forecast`: time to a limit, horizon forecasts with prediction intervals, capacity plans.
- `recommend`: recommendations (restart, resource adjustment, scale out) from those, deduplicated.
"""
