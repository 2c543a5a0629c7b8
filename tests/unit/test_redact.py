import pytest

from vsmmon.redact import redact_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("amqp://guest:guest@127.0.0.1:5672//", "amqp://guest:***@127.0.0.1:5672//"),
        ("postgresql+psycopg://app:p%40ss@db:5432/x", "postgresql+psycopg://app:***@db:5432/x"),
        ("redis://:secret@cache:6379/0", "redis://:***@cache:6379/0"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("postgresql://postgres@127.0.0.1/x", "postgresql://postgres@127.0.0.1/x"),
        ("error at redis://u:pw@h/0 and amqp://a:b@h//", "error at redis://u:***@h/0 and amqp://a:***@h//"),
    ],
)
def test_passwords_are_hidden_and_the_rest_stays_readable(url: str, shown: str) -> None:
    assert redact_url(url) == shown
