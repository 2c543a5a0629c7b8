"""The agent registry, and the push endpoints of agents that are not Celery workers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from starlette.concurrency import run_in_threadpool

from vsmmon.collect.registry import AgentRecord, visible
from vsmmon.models import AgentInfo, AgentStatus
from vsmmon.web.auth import require_token, require_token_for_reads
from vsmmon.web.resources import Resources, resources
from vsmmon.web.schemas import AGENT_ID_PATTERN, BatchPush, MetricsPush

router = APIRouter(prefix="/api/v1", tags=["agents"])
Res = Annotated[Resources, Depends(resources)]


def agent_to_dict(a: AgentInfo) -> dict[str, Any]:
    return {
        "agent_id": a.agent_id,
        "kind": a.kind,
        "host": a.host,
        "version": a.version,
        "status": a.status,
        "status_since": a.status_since.isoformat(),
        "first_seen": a.first_seen.isoformat(),
        "last_seen": a.last_seen.isoformat(),
        "interval_s": a.interval_s,
        "config_hash": a.config_hash,
        "queues": list(a.queues),
        "metrics": dict(a.metrics),
        "errors": dict(a.errors),
    }


def _record(a: AgentInfo) -> AgentRecord:
    return AgentRecord(a.agent_id, a.kind, a.last_seen, a.interval_s, AgentStatus(a.status), a.status_since)


@router.get("/agents", dependencies=[Depends(require_token_for_reads)])
async def list_agents(
    res: Res,
    include_purged: Annotated[bool, Query(description="offline agents past the purge time too")] = False,
) -> dict[str, Any]:
    agents = await run_in_threadpool(res.store.agents)
    now = datetime.now(UTC)
    shown = [a for a in agents if include_purged or visible(_record(a), now, res.settings.purge_after_s)]
    return {"agents": [agent_to_dict(a) for a in shown], "count": len(shown)}


@router.get("/agents/{agent_id}", dependencies=[Depends(require_token_for_reads)])
async def get_agent(agent_id: str, res: Res) -> dict[str, Any]:
    agents = await run_in_threadpool(res.store.agents)
    found = next((a for a in agents if a.agent_id == agent_id), None)
    if found is None:
        raise HTTPException(404, f"agent {agent_id!r} is not registered")
    history = await run_in_threadpool(res.store.transitions, agent_id)
    transitions = [
        {"at": t.at.isoformat(), "from": t.from_status.value, "to": t.to_status.value, "reason": t.reason}
        for t in history
    ]
    return {**agent_to_dict(found), "transitions": transitions}


@router.get("/agents/{agent_id}/series/{metric}", dependencies=[Depends(require_token_for_reads)])
async def get_series(
    agent_id: str,
    metric: str,
    res: Res,
    span_s: Annotated[float, Query(gt=0, le=3600, description="how far back, at most the 1 h window")] = 300,
) -> dict[str, Any]:
    """One series from the real-time window (the last hour, at the collection interval)."""
    points = await run_in_threadpool(res.realtime.read, agent_id, metric, datetime.now(UTC), span_s)
    return {"agent_id": agent_id, "metric": metric, "points": [[p.ts.isoformat(), p.value] for p in points]}


@router.post("/agents/{agent_id}/metrics", status_code=202, dependencies=[Depends(require_token)])
async def push_metrics(
    body: MetricsPush, res: Res, agent_id: Annotated[str, Path(pattern=AGENT_ID_PATTERN)]
) -> dict[str, int]:
    """Report a pushed agent's metrics; they join the next collection cycle."""
    await run_in_threadpool(admit, res, [agent_id])
    await run_in_threadpool(res.staging.push, [body.report(agent_id)])
    return {"accepted": 1}


@router.post("/metrics", status_code=202, dependencies=[Depends(require_token)])
async def push_batch(body: BatchPush, res: Res) -> dict[str, int]:
    """Report many pushed agents at once."""
    await run_in_threadpool(admit, res, [entry.agent_id for entry in body.reports])
    await run_in_threadpool(res.staging.push, [entry.report(entry.agent_id) for entry in body.reports])
    return {"accepted": len(body.reports)}


def admit(res: Resources, agent_ids: list[str]) -> None:
    """Refuse (429) a push bringing more new agent ids than this minute has left (`vsmmon.collect.admission`)."""
    if res.admitter is None:
        return
    got = res.admitter.admit(agent_ids, datetime.now(UTC))
    if not got.admitted:
        detail = (f"{got.new_ids} new agent ids in this request; at most {got.limit} new ids a minute are admitted "
                  f"(VSMMON_PUSH_NEW_AGENTS_PER_MIN), {got.used} already this minute: send fewer at a time; "
                  "agents already known are not limited")  # fmt: skip
        raise HTTPException(429, detail, headers={"Retry-After": str(got.retry_after_s)})
