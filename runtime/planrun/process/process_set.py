"""ProcessSet: the running attempts of one planrun process, started and waited for. See
docs/process.md for the design (subreaper, reaping rules, kill sequence, heartbeat)."""

from __future__ import annotations

import contextlib
import os
import select
import selectors
import signal
import time
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import TYPE_CHECKING

from planrun.core.launcher import Finished, LaunchSpec, SpawnError, Started
from planrun.process.attempt import Attempt
from planrun.process.orphans import set_subreaper
from planrun.process.output import Pump
from planrun.process.reaping import Reaper
from planrun.process.spawn import spawn
from planrun.process.spec import CLOSE_TIMEOUT_SEC, MAX_SELECT_SEC, TAG_VAR
from planrun.procinfo import CLOCK_TICKS, boot_time, proc_stat, start_time

if TYPE_CHECKING:
    from planrun.core.launcher import Placement

# Nanoseconds per clock tick of /proc's starttime, if a tick is a whole number of them.
_TICK_NS = 1_000_000_000 // CLOCK_TICKS if 1_000_000_000 % CLOCK_TICKS == 0 else 0

SignalHandler = Callable[[int, FrameType | None], object] | int | signal.Handlers | None


class ProcessSet(Reaper):
    """The running attempts of one planrun process. Use it from the main thread."""

    def __init__(self) -> None:
        self._attempts = {}
        self._by_pid = {}
        self._by_tag = {}
        self._tags = {}
        self._suspects = {}
        self._finished = []
        self._token = os.urandom(4).hex()  # secrets.token_hex(4)
        self._seq = 0
        self._own_sid = os.getsid(0)
        self._own_pgrp = os.getpgrp()
        self._boot_time = boot_time()
        self._woken = False
        self._closed = False
        self._wfd = -1  # the handler may run before the pipe exists
        # First, so that off the main thread this raises before anything leaks.
        # The handler only writes to our pipe; reaping happens in wait(), per pid.
        self._prev_sigchld: SignalHandler = signal.signal(signal.SIGCHLD, self._on_sigchld)
        # SA_RESTART: the host's blocking calls need not see EINTR at every
        # child exit; our epoll wait is interrupted regardless.
        signal.siginterrupt(signal.SIGCHLD, False)
        self._devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        self._rfd, self._wfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._owns_wakeup_fd = _claim_wakeup_fd(self._wfd)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._rfd, selectors.EVENT_READ)
        self._watched = {}
        self._prev_subreaper = set_subreaper(True)

    # -- public API ---------------------------------------------------------

    def start(self, key: str, spec: LaunchSpec) -> Started:
        if self._closed:
            raise RuntimeError("ProcessSet is closed")
        if key in self._attempts:
            raise ValueError(f"attempt {key!r} is already running")
        if not spec.argv:
            raise SpawnError("empty command")
        self._seq += 1
        tag = f"{self._token}-{os.getpid()}-{self._seq}"
        env = {**spec.env, TAG_VAR: tag}
        started_at, t0 = time.time(), time.monotonic()
        before = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
        pid, popen, pumps = spawn(spec, env, self._devnull)
        after = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
        now = time.monotonic()
        deadline = None if spec.timeout_sec is None else t0 + spec.timeout_sec
        # The logs are empty: output counts as seen now (last_output, hb_checked).
        att = Attempt(key, spec, pid, tag, popen, started_at, t0, deadline, now, now, pumps=pumps)
        for pump in pumps:
            self._selector.register(pump.read_fd, selectors.EVENT_READ, pump)
        self._attempts[key] = att
        self._by_pid[pid] = att
        self._by_tag[tag] = att
        self._watch(pid)
        return Started(pid, pid, self._create_time(pid, before, after), tag)

    def wait(self, timeout: float | None) -> list[Finished]:
        end = None if timeout is None else time.monotonic() + max(0.0, timeout)
        # No reaping on entry: a child that exited since the last look left its
        # pidfd readable or a byte in the pipe, so the select returns at once.
        child_event = False
        while True:
            self._service(child_event)
            if self._finished or self._woken:
                done, self._finished = self._finished, []
                self._woken = False
                return done
            now = time.monotonic()
            if end is not None and now >= end:
                return []
            nearest = min(
                (t for t in (end, *self._deadlines()) if t is not None),
                default=None,
            )
            ready = self._selector.select(
                None if nearest is None else min(MAX_SELECT_SEC, max(0.0, nearest - now))
            )
            pumped = [key.data for key, _ in ready if isinstance(key.data, Pump)]
            for pump in pumped:
                self._pump(pump)
            child_event = len(ready) > len(pumped)
            if any(key.fd == self._rfd for key, _ in ready):
                self._drain()

    def wakeup(self) -> None:
        self._woken = True
        self._notify()

    def cancel(self, key: str) -> None:
        att = self._attempts[key]
        if att.status is None and att.outcome is None:
            self._stop(att, "cancelled", "cancelled", att.spec.kill_grace_sec)

    def kill(self, key: str) -> None:
        """Kill one attempt's tree at once (SIGKILL, no grace); it ends `cancelled`."""
        att = self._attempts[key]
        if att.status is None and att.outcome is None:
            att.outcome, att.reason = "cancelled", "cancelled"
        self._escalate(att)

    def kill_all(self) -> None:
        for att in self._attempts.values():
            if att.status is None and att.outcome is None:
                att.outcome, att.reason = "cancelled", "cancelled"
            self._escalate(att)

    def placements(self) -> list[Placement]:
        """The launcher protocol's: local attempts run here, where step_started says."""
        return []

    def kill_leftovers(self, tags: list[str]) -> int:
        """The launcher protocol's: attempts that ran here recorded their pid (resume kills
        them by it), so none is known by its tag alone."""
        return 0

    @property
    def running(self) -> int:
        return len(self._attempts)

    def __contains__(self, key: object) -> bool:
        """Whether the attempt `key` is running (or being stopped) here."""
        return key in self._attempts

    def close(self) -> None:
        if self._closed:
            return
        self.kill_all()
        give_up = time.monotonic() + CLOSE_TIMEOUT_SEC
        while self._attempts and time.monotonic() < give_up:
            self.wait(give_up - time.monotonic())
        self._sweep()  # reaps adopted zombies, kills the orphans no attempt is left to own
        for pid in [pid for pid in self._watched if pid not in self._by_pid]:
            remaining = give_up - time.monotonic()
            if remaining > 0:  # killed just now: its pidfd is readable once it is gone
                select.select([self._watched[pid]], [], [], remaining)
            self._reap_adopted(pid)
        self._closed = True
        if self._owns_wakeup_fd:
            _release_wakeup_fd(self._wfd)
        if signal.getsignal(signal.SIGCHLD) == self._on_sigchld:
            signal.signal(signal.SIGCHLD, self._prev_sigchld)
        set_subreaper(self._prev_subreaper)
        for pid in list(self._watched):  # left only if close() gave up on them
            self._unwatch(pid)
        self._selector.close()
        wfd, self._wfd = self._wfd, -1
        for fd in (self._rfd, wfd, self._devnull):
            os.close(fd)

    def __enter__(self) -> ProcessSet:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- spawning -----------------------------------------------------------

    def _create_time(self, pid: int, before: int, after: int) -> float:
        """psutil.Process(pid).create_time(), computed the same way at a fraction
        of the cost (psutil's version made each step ~0.6 ms slower, measured).

        Its `starttime` field is the child's fork time on CLOCK_BOOTTIME in clock
        ticks, rounded down (the kernel's nsec_to_clock_t). The fork happened
        between `before` and `after` (CLOCK_BOOTTIME, ns): when both fall in the
        same tick, that tick is the field's value and /proc need not be read
        (a 10 ms tick, so nearly always). Otherwise the child is not reaped
        before wait(), so its /proc entry exists."""
        if _TICK_NS and before // _TICK_NS == after // _TICK_NS:
            return start_time(before // _TICK_NS, self._boot_time)
        st = proc_stat(pid)
        assert st is not None
        return start_time(st.starttime, self._boot_time)

    # -- wakeups ------------------------------------------------------------

    def _on_sigchld(self, signum: int, frame: FrameType | None) -> None:
        if not self._owns_wakeup_fd:  # else the C-level handler already wrote
            self._notify()
        if callable(self._prev_sigchld):
            self._prev_sigchld(signum, frame)

    def _notify(self) -> None:
        if self._wfd < 0:
            return
        # A full pipe already guarantees a wakeup.
        with contextlib.suppress(BlockingIOError):
            os.write(self._wfd, b"\0")

    def _drain(self) -> None:
        with contextlib.suppress(BlockingIOError):
            # A short read means the pipe is empty: no extra read to hit EAGAIN.
            while len(os.read(self._rfd, 4096)) == 4096:
                continue


def _claim_wakeup_fd(fd: int) -> bool:
    """Make `fd` the C-level signal wakeup fd unless someone else holds it.

    A Python-level handler runs between bytecodes: a signal landing just before
    epoll_wait would only be handled after the wait, a lost wakeup (seen in
    practice). With the wakeup fd, the C handler itself writes to our pipe.
    This also makes wakeup() from the host's SIGINT/SIGTERM handlers reliable.
    """
    previous = signal.set_wakeup_fd(fd, warn_on_full_buffer=False)
    if previous == -1:
        return True
    signal.set_wakeup_fd(previous)  # theirs: keep it (pidfds still cover exits)
    return False


def _release_wakeup_fd(fd: int) -> None:
    current = signal.set_wakeup_fd(-1)
    if current != fd:  # replaced by someone since: keep theirs
        signal.set_wakeup_fd(current)
