"""Finding the processes an attempt left behind: as a subreaper, orphans of our steps are
reparented to us; they are told apart by their attempt tag (PLANRUN_ATTEMPT_TAG)."""

from __future__ import annotations

import ctypes
import os

from planrun.process.spec import TAG_VAR
from planrun.procinfo import read_at

_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37

# Kernels without CONFIG_PROC_CHILDREN need a (much slower) full /proc scan.
_PROC_CHILDREN = os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children")


def child_pids() -> list[int]:
    """Our direct children that may be adopted orphans.

    The kernel hands an orphan to the first live thread of the subreaper,
    i.e. the main thread, so its /proc children list is enough (children
    forked by other threads are listed under those, but those are attempt
    main processes, tracked by pid, or the host's).
    """
    if not _PROC_CHILDREN:
        import psutil

        return [p.pid for p in psutil.Process().children()]
    pid = os.getpid()
    return [int(p) for p in read_at(f"/proc/{pid}/task/{pid}/children", 0, 65536).split()]


def environ_tag(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:  # may exceed any fixed read size
            data = fh.read()
    except OSError:
        return None
    prefix = TAG_VAR.encode() + b"="
    for item in data.split(b"\0"):
        if item.startswith(prefix):
            return item[len(prefix) :].decode(errors="replace")
    return None


def set_subreaper(on: bool) -> bool:
    """Set PR_SET_CHILD_SUBREAPER; return the previous setting (False off Linux).

    As a subreaper, orphans of our steps are reparented to us instead of init,
    so daemonizing children can still be found and killed.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prev = ctypes.c_int(0)
        libc.prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(prev), 0, 0, 0)
        libc.prctl(_PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0)
    except (OSError, AttributeError):
        return False
    return bool(prev.value)
