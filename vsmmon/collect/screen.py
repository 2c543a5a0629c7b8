"""The algedonic screen: hard conditions read off a collection the moment it arrives, so pain reaches S5
within a collection cycle instead of waiting for the next 30 s health check (seed: critical alert < 500 ms).

Only what one collection proves is screened:
- broker unreachable: a broker report carries an error (the probe could not read it);
- a queue holding messages that no worker of this collection consumes — judged only when every expected
  worker answered, since a worker that timed out may well be consuming it.
The fleet error rate and a fast viability drop need history; the health check judges those. The signals
are the `Pain` values `vsmmon.health.assessment.pain` makes, with the same condition and target, so they have
the fingerprints of `vsmmon.alerts.routing.signals_from_assessment`'s algedonic ones: the screen and the health
check report one alert, not two.
"""

from __future__ import annotations

from vsmmon.alerts.model import Signal
from vsmmon.alerts.routing import signals_from_pain
from vsmmon.models import AgentKind, Collection, Pain, PainCondition


def pain(collection: Collection) -> tuple[Pain, ...]:
    """The algedonic pain this collection alone proves, as `vsmmon.health.assessment.pain` reports it."""
    found = []
    for report in collection.reports:
        if report.kind is AgentKind.BROKER and report.errors:
            found += [Pain(PainCondition.UNREACHABLE, "broker", detail=f"{report.agent_id}: {e}")
                      for e in report.errors.values()]  # fmt: skip
    if not collection.unreachable:
        consumed = {q for r in collection.reports if r.kind is AgentKind.CELERY_WORKER for q in r.queues}
        for report in collection.reports:
            if report.kind is not AgentKind.QUEUE:
                continue
            name, backlog = report.agent_id.removeprefix("queue:"), report.metrics.get("messages", 0.0)
            if backlog > 0 and name not in consumed:
                found.append(Pain(PainCondition.NO_CONSUMER, f"queue {name}", backlog))
    return tuple(found)


def screen(collection: Collection) -> list[Signal]:
    """The algedonic signals of `pain(collection)`: critical, system-wide, for S5."""
    return signals_from_pain(pain(collection))
