"""Host metrics from psutil: read once per host per cycle, not once per worker."""

from __future__ import annotations

import os
import socket

import psutil

from vsmmon.models import AgentKind, AgentReport


class HostProbe:
    """Reads CPU, memory, load, disk and network counters of the machine it runs on."""

    def __init__(self, disk_path: str = "/") -> None:
        self.hostname = socket.gethostname()
        self._disk_path = disk_path
        psutil.cpu_percent(interval=None)  # the first reading is meaningless: prime it now

    @property
    def agent_id(self) -> str:
        return f"host:{self.hostname}"

    def read(self) -> AgentReport:
        """One reading; a probe that fails becomes an entry in `errors`."""
        metrics: dict[str, float] = {}
        errors: dict[str, str] = {}
        try:
            metrics["cpu_percent"] = psutil.cpu_percent(interval=None)
            memory = psutil.virtual_memory()
            metrics["memory_total_bytes"] = float(memory.total)
            metrics["memory_available_bytes"] = float(memory.available)
            metrics["memory_percent"] = memory.percent
            load1, load5, load15 = os.getloadavg()
            metrics.update(load1=load1, load5=load5, load15=load15)
        except (OSError, psutil.Error) as e:
            errors["cpu_memory"] = repr(e)
        try:
            disk = psutil.disk_usage(self._disk_path)
            metrics["disk_used_bytes"] = float(disk.used)
            metrics["disk_free_bytes"] = float(disk.free)
        except (OSError, psutil.Error) as e:
            errors["disk"] = repr(e)
        try:
            net = psutil.net_io_counters()
            metrics["net_sent_bytes_total"] = float(net.bytes_sent)
            metrics["net_recv_bytes_total"] = float(net.bytes_recv)
        except (OSError, psutil.Error, AttributeError) as e:
            errors["net"] = repr(e)
        return AgentReport(self.agent_id, AgentKind.HOST, self.hostname, metrics, errors=errors)
