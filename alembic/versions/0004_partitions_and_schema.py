"""Rollups partitioned by day; the rest of the schema: health, trends, forecasts, recommendations,
alerts and their events, control actions, policy decisions.

Large, time-ordered tables are range-partitioned (daily) so retention drops whole partitions: no
row-by-row DELETE, no VACUUM, no bloat. Each has a DEFAULT partition so no write is ever refused;
`vsmmon.maintenance.run` creates partitions ahead of time and drops expired ones.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

PARTITIONED = {
    "health_assessments": """
        at timestamptz NOT NULL,
        scope text NOT NULL,            -- agent | system | viability
        subject text NOT NULL,          -- an agent id, S1..S5, or viability
        score double precision,         -- [0, 1]; NULL when unknown
        status text NOT NULL,           -- healthy | degraded | unhealthy | unknown
        inputs jsonb NOT NULL DEFAULT '{}',
        check_id uuid,
        PRIMARY KEY (scope, subject, at)
    """,
    "trends": """
        at timestamptz NOT NULL,
        agent_id text NOT NULL,
        metric text NOT NULL,
        window_s integer NOT NULL,
        slope double precision,
        slope_stderr double precision,
        direction text NOT NULL,
        level double precision,
        trend double precision,
        anomaly double precision,
        PRIMARY KEY (agent_id, metric, window_s, at)
    """,
    "forecasts": """
        at timestamptz NOT NULL,
        agent_id text NOT NULL,
        metric text NOT NULL,
        horizon_s integer NOT NULL,
        value double precision NOT NULL,
        lower double precision,
        upper double precision,
        PRIMARY KEY (agent_id, metric, horizon_s, at)
    """,
    "alert_events": """
        at timestamptz NOT NULL,
        alert_id uuid NOT NULL,
        event text NOT NULL,            -- firing | notified | suppressed | acknowledged | escalated | resolved
        detail jsonb NOT NULL DEFAULT '{}',
        PRIMARY KEY (alert_id, at, event)
    """,
}


def upgrade() -> None:
    op.execute("ALTER TABLE metric_rollups RENAME TO metric_rollups_old")
    op.execute("ALTER INDEX metric_rollups_pkey RENAME TO metric_rollups_old_pkey")
    op.execute(
        """
        CREATE TABLE metric_rollups (
            agent_id text NOT NULL, metric text NOT NULL, window_s integer NOT NULL,
            window_start timestamptz NOT NULL, count bigint NOT NULL, min double precision NOT NULL,
            max double precision NOT NULL, sum double precision NOT NULL, last double precision NOT NULL,
            last_ts timestamptz NOT NULL,
            PRIMARY KEY (agent_id, metric, window_s, window_start)
        ) PARTITION BY RANGE (window_start)
        """
    )
    op.execute("CREATE TABLE metric_rollups_default PARTITION OF metric_rollups DEFAULT")
    op.execute("INSERT INTO metric_rollups SELECT * FROM metric_rollups_old")
    op.execute("DROP TABLE metric_rollups_old")
    for table, columns in PARTITIONED.items():
        op.execute(f"CREATE TABLE {table} ({columns}) PARTITION BY RANGE (at)")
        op.execute(f"CREATE TABLE {table}_default PARTITION OF {table} DEFAULT")
    op.execute("CREATE INDEX ix_health_assessments_at ON health_assessments USING brin (at)")
    op.execute(
        """
        CREATE TABLE recommendations (
            id uuid PRIMARY KEY,
            fingerprint text NOT NULL UNIQUE,
            created_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL,
            expires_at timestamptz NOT NULL,
            kind text NOT NULL,             -- optimization | resource_adjustment | architectural
            target text NOT NULL,
            action jsonb NOT NULL,
            rationale text NOT NULL,
            confidence double precision NOT NULL
        )
        """
    )
    op.execute(
        """
        CREATE TABLE alerts (
            id uuid PRIMARY KEY,
            fingerprint text NOT NULL,
            type text NOT NULL,
            severity text NOT NULL,          -- info | warning | critical
            target text NOT NULL,
            labels jsonb NOT NULL DEFAULT '{}',
            status text NOT NULL,            -- pending | firing | acknowledged | resolved
            escalation_level integer NOT NULL DEFAULT 0,
            summary text NOT NULL DEFAULT '',
            started_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL,
            resolved_at timestamptz,
            acknowledged_by text
        )
        """
    )
    op.execute("CREATE UNIQUE INDEX ux_alerts_open_fingerprint ON alerts (fingerprint) WHERE status <> 'resolved'")
    op.execute("CREATE INDEX ix_alerts_updated_at ON alerts (updated_at)")
    op.execute(
        """
        CREATE TABLE control_actions (
            id uuid PRIMARY KEY,
            at timestamptz NOT NULL,
            target text NOT NULL,
            action text NOT NULL,
            params jsonb NOT NULL DEFAULT '{}',
            reason text NOT NULL,
            alert_id uuid,
            dry_run boolean NOT NULL DEFAULT false,
            before jsonb NOT NULL DEFAULT '{}',
            after jsonb NOT NULL DEFAULT '{}',
            verified_at timestamptz,
            effective boolean
        )
        """
    )
    op.execute("CREATE INDEX ix_control_actions_at ON control_actions (at)")
    op.execute(
        """
        CREATE TABLE policy_decisions (
            id uuid PRIMARY KEY,
            at timestamptz NOT NULL,
            alert_id uuid,
            decision text NOT NULL,          -- notify | protective_mode | hold
            detail jsonb NOT NULL DEFAULT '{}'
        )
        """
    )
    op.execute("CREATE INDEX ix_policy_decisions_at ON policy_decisions (at)")


def downgrade() -> None:
    for table in ("policy_decisions", "control_actions", "alerts", "recommendations", *PARTITIONED):
        op.execute(f"DROP TABLE {table}")
    op.execute("ALTER TABLE metric_rollups RENAME TO metric_rollups_part")
    op.execute(
        """
        CREATE TABLE metric_rollups (
            agent_id text NOT NULL, metric text NOT NULL, window_s integer NOT NULL,
            window_start timestamptz NOT NULL, count bigint NOT NULL, min double precision NOT NULL,
            max double precision NOT NULL, sum double precision NOT NULL, last double precision NOT NULL,
            last_ts timestamptz NOT NULL,
            CONSTRAINT metric_rollups_pkey_plain PRIMARY KEY (agent_id, metric, window_s, window_start)
        )
        """
    )
    op.execute("INSERT INTO metric_rollups SELECT * FROM metric_rollups_part")
    op.execute("DROP TABLE metric_rollups_part")
    op.execute("ALTER INDEX metric_rollups_pkey_plain RENAME TO metric_rollups_pkey")
