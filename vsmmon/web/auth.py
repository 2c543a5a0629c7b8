"""Bearer-token checks: every write needs `Authorization: Bearer $VSMMON_API_TOKEN`."""

from __future__ import annotations

import hmac

from fastapi import Depends, HTTPException, Request, status

from vsmmon.web.resources import Resources, resources


def _check(request: Request, res: Resources) -> None:
    expected = res.settings.api_token
    if expected is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "writes are disabled: VSMMON_API_TOKEN is not set")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    # constant-time comparison: a timing difference must not reveal how much of a guess was right
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), expected.get_secret_value().encode()):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or wrong bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )


def require_token(request: Request, res: Resources = Depends(resources)) -> None:  # noqa: B008
    """Dependency of every mutating route."""
    _check(request, res)


def require_token_for_reads(request: Request, res: Resources = Depends(resources)) -> None:  # noqa: B008
    """Dependency of read routes: a token only when VSMMON_READS_NEED_TOKEN is set."""
    if res.settings.reads_need_token:
        _check(request, res)
