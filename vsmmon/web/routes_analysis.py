"""What the analysis stage recommends."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool

from vsmmon.analyse.recommend import Recommendation
from vsmmon.web.auth import require_token_for_reads
from vsmmon.web.resources import Resources, resources

router = APIRouter(prefix="/api/v1", tags=["analysis"], dependencies=[Depends(require_token_for_reads)])


def recommendation_to_dict(r: Recommendation) -> dict[str, Any]:
    return {
        "fingerprint": r.fingerprint,
        "kind": r.kind,
        "target": r.target,
        "action": dict(r.action),
        "rationale": r.rationale,
        "confidence": r.confidence,
        "expires_at": r.expires_at.isoformat(),
    }


@router.get("/recommendations")
async def list_recommendations(res: Annotated[Resources, Depends(resources)]) -> dict[str, Any]:
    """Current recommendations (not expired), most confident first."""
    found = await run_in_threadpool(res.store.recommendations, datetime.now(UTC))
    return {"recommendations": [recommendation_to_dict(r) for r in found]}
