"""Metric sources: psutil probes of hosts and processes, broker queue probes."""
