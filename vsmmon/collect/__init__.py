"""The collection stage: one cycle's figures from every agent, and who is alive.

- `collector`: the pure entry point, `collect(...)`: worker replies, host, queue and pushed reports -> `Collection`.
- `broker`: queue probes (Redis, RabbitMQ): lengths, oldest message, consumers, the broker's own figures.
- `registry`: liveness (`evaluate`: online, stale, offline) and what the live views show.
- `screen`: the algedonic screen of each collection (pain that cannot wait for the next health check).
- `staging`: the Redis buffer between collection and the database (staged collections, pushed reports).
- `selfreport`: the pipeline's own processes reporting themselves as agents.
"""
