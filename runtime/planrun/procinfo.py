"""What planrun reads about processes from /proc, the way psutil computes it (Linux).

psutil costs ~10 ms to import and ~0.6 ms per `Process(pid).create_time()`; planrun needs only a
process's state, group, session and start time on its hot paths, so it reads /proc/PID/stat
itself. The start time is psutil's `create_time()`: clock ticks since boot / CLK_TCK + the boot
time from /proc/stat (`btime`), so values recorded here and values psutil gives agree.
psutil is still used where a whole /proc scan is needed (resume: kill_leftover).
"""

from __future__ import annotations

import os
from typing import NamedTuple

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class ProcStat(NamedTuple):
    state: str
    pgrp: int
    session: int
    starttime: int  # clock ticks after boot


def read_at(path: str, offset: int, size: int) -> bytes:
    # os-level I/O: these reads are on every step's path and io.open costs more.
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.pread(fd, size, offset)
    finally:
        os.close(fd)


def proc_stat(pid: int) -> ProcStat | None:
    """/proc/PID/stat, or None when there is no such process (or it is not visible)."""
    try:
        data = read_at(f"/proc/{pid}/stat", 0, 4096)
    except OSError:
        return None
    # comm may contain spaces and parentheses: fields start after the last ")".
    fields = data[data.rfind(b")") + 2 :].split()
    return ProcStat(fields[0].decode(), int(fields[2]), int(fields[3]), int(fields[19]))


def boot_time() -> float:
    """psutil.boot_time(): /proc/stat's `btime` (whole seconds since the epoch), read anew on
    every call like psutil does (the kernel derives it from the wall clock)."""
    with open("/proc/stat", "rb") as handle:
        for line in handle:
            if line.startswith(b"btime"):
                return float(line.split()[1])
    raise RuntimeError("line 'btime' not found in /proc/stat")


def start_time(starttime: int, boot: float | None = None) -> float:
    """psutil's create_time() of a process whose stat `starttime` field is `starttime`
    (`boot`: a boot_time() the caller already read)."""
    return float(starttime) / CLOCK_TICKS + (boot_time() if boot is None else boot)


def create_time(pid: int) -> float | None:
    """psutil.Process(pid).create_time(), or None when there is no such process."""
    st = proc_stat(pid)
    return None if st is None else start_time(st.starttime)
