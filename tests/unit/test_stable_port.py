"""An embedded server keeps its port across restarts while it is free: its URL, and so the broker's name on
/metrics and in the registry, does not change at every `vsmmon up`."""

import socket
from pathlib import Path

from vsmmon.local.embedded import stable_port


def test_the_port_is_kept_while_free_and_replaced_when_taken(tmp_path: Path) -> None:
    remembered = tmp_path / "redis.port"
    first = stable_port(remembered)
    assert remembered.read_text().strip() == str(first)
    assert stable_port(remembered) == first  # a restart: same port
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", first))
        taken.listen()
        other = stable_port(remembered)
        assert other != first
    assert remembered.read_text().strip() == str(other)
    remembered.write_text("not a port")
    assert 0 < stable_port(remembered) < 65536
