"""Resume: killing what a previous planrun process left of an attempt, safe from pid reuse."""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import time

from planrun.process.orphans import environ_tag
from planrun.process.spec import LEFTOVER_GRACE_SEC
from planrun.procinfo import proc_stat


def kill_leftover(
    pgid: int, pid: int, proc_start_time: float, grace: float, tag: str | None = None
) -> bool:
    """Kill what is left of an attempt recorded by a previous planrun process.

    Targets the recorded process, the members of its process group and of its
    session (for an attempt, pgid == sid == pid), unless `pid` now belongs to a
    process with another create_time: then the pid was recycled, which the
    kernel only does once no group or session uses it, so nothing is left and
    nothing is touched. With `tag`, also any process carrying
    PLANRUN_ATTEMPT_TAG=tag (daemons that left the session). SIGTERM, up to
    `grace` seconds, then SIGKILL. Returns whether anything was signalled.
    """
    victims = _leftover_pidfds(pgid, pid, proc_start_time, tag)
    if not victims:
        return False
    try:
        for fd in victims:
            _pidfd_signal(fd, signal.SIGTERM)
            _pidfd_signal(fd, signal.SIGCONT)
        for fd in _wait_exited(victims, grace):
            _pidfd_signal(fd, signal.SIGKILL)
        _wait_exited(victims, LEFTOVER_GRACE_SEC)  # SIGKILL is not instantaneous
    finally:
        for fd in victims:
            os.close(fd)
    return True


def _leftover_pidfds(pgid: int, pid: int, proc_start_time: float, tag: str | None) -> list[int]:
    """pidfds of the live processes kill_leftover() must kill.

    A pidfd pins the process: signals sent through it cannot hit a recycled pid.
    """
    import psutil  # a full /proc scan, once per resume: not worth a hand-written one

    try:
        # Same formula as Started.proc_start_time; equal unless the wall clock
        # was stepped since (then we refuse, the safe side).
        recycled = abs(psutil.Process(pid).create_time() - proc_start_time) > 1e-3
    except psutil.NoSuchProcess:
        recycled = False
    me = os.getpid()
    fds: list[int] = []
    for candidate in psutil.pids():
        st = proc_stat(candidate)
        if candidate == me or st is None or st.state in ("Z", "X"):
            continue
        member = not recycled and (st.pgrp == pgid or st.session == pid or candidate == pid)
        if member or (tag is not None and environ_tag(candidate) == tag):
            fd = _pidfd_of(candidate, st.starttime)
            if fd is not None:
                fds.append(fd)
    return fds


def _pidfd_of(pid: int, starttime: int) -> int | None:
    """A pidfd for `pid` if it is still the process that had this start time."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return None
    st = proc_stat(pid)
    if st is None or st.starttime != starttime:
        os.close(fd)
        return None
    return fd


def _pidfd_signal(fd: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        signal.pidfd_send_signal(fd, sig)


def _wait_exited(fds: list[int], timeout: float) -> list[int]:
    """Wait until every pidfd's process exited (pidfds become readable), or the
    timeout; return the pidfds of those still running."""
    end = time.monotonic() + timeout
    alive = set(fds)
    with selectors.DefaultSelector() as sel:
        for fd in fds:
            sel.register(fd, selectors.EVENT_READ)
        while alive and (left := end - time.monotonic()) > 0:
            for key, _ in sel.select(left):
                alive.discard(key.fd)
                sel.unregister(key.fd)
    return [fd for fd in fds if fd in alive]
