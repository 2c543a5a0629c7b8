"""The pipeline's self-report thread: a fault is logged (once while it lasts) and reporting goes on."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

import pytest

from vsmmon.collect.selfreport import SelfReporter
from vsmmon.collect.staging import MemoryStaging
from vsmmon.errors import BufferUnavailable
from vsmmon.models import AgentReport


class FlakyStaging(MemoryStaging):
    """Fails its first `failures` pushes, then works."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def push(self, reports: Iterable[AgentReport]) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise BufferUnavailable("Redis unavailable: connection refused")
        super().push(reports)


def test_a_failing_self_report_is_logged_once_and_reporting_resumes(caplog: pytest.LogCaptureFixture) -> None:
    staging = FlakyStaging(failures=3)
    with caplog.at_level(logging.WARNING, logger="vsmmon.collect.selfreport"):
        reporter = SelfReporter("test", staging, interval_s=0.01).start()
        deadline = time.monotonic() + 10
        while not staging.pushed and time.monotonic() < deadline:
            time.sleep(0.01)
        reporter.stop()
    assert staging.pushed, "the reporter stopped after the faults"
    failed = [r for r in caplog.records if "failed" in r.getMessage()]
    assert len(failed) == 1  # three identical faults in a row: one line
    assert "connection refused" in failed[0].getMessage()
    assert any("works again" in r.getMessage() for r in caplog.records)
