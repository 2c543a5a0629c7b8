"""The health monitor: scores of every agent, of S1-S5 and of the system's viability.

- `assessment`: the one entry point, `evaluate(now, agents, queues, control, previous)` -> `HealthAssessment`.
- `agents`: agent health h (liveness, memory, queue, task factors) and S1; `systems`: S2-S5;
  `viability`: bands with hysteresis and the viability formula with its caps.
- `inputs`: what an assessment reads (`gather`: registry, real-time window, queue flows).
- `audit`: the S3* audit (pick a worker, judge what it said against what was seen).
- `codec`: assessments as JSON and as `health_assessments` rows.
"""
