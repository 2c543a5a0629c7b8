"""A small client for agents that are not Celery workers: they push their metrics to vsmmon's API."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import httpx

from vsmmon.errors import TransientError, VsmmonError


class ReportRejected(VsmmonError):
    """The API refused a report (4xx): retrying the same report will not help."""

    def __init__(self, status: int, detail: Any) -> None:
        super().__init__(f"report refused ({status}): {detail}")
        self.status = status
        self.detail = detail


class Reporter:
    """Pushes one or many agents' metrics to `POST /api/v1/agents/{id}/metrics` or `/api/v1/metrics`."""

    def __init__(
        self, base_url: str, token: str, *, timeout_s: float = 2.0, transport: httpx.BaseTransport | None = None
    ) -> None:
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout_s,
            transport=transport,
        )

    def report(
        self,
        agent_id: str,
        kind: str,
        metrics: Mapping[str, float],
        *,
        interval_s: float = 5.0,
        host: str = "",
        version: str = "",
        timestamp: datetime | None = None,
    ) -> None:
        """Push one agent's metrics.

        Raises:
            ReportRejected: the API refused the report (bad field, bad token).
            TransientError: the API could not be reached or failed; try again later.
        """
        body = _entry(kind, metrics, interval_s=interval_s, host=host, version=version, timestamp=timestamp)
        self._post(f"/api/v1/agents/{agent_id}/metrics", body)

    def report_many(self, entries: Sequence[Mapping[str, Any]]) -> int:
        """Push many agents at once; each entry holds `agent_id`, `type`, `metrics` and optional fields.

        Raises:
            ReportRejected: the API refused the batch.
            TransientError: the API could not be reached or failed.
        """
        response = self._post("/api/v1/metrics", {"reports": list(entries)})
        return int(response.json()["accepted"])

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Reporter:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _post(self, path: str, body: Mapping[str, Any]) -> httpx.Response:
        try:
            response = self._client.post(path, json=body)
        except httpx.HTTPError as e:
            raise TransientError(f"vsmmon API unreachable: {e}") from e
        if response.status_code >= 500:
            raise TransientError(f"vsmmon API failed ({response.status_code}): {response.text[:300]}")
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail")
            except ValueError:
                detail = response.text[:300]
            raise ReportRejected(response.status_code, detail)
        return response


def _entry(
    kind: str, metrics: Mapping[str, float], *, interval_s: float, host: str, version: str, timestamp: datetime | None
) -> dict[str, Any]:
    body: dict[str, Any] = {"type": kind, "metrics": dict(metrics), "interval_s": interval_s}
    if host:
        body["host"] = host
    if version:
        body["version"] = version
    if timestamp is not None:
        body["timestamp"] = timestamp.isoformat()
    return body
