"""Alerts, silences, S3's control actions and S5's policy decisions.

Open alerts are read from the alert manager's ledger (Redis: what is true now); history from PostgreSQL.
Ack, resolve and silence change the ledger under its lock, here in the HTTP process, so they work while
the alerts worker is busy or down; an ack or resolve records its history in the same unit (both change or
neither: a failure is a JSON 503, or a 500 when PostgreSQL refused the rows); a manual resolve's recovery
notice is handed to the pipeline (`vsmmon.alerts.deliver`) through the task gateway.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import redis
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from starlette.concurrency import run_in_threadpool

from vsmmon import names
from vsmmon.alerts import desk as alert_desk
from vsmmon.alerts.book import AlertBook
from vsmmon.alerts.codec import alert_message, notification_to_dict, plain_row, public_alert, silence_to_dict
from vsmmon.errors import InvalidInput, NotFound, StoreRefused, TransientError
from vsmmon.store.alert_records import OPEN_STATUSES, AlertRecords
from vsmmon.web.auth import require_token, require_token_for_reads
from vsmmon.web.resources import Resources, resources
from vsmmon.web.routes_health_checks import TaskGateway
from vsmmon.web.schemas import PLAIN, PROSE

log = logging.getLogger(__name__)
ALERTS_DELIVER_TASK = names.ALERTS_DELIVER
router = APIRouter(prefix="/api/v1", tags=["alerts"])
Res = Annotated[Resources, Depends(resources)]
Ref = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9\-]+$", description="id or fingerprint")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), PLAIN]
MatcherText = Annotated[str, StringConstraints(min_length=1, max_length=200), PLAIN]
Comment = Annotated[str, StringConstraints(max_length=1000), PROSE]
Limit = Annotated[int, Query(ge=1, le=1000)]


class Who(BaseModel):
    model_config = ConfigDict(extra="forbid")

    by: Name
    comment: Comment = ""


class NewSilence(BaseModel):
    model_config = ConfigDict(extra="forbid")

    matchers: dict[MatcherText, MatcherText] = Field(min_length=1, max_length=20)
    duration_s: float = Field(gt=0, le=alert_desk.MAX_SILENCE_S, allow_inf_nan=False, strict=True)  # not `true`
    created_by: Name
    comment: Comment = ""


def _book(res: Resources) -> AlertBook:
    return AlertBook(res.redis)


def _records(res: Resources) -> AlertRecords:
    if res.records is None:
        raise HTTPException(503, "this HTTP service has no PostgreSQL store")
    return res.records


def _call(work: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a desk operation, turning its errors into HTTP answers."""
    try:
        return work(*args, **kwargs)
    except NotFound as e:
        raise HTTPException(404, str(e)) from None
    except InvalidInput as e:
        raise HTTPException(422, str(e)) from None
    except TransientError as e:
        raise HTTPException(503, str(e)) from None
    except StoreRefused as e:  # an ack or resolve: its ledger change was undone with its rows
        raise HTTPException(500, f"{e}; nothing was changed") from None


@router.get("/alerts", dependencies=[Depends(require_token_for_reads)])
async def list_alerts(
    res: Res,
    status: Annotated[Literal["active", "pending", "firing", "acknowledged", "resolved", "all"], Query()] = "active",
    limit: Limit = 200,
) -> dict[str, Any]:
    """Open alerts from the live ledger (`active`: pending, firing and acknowledged), or the history."""
    if status in ("active", *OPEN_STATUSES):
        found = await run_in_threadpool(_call, alert_desk.open_alerts, _book(res))
        shown = [public_alert(a) for a in found if status in ("active", a.status)]
        return {"alerts": shown[:limit]}
    rows = await run_in_threadpool(_records(res).alerts, None if status == "all" else status, limit)
    return {"alerts": [plain_row(r) for r in rows]}


@router.get("/alerts/{ref}", dependencies=[Depends(require_token_for_reads)])
async def get_alert(ref: Ref, res: Res) -> dict[str, Any]:
    """The latest recorded alert with this id or fingerprint, with its events."""
    row = await run_in_threadpool(_call, _records(res).alert, ref)
    return {**plain_row(row), "events": [plain_row(e) for e in row["events"]]}


def _publish(res: Resources, outcome: alert_desk.Outcome) -> None:
    """Tell the dashboards; the change is made already, so a Redis hiccup here costs only the live update."""
    try:
        for alert in outcome.changed:
            res.redis.publish(names.ALERTS_CHANNEL, alert_message(alert))
    except redis.RedisError as e:
        log.warning("alert change made but not published to the dashboards: %s", e)


@router.post("/alerts/{ref}/ack", dependencies=[Depends(require_token)])
async def acknowledge(ref: Ref, body: Who, res: Res) -> dict[str, Any]:
    """Acknowledge an open alert: it stops escalating and reminding."""

    def work() -> dict[str, Any]:
        history = _records(res)  # before the ledger: a service without the history changes nothing
        outcome = _call(alert_desk.acknowledge, _book(res), ref, body.by, datetime.now(UTC), history=history)
        _publish(res, outcome)
        found = [a for a in _call(alert_desk.open_alerts, _book(res)) if ref in (str(a.id), a.fingerprint)]
        return public_alert(found[0]) if found else {"id": ref, "status": "acknowledged"}

    return await run_in_threadpool(work)


@router.post("/alerts/{ref}/resolve", dependencies=[Depends(require_token)])
async def resolve(ref: Ref, body: Who, request: Request, res: Res) -> dict[str, Any]:
    """Resolve an open alert by hand; its recovery notice goes where its firing went."""
    gateway: TaskGateway | None = getattr(request.app.state, "gateway", None)

    def work() -> dict[str, Any]:
        policy, history = alert_desk.policy_for(res.settings), _records(res)
        outcome = _call(alert_desk.resolve, _book(res), ref, body.by, datetime.now(UTC), policy, history=history)
        _publish(res, outcome)
        delivered = False
        if outcome.notifications and gateway is not None:
            args = ([notification_to_dict(n) for n in outcome.notifications],)
            _call(gateway.send, ALERTS_DELIVER_TASK, args)
            delivered = True
        resolved = outcome.changed[0]
        return {**public_alert(resolved), "recovery_sent": delivered}

    return await run_in_threadpool(work)


@router.get("/silences", dependencies=[Depends(require_token_for_reads)])
async def list_silences(res: Res) -> dict[str, Any]:
    found = await run_in_threadpool(_call, alert_desk.silences, _book(res), datetime.now(UTC))
    return {"silences": [silence_to_dict(s) for s in found]}


@router.post("/silences", status_code=201, dependencies=[Depends(require_token)])
async def add_silence(body: NewSilence, res: Res) -> dict[str, Any]:
    """Mute notifications of the alerts matching every matcher (type, target, severity, fingerprint or a label)."""
    silence = await run_in_threadpool(
        _call, alert_desk.add_silence, _book(res), body.matchers, body.duration_s,
        created_by=body.created_by, comment=body.comment, now=datetime.now(UTC),
    )  # fmt: skip
    return silence_to_dict(silence)


@router.delete("/silences/{silence_id}", status_code=204, dependencies=[Depends(require_token)])
async def remove_silence(silence_id: UUID, res: Res) -> Response:
    found = await run_in_threadpool(_call, alert_desk.remove_silence, _book(res), silence_id)
    if not found:
        raise HTTPException(404, f"no silence {silence_id}")
    return Response(status_code=204)


@router.get("/control-actions", dependencies=[Depends(require_token_for_reads)])
async def control_actions(res: Res, limit: Limit = 200) -> dict[str, Any]:
    """S3's actions, newest first: what, why, before, after, and whether it helped."""
    rows = await run_in_threadpool(_records(res).actions, limit)
    return {"actions": [plain_row(r.row()) for r in rows]}


@router.get("/policy-decisions", dependencies=[Depends(require_token_for_reads)])
async def policy_decisions(res: Res, limit: Limit = 200) -> dict[str, Any]:
    """S5's decisions, newest first."""
    rows = await run_in_threadpool(_records(res).decisions, limit)
    return {"decisions": [plain_row(r.row()) for r in rows]}
