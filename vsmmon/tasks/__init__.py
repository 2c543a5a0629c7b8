"""Task-level insight: what Flower is opened for (which task fails, how slow it is, where it waits).

- `table`: the pure entry point, `task_rows(agents, reader, interval_s)`: one `TaskRow` per task name across
  the live workers (rate, failure ratio, retries, runtime and queue-wait percentiles, trends), and
  `task_charts` for one name's last hour.
- `failures`: the failures a worker's reply carries (`parse_failures`, pure) and `FailureBook`, the last
  failures of each task name across the fleet, kept in Redis.
- `queues`: the pure `queue_rows(agents, flows)`: one `QueueRow` per live queue (length, consumers, oldest
  message, arrivals, drain, when it empties), and `queue_charts` for one queue's last hour.
- `reads`: the tables and details as JSON, what the API and the CLI answer with.
"""
