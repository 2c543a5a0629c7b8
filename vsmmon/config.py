"""Settings: one frozen object loaded from `VSMMON_*` variables and passed explicitly.

Nothing here runs at import time; `load_settings()` reads the environment when it is called.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from vsmmon.errors import ConfigError

ENV_PREFIX = "VSMMON_"
_URL_SCHEMES = {
    "broker_url": ("redis", "rediss", "amqp", "amqps", "pyamqp"),
    "fleet_broker_url": ("redis", "rediss", "amqp", "amqps", "pyamqp"),
    "redis_url": ("redis", "rediss", "unix"),
    "database_url": ("postgresql", "postgresql+psycopg"),
}


class Settings(BaseSettings):
    """Everything vsmmon can be told, with the defaults a laptop needs."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="ignore")

    broker_url: str | None = Field(default=None, description="Celery broker (redis:// or amqp://)")
    database_url: str | None = Field(default=None, description="PostgreSQL, postgresql+psycopg://")
    redis_url: str | None = Field(
        default=None, description="Redis for staging and pub/sub; defaults to BROKER_URL when that is Redis"
    )
    api_token: SecretStr | None = Field(default=None, description="bearer token every write must carry")
    data_dir: Path = Field(default=Path(".vsmmon"), description="embedded servers' data and run files")
    http_host: str = Field(default="127.0.0.1", description="HTTP service address")
    http_port: int = Field(default=8000, ge=1, le=65535, description="HTTP service port")
    collect_interval_s: float = Field(default=5.0, gt=0, le=3600, description="metric collection period")
    health_interval_s: float = Field(default=30.0, gt=0, le=3600, description="health check period")
    audit_interval_s: float = Field(default=120.0, gt=0, le=86400, description="S3* audit period (one worker)")
    collect_timeout_s: float = Field(default=1.5, gt=0, le=3, description="how long a cycle waits for replies")
    worker_concurrency: int = Field(
        default=2, ge=1, le=256, description="pool size of `vsmmon up`'s analysis and control workers"
    )
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR")
    fleet_broker_url: str | None = Field(
        default=None, description="broker of the monitored fleet, when it is not BROKER_URL (control and queues)"
    )
    watch_queues: str = Field(default="", description="comma-separated fleet queues to measure, consumed or not")
    collect_shard_size: int = Field(default=200, ge=1, le=10_000, description="workers asked per broadcast")
    cycle_shard_agents: int = Field(
        default=2500, ge=1, description="reports per shard of a cycle: past it, the cycle is split into shard tasks"
    )
    retention_samples_s: float = Field(default=3600, gt=0, description="raw samples kept (seed: 1 h)")
    retention_rollups_s: float = Field(default=86400, gt=0, description="rollups, trends, forecasts (24 h)")
    retention_health_s: float = Field(default=7 * 86400, gt=0, description="health history (seed: 7 d)")
    retention_alerts_s: float = Field(default=30 * 86400, gt=0, description="alerts, actions, decisions (30 d)")
    retention_agents_s: float = Field(
        default=7 * 86400, gt=0, description="offline or stopped agents leave the registry after this (7 d)"
    )
    buffer_horizon_s: int = Field(default=900, ge=60, description="collected data waits this long for the database")
    visibility_timeout_s: int = Field(
        default=300, ge=1, description="Redis broker: a task unacknowledged this long (its worker died) is redelivered"
    )
    memory_soft_bytes: float = Field(default=512 * 2**20, gt=0, description="worker memory health starts to fall")
    memory_hard_bytes: float = Field(default=1024 * 2**20, gt=0, description="worker memory health reaches 0")
    expected_capacity: float | None = Field(default=None, gt=0, description="expected live concurrency; else learned")
    purge_after_s: float = Field(default=3600, ge=0, description="offline agents leave live views after this")
    max_body_bytes: int = Field(default=1_048_576, ge=1024, description="largest HTTP request body accepted")
    reads_need_token: bool = Field(default=False, description="require the token for GET requests too")
    push_new_agents_per_min: int = Field(
        default=1000, ge=1, description="new pushed agent ids admitted per minute (more: 429); known ones unlimited"
    )
    http_allowed_hosts: str = Field(
        default="", description="comma-separated Host names served besides loopback, HTTP_HOST, EXTERNAL_URL's (*: any)"
    )
    http_docs: bool = Field(default=False, description="serve the API's documentation page at /docs")
    http_max_connections: int = Field(default=512, ge=16, description="open HTTP connections at most (then 503)")
    http_max_streams: int = Field(default=200, ge=1, description="dashboard event streams at most, in total")
    http_streams_per_client: int = Field(default=8, ge=1, description="dashboard event streams per client address")
    http_header_timeout_s: float = Field(default=10, gt=0, le=300, description="a request's headers arrive within this")
    alert_pending_s: float = Field(default=30, ge=0, description="a warning or info alert fires once held this long")
    alert_cooldown_s: float = Field(default=300, ge=0, description="no re-notification of an alert within this")
    alert_max_per_hour: int = Field(default=20, ge=1, description="notifications per hour (criticals always go)")
    alert_resolve_after_s: float = Field(default=60, ge=0, description="an alert resolves once clear this long")
    alert_escalate_after_s: float = Field(default=900, gt=0, description="unacknowledged firing alert escalates")
    webhook_urls: str = Field(default="", description="comma-separated Alertmanager-format webhook receivers")
    webhook_group_wait_s: float = Field(
        default=30, ge=0, le=3600, description="a new webhook group waits this long before its first message"
    )
    webhook_group_interval_s: float = Field(
        default=300, ge=0, le=86400, description="a changed webhook group is sent again at most this often"
    )
    webhook_repeat_interval_s: float = Field(
        default=14400, gt=0, le=604800, description="an unchanged, still firing webhook group is sent again this often"
    )
    alertmanager_urls: str = Field(
        default="", description="comma-separated Alertmanager base URLs: alerts are posted to their /api/v2/alerts"
    )
    alertmanager_resend_s: float = Field(
        default=60, ge=5, le=3600, description="firing alerts are posted again this often (Alertmanager expects it)"
    )
    external_url: str = Field(default="http://127.0.0.1:8000", description="vsmmon's URL as receivers should see it")
    control_dry_run: bool = Field(default=False, description="S3 records the actions it would take, applies none")
    s3_dry_run: bool | None = Field(default=None, description="the same as CONTROL_DRY_RUN (its other name)")

    @model_validator(mode="before")
    @classmethod
    def _s3_dry_run_is_control_dry_run(cls, data: Any) -> Any:
        """VSMMON_S3_DRY_RUN, the name S3's docs use, sets CONTROL_DRY_RUN unless that is given too."""
        if isinstance(data, dict) and data.get("s3_dry_run") is not None and "control_dry_run" not in data:
            return {**data, "control_dry_run": data["s3_dry_run"]}
        return data

    control_limits: str = Field(
        default="*=1:16", description="S3 bounds per queue, `queue=min:max` comma-separated (`*`: any other)"
    )
    control_max_step: int = Field(default=2, ge=1, le=64, description="S3 changes a pool by at most this much")
    control_cooldown_s: float = Field(default=300, ge=0, description="S3 acts on one target at most this often")
    control_persist_s: float = Field(
        default=60, ge=0, description="S3 acts only on a condition held this long (three 30 s health checks)"
    )
    control_verify_after_s: float = Field(default=300, gt=0, description="S3 checks an action's effect this later")
    s5_protective_queues: str = Field(
        default="", description="non-critical queues S5's protective mode stops consuming (empty: never)"
    )
    s5_hold_on_control_failure: bool = Field(default=True, description="S5 freezes S3 when its actions fail")

    @field_validator("broker_url", "database_url", "redis_url", "fleet_broker_url")
    @classmethod
    def _known_scheme(cls, value: str | None, info: Any) -> str | None:
        if value is None or value == "":
            return None
        schemes = _URL_SCHEMES[info.field_name]
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if scheme not in schemes:
            raise ValueError(f"expected a URL starting with one of {', '.join(s + '://' for s in schemes)}")
        return value

    @field_validator("webhook_urls", "alertmanager_urls")
    @classmethod
    def _http_urls(cls, value: str) -> str:
        for url in (u.strip() for u in value.split(",") if u.strip()):
            if not url.startswith(("http://", "https://")):
                raise ValueError("expected comma-separated http:// or https:// URLs")
        return value

    @field_validator("control_limits")
    @classmethod
    def _limits(cls, value: str) -> str:
        parse_limits(value)
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("expected DEBUG, INFO, WARNING or ERROR")
        return level

    @model_validator(mode="after")
    def _redis_needed_beside_amqp(self) -> Settings:
        if self.broker_url and not self.broker_url.startswith("redis") and self.redis_url is None:
            raise ValueError("REDIS_URL: required when BROKER_URL is not Redis (staging and pub/sub use Redis)")
        return self

    @model_validator(mode="after")
    def _redelivered_before_the_buffer_expires(self) -> Settings:
        if self.visibility_timeout_s >= self.buffer_horizon_s:
            raise ValueError(
                "VISIBILITY_TIMEOUT_S: must be below BUFFER_HORIZON_S, or a task of a killed worker is redelivered "
                "after its staged data expired"
            )
        return self

    @model_validator(mode="after")
    def _agents_purged_before_they_are_trimmed(self) -> Settings:
        if self.retention_agents_s < self.purge_after_s:
            raise ValueError(
                "RETENTION_AGENTS_S: must be at least PURGE_AFTER_S, or agents leave the registry while live views "
                "still show them"
            )
        return self

    @model_validator(mode="after")
    def _streams_leave_room_for_requests(self) -> Settings:
        if self.http_max_streams >= self.http_max_connections:
            raise ValueError("HTTP_MAX_STREAMS: must be below HTTP_MAX_CONNECTIONS, or streams take every connection")
        return self

    @property
    def effective_redis_url(self) -> str | None:
        """Redis used for staging and pub/sub: REDIS_URL, else the broker when it is Redis."""
        return self.redis_url or self.broker_url

    @property
    def watched_queues(self) -> tuple[str, ...]:
        """WATCH_QUEUES as a tuple of names."""
        return tuple(q.strip() for q in self.watch_queues.split(",") if q.strip())

    @property
    def concurrency_limits(self) -> dict[str, tuple[int, int]]:
        """CONTROL_LIMITS as {queue: (min, max)}; "*" for any queue not named."""
        return parse_limits(self.control_limits)

    @property
    def webhooks(self) -> tuple[str, ...]:
        """WEBHOOK_URLS as a tuple."""
        return tuple(u.strip() for u in self.webhook_urls.split(",") if u.strip())

    @property
    def alertmanagers(self) -> tuple[str, ...]:
        """ALERTMANAGER_URLS as a tuple of base URLs (no trailing slash)."""
        return tuple(u.strip().rstrip("/") for u in self.alertmanager_urls.split(",") if u.strip())

    @property
    def protective_queues(self) -> tuple[str, ...]:
        """S5_PROTECTIVE_QUEUES as a tuple."""
        return tuple(q.strip() for q in self.s5_protective_queues.split(",") if q.strip())

    @property
    def allowed_hosts(self) -> tuple[str, ...]:
        """HTTP_ALLOWED_HOSTS as a tuple of lower-case names."""
        return tuple(h.strip().lower() for h in self.http_allowed_hosts.split(",") if h.strip())

    @property
    def embedded(self) -> bool:
        """True when neither broker nor database is configured: `vsmmon up` starts its own."""
        return self.broker_url is None and self.database_url is None

    def sqlalchemy_url(self) -> str:
        """DATABASE_URL with the psycopg 3 driver named, as SQLAlchemy needs it.

        Raises:
            ConfigError: no DATABASE_URL is set.
        """
        url = self.require("database_url")
        if url.startswith("postgresql://"):
            return "postgresql+psycopg://" + url.removeprefix("postgresql://")
        return url

    def require(self, name: str) -> str:
        """The value of an optional URL setting that this command cannot do without.

        Raises:
            ConfigError: the setting is not set.
        """
        value = self.effective_redis_url if name == "redis_url" else getattr(self, name)
        if not value:
            raise ConfigError(
                ENV_PREFIX + name.upper(), "not set (start `vsmmon up` for the embedded servers, or set it)"
            )
        return str(value)


def parse_limits(text: str) -> dict[str, tuple[int, int]]:
    """`queue=min:max,...` as {queue: (min, max)}, with "*" defaulting to 1:16.

    Raises:
        ValueError: an entry is not `name=min:max` with 1 <= min <= max.
    """
    limits = {"*": (1, 16)}
    for entry in (e.strip() for e in text.split(",") if e.strip()):
        name, _, bounds = entry.partition("=")
        low, _, high = bounds.partition(":")
        if not name.strip() or not low.strip().isdigit() or not high.strip().isdigit():
            raise ValueError("expected comma-separated queue=min:max entries")
        lo, hi = int(low), int(high)
        if not 1 <= lo <= hi:
            raise ValueError(f"{name.strip()[:60]}: need 1 <= min <= max")
        limits[name.strip()] = (lo, hi)
    return limits


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Read settings from `environ` (default: the process environment) plus explicit overrides.

    Raises:
        ConfigError: a value is missing or malformed; the message names the variable.
    """
    try:
        if environ is None:
            return Settings(**overrides)
        values = {k[len(ENV_PREFIX) :].lower(): v for k, v in environ.items() if k.startswith(ENV_PREFIX)}
        values.update(overrides)
        return _from_mapping(values)
    except ValidationError as e:
        raise _config_error(e) from e


def _from_mapping(values: Mapping[str, Any]) -> Settings:
    # Settings() would also read os.environ; validating a plain mapping keeps tests hermetic.
    return Settings.model_validate(dict(values))


def _config_error(error: ValidationError) -> ConfigError:
    first = error.errors()[0]
    loc = [str(part) for part in first.get("loc", ()) if part != "__root__"]
    message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    if not loc and ": " in message:  # model-level check names its variable itself
        name, message = message.split(": ", 1)
        loc = [name.lower()]
    variable = ENV_PREFIX + (loc[0].upper() if loc else "?")
    given = first.get("input")
    suffix = f", got {given!r}" if isinstance(given, str | int | float) and not isinstance(given, bool) else ""
    if first.get("type") == "extra_forbidden":
        return ConfigError(variable, "unknown setting")
    return ConfigError(variable, f"{message}{suffix}")
