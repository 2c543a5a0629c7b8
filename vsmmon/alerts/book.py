"""The alert manager's memory between steps, kept in Redis and changed under a lock.

Several stages report signals, each on its own period: the health check (every 30 s), the analysis
(every 60 s) and the screen of each collection (every 5 s, only when it sees something). Signals are
level-triggered per source: a source's report replaces its previous one, and the manager steps on the
union of every source's latest report that is still fresh (younger than the ttl the source gave, about
three of its periods). So a source that stops reporting clears its alerts through the usual hysteresis,
and one source's report never clears another's conditions.

A report also remembers what its source named the time before and no longer names (`missed`): a firing
alert lives through one missed report (the manager neither clears nor advances it), so advice that comes
and goes with a flapping load stays one alert. A pending alert gets no such grace: what is missed was not
seen holding, and a blip must not outlive the pending period.

The lock (a Redis lock with a timeout) makes every change a read-modify-write of one writer at a time,
whether it comes from an alerts worker, the HTTP service (ack, resolve, silence) or the CLI.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis

from vsmmon import names
from vsmmon.alerts.codec import signal_from_dict, signal_to_dict, state_from_dict, state_to_dict
from vsmmon.alerts.locked import held
from vsmmon.alerts.model import AlertState, Severity, Signal
from vsmmon.errors import InvalidInput, TransientError
from vsmmon.models import utc

log = logging.getLogger(__name__)
PRUNE_ABOVE = 2000  # cooldown entries kept before the expired ones are swept


@dataclass(frozen=True, slots=True)
class Report:
    """A source's latest signals: the conditions it saw holding at `at`, valid for `ttl_s`."""

    at: datetime
    ttl_s: float
    signals: tuple[Signal, ...]
    missed: tuple[Signal, ...] = ()  # named by the source's previous report, not by this one

    def after(self, last: Report | None) -> Report:
        """This report with what `last` (the source's previous one, while fresh) named and this one does not."""
        if last is None or not last.fresh(self.at):
            return self
        named = {s.fingerprint for s in self.signals}
        return Report(self.at, self.ttl_s, self.signals, tuple(s for s in last.signals if s.fingerprint not in named))

    def fresh(self, now: datetime) -> bool:
        return (utc(now) - self.at).total_seconds() <= self.ttl_s


@dataclass
class Ledger:
    """The carried state plus each source's latest report."""

    state: AlertState = field(default_factory=AlertState)
    sources: dict[str, Report] = field(default_factory=dict)

    def holding(self, now: datetime) -> list[Signal]:
        """The signals of every fresh report; stale reports are dropped."""
        self.sources = {name: r for name, r in self.sources.items() if r.fresh(now)}
        return [s for r in self.sources.values() for s in r.signals]

    def missed(self) -> list[Signal]:
        """The signals a fresh report's source stopped naming in that report (call after `holding`)."""
        return [s for r in self.sources.values() for s in r.missed]


def ledger_to_json(ledger: Ledger) -> str:
    sources = {name: _report_to_dict(r) for name, r in ledger.sources.items()}
    return json.dumps({"state": state_to_dict(ledger.state), "sources": sources})


def _report_to_dict(r: Report) -> dict[str, Any]:
    return {"at": r.at.isoformat(), "ttl_s": r.ttl_s, "signals": [signal_to_dict(s) for s in r.signals],
            "missed": [signal_to_dict(s) for s in r.missed]}  # fmt: skip


def ledger_from_json(raw: str | bytes) -> Ledger:
    data: Any = json.loads(raw)
    if not isinstance(data, dict):
        raise InvalidInput("alert ledger", "expected an object")
    sources = {}
    for name, r in dict(data.get("sources", {})).items():
        signals = tuple(signal_from_dict(s, f"sources.{name}.signals[{i}]") for i, s in enumerate(r["signals"]))
        missed = tuple(signal_from_dict(s, f"sources.{name}.missed[{i}]") for i, s in enumerate(r.get("missed", [])))
        sources[name] = Report(utc(datetime.fromisoformat(r["at"])), float(r["ttl_s"]), signals, missed)
    return Ledger(state_from_dict(data.get("state", {})), sources)


class AlertBook:
    """The ledger in Redis. `change()` holds the lock for one read-modify-write."""

    def __init__(self, client: redis.Redis, *, lock_timeout_s: float = 30.0, wait_s: float = 10.0) -> None:
        self.client = client
        self.lock_timeout_s = lock_timeout_s
        self.wait_s = wait_s

    def read(self) -> Ledger:
        """The ledger as last written (no lock: for reads that change nothing)."""
        try:
            raw = self.client.get(names.ALERTS_STATE_KEY)
        except redis.RedisError as e:
            raise TransientError(f"Redis unavailable: {e}") from e
        return ledger_from_json(raw) if raw else Ledger()

    def cooldowns(self, fingerprints: Iterable[str]) -> dict[str, tuple[datetime, Severity]]:
        """The last delivery of each of these fingerprints that has one.

        Cooldowns are kept apart from the ledger, one hash field per fingerprint, so a step reads only
        those of the alerts it decides about: an incident storm of distinct alerts leaves a thousand of
        them, and reading them all at every step would slow the critical path.
        """
        wanted = sorted(set(fingerprints))
        if not wanted:
            return {}
        found = {}
        for fp, raw in zip(wanted, self.client.hmget(names.ALERTS_COOLDOWN_KEY, wanted), strict=True):
            if raw is None:
                continue
            at, _, severity = _text(raw).partition("|")
            found[fp] = (datetime.fromtimestamp(float(at), UTC), Severity(severity))
        return found

    def keep_cooldowns(
        self, fingerprints: Iterable[str], last_sent: Mapping[str, tuple[datetime, Severity]], max_age_s: float
    ) -> None:
        """Write back the cooldowns of `fingerprints`: those in `last_sent` set, the others deleted."""
        wanted = set(fingerprints) | set(last_sent)
        if not wanted:
            return
        pipe = self.client.pipeline(transaction=False)
        gone = [fp for fp in wanted if fp not in last_sent]
        if last_sent:
            pipe.hset(
                names.ALERTS_COOLDOWN_KEY,
                mapping={fp: f"{at.timestamp()}|{sev}" for fp, (at, sev) in last_sent.items()},
            )
        if gone:
            pipe.hdel(names.ALERTS_COOLDOWN_KEY, *gone)
        pipe.expire(names.ALERTS_COOLDOWN_KEY, names.STATE_TTL_S)
        pipe.hlen(names.ALERTS_COOLDOWN_KEY)
        size = pipe.execute()[-1]
        if size > PRUNE_ABOVE:
            horizon = time.time() - max_age_s
            expired = [fp for fp, raw in self.client.hgetall(names.ALERTS_COOLDOWN_KEY).items()
                       if float(_text(raw).partition("|")[0]) < horizon]  # fmt: skip
            if expired:
                self.client.hdel(names.ALERTS_COOLDOWN_KEY, *expired)

    @contextmanager
    def change(self, *, then: Callable[[], None] | None = None) -> Iterator[Ledger]:
        """Lock, read, let the caller change the ledger, write it back (not when the caller raised).

        `then` runs once the ledger is written, still under the lock: the commit of what the caller wrote
        elsewhere for this change (the history's transaction). When it raises, or the write itself fails, the
        ledger is put back as it was, so the two stay one unit.

        Raises:
            TransientError: Redis is unreachable, or the lock is held by someone else for `wait_s`.
        """
        with held(self.client, names.ALERTS_LOCK_KEY, timeout_s=self.lock_timeout_s, wait_s=self.wait_s,
                  what="the alert ledger"):  # fmt: skip
            try:
                pipe = self.client.pipeline(transaction=False)
                pipe.get(names.ALERTS_STATE_KEY)
                pipe.expire(names.ALERTS_STATE_KEY, names.STATE_TTL_S)  # renewed at every step, changed or not
                raw, _ = pipe.execute()
                ledger = ledger_from_json(raw) if raw else Ledger()
                yield ledger
                written = ledger_to_json(ledger)
                changed = raw is None or written != _text(raw)  # a change that changed nothing writes nothing
                try:
                    if changed:
                        self.client.set(names.ALERTS_STATE_KEY, written, ex=names.STATE_TTL_S)
                    if then is not None:
                        then()
                except BaseException:
                    if changed:
                        self._put_back(raw)
                    raise
            except redis.RedisError as e:
                raise TransientError(f"Redis unavailable: {e}") from e

    def _put_back(self, raw: bytes | str | None) -> None:
        """Undo a ledger write whose other half failed (best effort: Redis may be what failed)."""
        try:
            if raw is None:
                self.client.delete(names.ALERTS_STATE_KEY)
            else:
                self.client.set(names.ALERTS_STATE_KEY, raw, ex=names.STATE_TTL_S)
        except redis.RedisError as e:
            log.error("the alert ledger could not be put back after a failed change (%s): it may now disagree "
                      "with the recorded history until the alert next changes", e)  # fmt: skip


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw
