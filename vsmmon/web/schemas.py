"""Request bodies of the API, validated field by field: a bad one is a 422 naming the field.

Every free-text field carries `PLAIN` (or `PROSE`, for comments): a control character in it is refused by
the rule of `vsmmon.codec.control_character`, before anything is staged or changed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from vsmmon.codec import control_character
from vsmmon.models import METRIC_MAX, AgentKind, AgentReport


def _plain(value: str) -> str:
    if (found := control_character(value)) is not None:
        raise ValueError(f"control character {found} is not allowed")
    return value


def _prose(value: str) -> str:
    if (found := control_character(value, prose=True)) is not None:
        raise ValueError(f"control character {found} is not allowed (tab and line breaks are)")
    return value


PLAIN = AfterValidator(_plain)
"""Text of one line: no control character at all."""
PROSE = AfterValidator(_prose)
"""Text that may span lines: tab, LF and CR allowed, no other control character."""

AGENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@\-]{0,119}$"
METRIC_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.:\-]{0,119}$"
MAX_METRICS = 500
MAX_CLOCK_SKEW = timedelta(seconds=60)
MAX_REPORT_AGE = timedelta(minutes=15)

MetricName = Annotated[str, StringConstraints(pattern=METRIC_NAME_PATTERN)]
FiniteNumber = Annotated[float, Field(allow_inf_nan=False, strict=True, ge=-METRIC_MAX, le=METRIC_MAX)]
ShortText = Annotated[str, StringConstraints(max_length=120), PLAIN]
AgentId = Annotated[str, StringConstraints(pattern=AGENT_ID_PATTERN)]


class MetricsPush(BaseModel):
    """What a pushed agent reports for itself."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["llm_worker", "worker", "sensor", "api"]
    metrics: dict[MetricName, FiniteNumber] = Field(max_length=MAX_METRICS)
    timestamp: AwareDatetime | None = None
    interval_s: float = Field(default=5.0, ge=0.5, le=3600, strict=True)  # `true` is not 1 s
    host: ShortText = ""
    version: ShortText = ""

    @field_validator("timestamp")
    @classmethod
    def _recent(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        now = datetime.now(UTC)
        if value > now + MAX_CLOCK_SKEW:
            raise ValueError(f"in the future by more than {MAX_CLOCK_SKEW.total_seconds():.0f} s")
        if value < now - MAX_REPORT_AGE:
            raise ValueError(f"older than {MAX_REPORT_AGE.total_seconds() / 60:.0f} min")
        return value

    def report(self, agent_id: str) -> AgentReport:
        return AgentReport(
            agent_id=agent_id,
            kind=AgentKind(self.type),
            host=self.host,
            metrics=dict(self.metrics),
            version=self.version,
            interval_s=self.interval_s,
        )


class BatchEntry(MetricsPush):
    agent_id: AgentId


class BatchPush(BaseModel):
    """Many agents' reports in one request (the simulator, an agent proxy)."""

    model_config = ConfigDict(extra="forbid")

    reports: list[BatchEntry] = Field(min_length=1, max_length=5000)
