"""Bearer-token checks: every write needs `Authorization: Bearer $VSMMON_API_TOKEN`.

The routes that depend on `require_token` have the token checked once more, before their body is read, by
`hardening.TokenFirst`: a request with a wrong token is a 401 whatever its body (never a 413 or a 422).
"""

from __future__ import annotations

import hmac

from fastapi import Depends, HTTPException, Request, status

from vsmmon.config import Settings
from vsmmon.web.resources import Resources, resources


def refusal(settings: Settings, authorization: str) -> HTTPException | None:
    """The 401 for a request whose Authorization header is `authorization`; None when it carries the token."""
    expected = settings.api_token
    if expected is None:
        return HTTPException(status.HTTP_401_UNAUTHORIZED, "writes are disabled: VSMMON_API_TOKEN is not set")
    scheme, _, given = authorization.partition(" ")
    # constant-time comparison: a timing difference must not reveal how much of a guess was right
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), expected.get_secret_value().encode()):
        return HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or wrong bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return None


def _check(request: Request, res: Resources) -> None:
    refused = refusal(res.settings, request.headers.get("authorization", ""))
    if refused is not None:
        raise refused


def require_token(request: Request, res: Resources = Depends(resources)) -> None:  # noqa: B008
    """Dependency of every mutating route."""
    _check(request, res)


def require_token_for_reads(request: Request, res: Resources = Depends(resources)) -> None:  # noqa: B008
    """Dependency of read routes: a token only when VSMMON_READS_NEED_TOKEN is set."""
    if res.settings.reads_need_token:
        _check(request, res)
