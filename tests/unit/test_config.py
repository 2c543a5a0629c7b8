from pathlib import Path

import pytest

from vsmmon.config import load_settings
from vsmmon.errors import ConfigError


def test_defaults_are_the_documented_ones() -> None:
    s = load_settings({})
    assert (s.http_host, s.http_port, s.data_dir) == ("127.0.0.1", 8000, Path(".vsmmon"))
    assert (s.collect_interval_s, s.health_interval_s) == (5.0, 30.0)
    assert s.embedded is True
    assert s.broker_url is None
    assert s.database_url is None
    assert s.api_token is None


def test_values_come_from_vsmmon_variables_only() -> None:
    s = load_settings(
        {
            "VSMMON_BROKER_URL": "redis://127.0.0.1:6379/3",
            "VSMMON_DATABASE_URL": "postgresql://u:p@db/x",
            "VSMMON_API_TOKEN": "s3cret",
            "VSMMON_HTTP_PORT": "9000",
            "VSMMON_COLLECT_INTERVAL_S": "2.5",
            "HTTP_PORT": "1",
        }
    )
    assert s.http_port == 9000
    assert s.collect_interval_s == 2.5
    assert s.embedded is False
    assert s.effective_redis_url == "redis://127.0.0.1:6379/3"
    assert s.sqlalchemy_url() == "postgresql+psycopg://u:p@db/x"
    assert s.api_token is not None
    assert s.api_token.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(s)


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("VSMMON_HTTP_PORT", "abc", "VSMMON_HTTP_PORT: Input should be a valid integer"),
        ("VSMMON_HTTP_PORT", "70000", "VSMMON_HTTP_PORT: Input should be less than or equal to 65535"),
        ("VSMMON_COLLECT_INTERVAL_S", "0", "VSMMON_COLLECT_INTERVAL_S: Input should be greater than 0"),
        (
            "VSMMON_COLLECT_TIMEOUT_S",
            "10",
            "VSMMON_COLLECT_TIMEOUT_S: Input should be less than or equal to 3",
        ),
        ("VSMMON_DATABASE_URL", "mysql://x/y", "VSMMON_DATABASE_URL: expected a URL starting with one of"),
        ("VSMMON_BROKER_URL", "kafka://x", "VSMMON_BROKER_URL: expected a URL starting with one of"),
        ("VSMMON_LOG_LEVEL", "LOUD", "VSMMON_LOG_LEVEL: expected DEBUG, INFO, WARNING or ERROR"),
    ],
)
def test_a_bad_value_names_its_variable_and_what_was_expected(variable: str, value: str, expected: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings({variable: value})
    assert str(raised.value).startswith(expected)
    assert raised.value.variable == variable
    assert "\n" not in str(raised.value)


def test_amqp_broker_needs_a_redis_url() -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings({"VSMMON_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672//"})
    assert raised.value.variable == "VSMMON_REDIS_URL"
    ok = load_settings(
        {"VSMMON_BROKER_URL": "amqp://guest:guest@127.0.0.1//", "VSMMON_REDIS_URL": "redis://127.0.0.1/1"}
    )
    assert ok.effective_redis_url == "redis://127.0.0.1/1"


def test_gone_agents_stay_in_the_registry_at_least_until_live_views_purge_them() -> None:
    assert load_settings({}).retention_agents_s == 7 * 86400
    with pytest.raises(ConfigError) as raised:
        load_settings({"VSMMON_RETENTION_AGENTS_S": "600", "VSMMON_PURGE_AFTER_S": "3600"})
    assert raised.value.variable == "VSMMON_RETENTION_AGENTS_S"
    assert "PURGE_AFTER_S" in str(raised.value)


def test_a_missing_url_is_named_when_a_command_needs_it() -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings({}).sqlalchemy_url()
    assert raised.value.variable == "VSMMON_DATABASE_URL"


def test_s3_dry_run_is_the_other_name_of_control_dry_run() -> None:
    assert load_settings({}).control_dry_run is False
    assert load_settings({"VSMMON_S3_DRY_RUN": "true"}).control_dry_run is True
    assert load_settings({"VSMMON_S3_DRY_RUN": "true", "VSMMON_CONTROL_DRY_RUN": "false"}).control_dry_run is False
