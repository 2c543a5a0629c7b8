import os
import subprocess
import sys
from pathlib import Path

from vsmmon.agent.hostlock import HostReporterLock

HOLD = """
import sys, time
from pathlib import Path
from vsmmon.agent.hostlock import HostReporterLock
lock = HostReporterLock(Path(sys.argv[1]))
print(lock.held(), flush=True)
time.sleep(30)
"""


def test_one_process_per_host_reports_and_another_takes_over_when_it_dies(tmp_path: Path) -> None:
    path = tmp_path / "host.lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "True"
        mine = HostReporterLock(path)
        assert mine.held() is False  # someone else on this host reports it
    finally:
        holder.kill()
        holder.wait()
    assert mine.held() is True  # the kernel released the dead holder's lock
    assert mine.held() is True  # and it stays ours


def test_a_forked_child_does_not_inherit_the_role(tmp_path: Path) -> None:
    lock = HostReporterLock(tmp_path / "host.lock")
    assert lock.held()
    pid = os.fork()
    if pid == 0:  # the child shares the open file, so flock would succeed: the pid check says no
        os._exit(0 if lock._pid != os.getpid() else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_locks_are_per_broker() -> None:
    a, b = HostReporterLock.for_broker("redis://a/0"), HostReporterLock.for_broker("redis://b/0")
    assert a.path != b.path
    assert a is HostReporterLock.for_broker("redis://a/0")  # one per process: flock is per open file
