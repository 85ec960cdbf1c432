"""planrun.procinfo reads /proc the way psutil does: the start times recorded agree with it."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil

from planrun.procinfo import boot_time, create_time, proc_stat
from planrun.store import process_alive


def test_boot_time_and_create_time_are_psutils() -> None:
    assert boot_time() == psutil.boot_time()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        for pid in (os.getpid(), os.getppid(), child.pid):
            assert create_time(pid) == psutil.Process(pid).create_time()
    finally:
        child.kill()
        child.wait()


def test_stat_fields() -> None:
    st = proc_stat(os.getpid())
    assert st is not None
    assert (st.pgrp, st.session) == (os.getpgrp(), os.getsid(0))
    assert st.state in ("R", "S")
    assert proc_stat(2**22 + 1) is None  # above pid_max: no such process


def test_a_zombie_is_not_alive() -> None:
    child = subprocess.Popen(["true"])
    deadline = time.monotonic() + 10
    while (st := proc_stat(child.pid)) is not None and st.state != "Z":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert st is not None  # not reaped yet: a zombie
    assert not process_alive(child.pid, None)
    child.wait()
    assert not process_alive(child.pid, None)
    assert not process_alive(0, None)
    assert not process_alive(-1, None)
