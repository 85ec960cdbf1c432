"""Spawning step attempts and controlling their process trees.

One attempt = one child process in its own session (so its pid is also its
process group id and session id), stdin on /dev/null, stdout/stderr written
straight into log files. Completion is the exit of that main process; the
attempt is only reported once everything it left behind is dead too.

See docs/process.md for the design (subreaper, reaping rules, kill sequence,
heartbeat) and its limits.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import select
import selectors
import signal
import stat
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Literal

from planrun.failure import WriteOrder
from planrun.procinfo import CLOCK_TICKS, boot_time, start_time
from planrun.procinfo import ProcStat as _ProcStat
from planrun.procinfo import proc_stat as _proc_stat
from planrun.procinfo import read_at as _read_at
from planrun.safefs import create_private, read_slice

if TYPE_CHECKING:  # subprocess is imported only for steps that need Popen (another cwd)
    import subprocess

    from planrun.launcher import Placement
    from planrun.masking import StreamMasker

# "lost": a remote attempt whose worker died (planrun.dask_launcher)
Outcome = Literal["exited", "signalled", "timeout", "stalled", "cancelled", "spawn_error", "lost"]

TAG_VAR = "PLANRUN_ATTEMPT_TAG"
# Leftovers of a step that already exited on its own get a short SIGTERM grace:
# the step's result is known, they only delay the next step.
LEFTOVER_GRACE_SEC = 1.0
TAIL_LINES = 20
TAIL_BYTES = 4096
# close() gives up on processes that do not die from SIGKILL within this time
# (uninterruptible sleep); it must not hang the caller forever.
CLOSE_TIMEOUT_SEC = 10.0
PUMP_CHUNK = 65536
# Masked output only: after the tree is dead, how long a pipe still held open by a process we
# could not attribute may delay the attempt's end.
DRAIN_GRACE_SEC = 1.0
# The longest single epoll wait: epoll's timeout overflows past ~2^31 ms, and a plan may ask for
# any timeout (`timeout_sec: 1e10` is valid); a longer wait is a series of these.
MAX_SELECT_SEC = 3600.0

# Nanoseconds per clock tick of /proc's starttime, if a tick is a whole number of them.
_TICK_NS = 1_000_000_000 // CLOCK_TICKS if 1_000_000_000 % CLOCK_TICKS == 0 else 0

_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37
# Python ignores these at startup; a step must see the defaults (as with Popen).
_RESET_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ)

# Kernels without CONFIG_PROC_CHILDREN need a (much slower) full /proc scan.
_PROC_CHILDREN = os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children")

SignalHandler = Callable[[int, FrameType | None], object] | int | signal.Handlers | None


@dataclass(frozen=True)
class LaunchSpec:
    argv: list[str]  # final: for shell steps the caller passes ["/bin/sh", "-c", "..."]
    cwd: str  # absolute
    env: dict[str, str]  # the complete environment
    stdout_path: str  # created afresh (0600) and handed to the child; may equal stderr_path
    stderr_path: str
    timeout_sec: float | None  # wall clock
    heartbeat_timeout_sec: float | None  # no new bytes in stdout or stderr for this long
    kill_grace_sec: float  # SIGTERM -> grace -> SIGKILL
    # Secrets to mask (masking.patterns_for). When given, the child writes into pipes and
    # planrun copies the output, masked, into the log files: the one place output is written.
    mask_patterns: tuple[bytes, ...] = ()
    # Also copy the output, masked, to these descriptors (stdout's, stderr's): `planrun exec`
    # shows the command's output live. It takes the masking path, pipes and pumps, with or
    # without secrets; a descriptor that fails is dropped, the log is still written.
    echo_fds: tuple[int, int] | None = None
    # The directory of the two logs, opened without following links (RunStore.log_dir_fd): the
    # logs are created relative to it (openat), so no link planted by a step is followed.
    log_dir_fd: int | None = None


@dataclass(frozen=True)
class Started:
    pid: int | None  # None: a remote attempt (launcher.Placement tells where it runs)
    pgid: int | None
    proc_start_time: float | None  # psutil.Process(pid).create_time()
    tag: str  # the PLANRUN_ATTEMPT_TAG value; lets kill_leftover() find escaped daemons


@dataclass(frozen=True)
class Finished:
    key: str
    outcome: Outcome
    exit_code: int | None  # only for "exited"
    signal: int | None  # only for "signalled"
    reason: str
    stderr_tail: str
    duration_sec: float
    started_at: float
    finished_at: float
    order: WriteOrder | None = None  # pumped attempts: their last output, in the order written

    @classmethod
    def from_spawn_error(cls, key: str, error: SpawnError) -> Finished:
        """The record of an attempt that could not start (start() raised)."""
        now = time.time()
        return cls(key, "spawn_error", None, None, error.reason, "", 0.0, now, now)


class SpawnError(Exception):
    """The attempt could not be started; `reason` is one human line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Pump:
    """One masked output stream: a pipe from the child, a masker, the log file (and an echo)."""

    def __init__(
        self,
        read_fd: int,
        log_fd: int,
        patterns: tuple[bytes, ...],
        echo_fd: int = -1,
        order: tuple[WriteOrder, int] | None = None,  # record into it as stream 0 or 1
    ) -> None:
        self.read_fd = read_fd
        self.log_fd = log_fd
        self.echo_fd = echo_fd
        self.masker: StreamMasker | None = None
        if patterns:
            from planrun.masking import StreamMasker  # only plans with secrets mask output

            self.masker = StreamMasker(patterns)
        self.order = order

    def pump(self) -> bool:
        """Copy what is available; False at end of stream (then the pump is closed)."""
        while True:
            try:
                chunk = os.read(self.read_fd, PUMP_CHUNK)
            except BlockingIOError:
                return True
            if not chunk:
                self.close()
                return False
            if self.order is not None:
                self.order[0].add(self.order[1], chunk)
            self._write(self.masker.feed(chunk) if self.masker else chunk)

    def _write(self, data: bytes) -> None:
        _write_all(self.log_fd, data)
        if self.echo_fd >= 0:
            try:
                _write_all(self.echo_fd, data)
            except OSError:  # a closed pipe or a full disk ends the echo, never the step
                self.echo_fd = -1

    def close(self) -> None:
        if self.read_fd >= 0:
            if self.masker is not None:
                self._write(self.masker.flush())
            if self.order is not None:
                self.order[0].end(self.order[1])
            os.close(self.read_fd)
            os.close(self.log_fd)
            self.read_fd = self.log_fd = -1


@dataclass(eq=False)
class _Attempt:
    key: str
    spec: LaunchSpec
    pid: int
    tag: str
    popen: subprocess.Popen[bytes] | None
    started_at: float  # time.time() at spawn
    t0: float  # time.monotonic() at spawn
    deadline: float | None  # monotonic wall-timeout deadline
    last_output: float  # monotonic estimate of when the logs last grew
    hb_checked: float  # monotonic time of the last heartbeat look
    sizes: tuple[int, int] = (0, 0)
    status: int | None = None  # raw wait status, once the main process is reaped
    status_lost: bool = False  # someone else reaped the main process
    outcome: Outcome | None = None  # set when planrun decided to stop the attempt
    reason: str = ""
    kill_at: float | None = None  # SIGTERM sent; SIGKILL at this monotonic time
    killing: bool = False  # SIGKILL phase
    group_gone: bool = False  # the process group has no member left (never signal it again)
    termed: set[int] = field(default_factory=set)  # adopted pids already sent SIGTERM
    pumps: list[_Pump] = field(default_factory=list)  # open masked output streams
    drain_until: float | None = None  # tree dead: give the pumps until then to reach EOF

    @property
    def hb_at(self) -> float | None:
        hb = self.spec.heartbeat_timeout_sec
        return None if hb is None else self.last_output + hb


class ProcessSet:
    """The running attempts of one planrun process. Use it from the main thread."""

    def __init__(self) -> None:
        self._attempts: dict[str, _Attempt] = {}
        self._by_pid: dict[int, _Attempt] = {}
        self._by_tag: dict[str, _Attempt] = {}
        self._tags: dict[int, tuple[int, str | None]] = {}  # adopted pid -> (starttime, tag)
        # Adopted pid that neither tag nor session attributes -> (starttime, the attempts running
        # when it was first seen): one of them started it.
        self._suspects: dict[int, tuple[int, tuple[_Attempt, ...]]] = {}
        self._finished: list[Finished] = []
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
        # pid -> pidfd of the processes whose exit must wake wait(): attempt
        # main processes, and adopted leftovers of attempts being stopped.
        self._watched: dict[int, int] = {}
        self._prev_subreaper = _set_subreaper(True)

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
        pid, popen, pumps = self._spawn(spec, env)
        after = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
        now = time.monotonic()
        att = _Attempt(
            key=key,
            spec=spec,
            pid=pid,
            tag=tag,
            popen=popen,
            started_at=started_at,
            t0=t0,
            deadline=None if spec.timeout_sec is None else t0 + spec.timeout_sec,
            last_output=now,
            hb_checked=now,
            pumps=pumps,
        )
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
            pumped = [key.data for key, _ in ready if isinstance(key.data, _Pump)]
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
        _set_subreaper(self._prev_subreaper)
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
        st = _proc_stat(pid)
        assert st is not None
        return start_time(st.starttime, self._boot_time)

    def _spawn(
        self, spec: LaunchSpec, env: dict[str, str]
    ) -> tuple[int, subprocess.Popen[bytes] | None, list[_Pump]]:
        # posix_spawn costs the parent about half of what Popen does (measured,
        # docs/process.md) but cannot change directory: it is used whenever the
        # step runs in our own cwd, which is the common case.
        logs = _open_logs(spec)
        piped = spec.mask_patterns or spec.echo_fds
        out, err, pumps = _masked_streams(logs, spec) if piped else (*logs, [])
        try:
            if spec.cwd == _getcwd():
                return self._posix_spawn(spec, env, out, err), None, pumps
            proc = self._popen(spec, env, out, err)
            return proc.pid, proc, pumps
        except (OSError, ValueError) as exc:
            for pump in pumps:
                pump.close()
            if isinstance(exc, ValueError):  # a NUL character: no exec can pass it on
                raise _nul_error(spec, env) from None
            raise _spawn_error(exc, spec, env) from None
        finally:
            os.close(out)
            if err != out:
                os.close(err)

    def _posix_spawn(self, spec: LaunchSpec, env: dict[str, str], out: int, err: int) -> int:
        actions = [
            (os.POSIX_SPAWN_DUP2, self._devnull, 0),
            (os.POSIX_SPAWN_DUP2, out, 1),
            (os.POSIX_SPAWN_DUP2, err, 2),
        ]
        argv0 = spec.argv[0]
        if "/" in argv0 or env.get("PATH") == os.environ.get("PATH"):
            # posix_spawnp searches our own PATH, which is the step's here; it
            # is cheaper than searching from Python (~75 us with a long PATH).
            spawn, executable = os.posix_spawnp, argv0
        else:
            spawn, executable = os.posix_spawn, _resolve(argv0, spec.cwd, env)
        return spawn(
            executable,
            spec.argv,
            env,
            file_actions=actions,
            setsid=True,
            setsigdef=_RESET_SIGNALS,
        )

    def _popen(
        self, spec: LaunchSpec, env: dict[str, str], out: int, err: int
    ) -> subprocess.Popen[bytes]:
        import subprocess

        # Popen searches the PATH of `env`, in the child.
        return subprocess.Popen(
            spec.argv,
            cwd=spec.cwd,
            env=env,
            stdin=self._devnull,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )

    # -- the event loop -----------------------------------------------------

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

    def _pump(self, pump: _Pump) -> None:
        fd = pump.read_fd
        if fd >= 0 and not pump.pump():
            self._selector.unregister(fd)

    def _watch(self, pid: int) -> None:
        """Make the exit of `pid`, our unreaped child, wake wait().

        A pidfd is readable from the moment the process exits: unlike a
        Python-level SIGCHLD handler, it cannot miss an exit that happens just
        before the select.
        """
        if pid in self._watched:
            return
        try:
            fd = os.pidfd_open(pid)
        except OSError:  # Linux < 5.3: SIGCHLD alone wakes us
            return
        self._watched[pid] = fd
        self._selector.register(fd, selectors.EVENT_READ)

    def _unwatch(self, pid: int) -> None:
        fd = self._watched.pop(pid, None)
        if fd is not None:
            self._selector.unregister(fd)
            os.close(fd)

    def _deadlines(self) -> Iterable[float | None]:
        for att in self._attempts.values():
            if att.status is None and att.outcome is None:
                yield att.deadline
                yield att.hb_at
            yield att.kill_at
            yield att.drain_until

    def _service(self, child_event: bool) -> None:
        if child_event:
            self._reap()
        now = time.monotonic()
        for att in self._attempts.values():
            self._fire_deadlines(att, now)
        ending = [
            a for a in self._attempts.values() if a.status is not None or a.outcome is not None
        ]
        if not (child_event or ending):
            return
        adopted = self._sweep()
        for att in ending:
            if self._advance(att, adopted.get(att, []), now) and self._drained(att, now):
                self._finish(att, now)

    def _reap(self) -> None:
        # Per-pid waits: waitpid(-1) could steal the status of a child the host
        # process is waiting for (subprocess.run in the executor).
        for att in self._attempts.values():
            if att.status is None:
                self._reap_main(att)
        for pid in [pid for pid in self._watched if pid not in self._by_pid]:
            self._reap_adopted(pid)

    def _reap_main(self, att: _Attempt) -> None:
        try:
            pid, status = os.waitpid(att.pid, os.WNOHANG)
        except ChildProcessError:  # the host reaped it: a broken constraint, see docs
            pid, status, att.status_lost = att.pid, 0, True
        if pid:
            att.status = status
            self._unwatch(att.pid)
            if att.popen is not None:  # so Popen never waits for it again
                att.popen.returncode = os.waitstatus_to_exitcode(status)

    def _fire_deadlines(self, att: _Attempt, now: float) -> None:
        if att.status is None and att.outcome is None:
            if att.deadline is not None and now >= att.deadline:
                limit = _secs(att.spec.timeout_sec or 0.0)
                self._stop(att, "timeout", f"timed out after {limit}s", att.spec.kill_grace_sec)
            elif (hb_at := att.hb_at) is not None and now >= hb_at:
                self._check_heartbeat(att, now)
        if att.kill_at is not None and now >= att.kill_at:
            self._escalate(att)

    def _check_heartbeat(self, att: _Attempt, now: float) -> None:
        sizes, newest_mtime = _log_state(att.spec)
        if sizes == att.sizes:
            limit = _secs(att.spec.heartbeat_timeout_sec or 0.0)
            self._stop(att, "stalled", f"no output for {limit}s (stalled)", att.spec.kill_grace_sec)
            return
        # Date the last write by the files' mtime so a stall is declared one
        # heartbeat after the last byte, not up to two; clamp to the interval
        # since the previous look so a wall-clock jump cannot distort it.
        age = max(0.0, time.time() - newest_mtime)
        att.last_output = min(now, max(att.hb_checked, now - age))
        att.sizes = sizes
        att.hb_checked = now

    def _stop(self, att: _Attempt, outcome: Outcome, reason: str, grace: float) -> None:
        att.outcome, att.reason = outcome, reason
        self._terminate(att, grace)

    def _terminate(self, att: _Attempt, grace: float) -> None:
        if grace <= 0:
            self._escalate(att)
            return
        att.kill_at = time.monotonic() + grace
        self._signal_group(att, signal.SIGTERM)
        self._signal_group(att, signal.SIGCONT)  # a stopped process must run to see SIGTERM

    def _escalate(self, att: _Attempt) -> None:
        att.killing, att.kill_at = True, None
        self._signal_group(att, signal.SIGKILL)

    def _signal_group(self, att: _Attempt, sig: int) -> bool:
        """Signal the attempt's process group; return whether it still has members."""
        if att.group_gone:
            return False
        try:
            os.killpg(att.pid, sig)
        except ProcessLookupError:
            # Empty for good: its id can now be recycled, never signal it again.
            att.group_gone = True
        return not att.group_gone

    def _advance(self, att: _Attempt, adopted: list[tuple[int, int]], now: float) -> bool:
        """Push the rest of a stopping or exited attempt's tree towards death.

        Returns True once nothing is left: the main process is reaped, the
        process group is empty, and no adopted orphan carries its tag.
        """
        if att.status is not None and not self._signal_group(att, 0) and not adopted:
            return True
        if att.kill_at is None and not att.killing:
            # Exited on its own but left processes behind.
            self._terminate(att, min(att.spec.kill_grace_sec, LEFTOVER_GRACE_SEC))
        for pid, _ in adopted:
            self._watch(pid)  # its death may be the last event of this tree
        if att.killing:
            self._signal_group(att, signal.SIGKILL)
            for pid, pgrp in adopted:
                self._signal_adopted(pid, pgrp, signal.SIGKILL)
        elif att.kill_at is not None:
            for pid, pgrp in adopted:
                if pid not in att.termed:
                    att.termed.add(pid)
                    self._signal_adopted(pid, pgrp, signal.SIGTERM)
                    self._signal_adopted(pid, pgrp, signal.SIGCONT)
        return False

    def _drained(self, att: _Attempt, now: float) -> bool:
        """The tree is dead: its pipes reach EOF at once, unless a process nobody could
        attribute to the attempt still holds one; that one gets DRAIN_GRACE_SEC."""
        for pump in att.pumps:
            self._pump(pump)
        if all(pump.read_fd < 0 for pump in att.pumps):
            return True
        if att.drain_until is None:
            att.drain_until = now + DRAIN_GRACE_SEC
            return False
        if now < att.drain_until:
            return False
        for pump in att.pumps:
            if pump.read_fd >= 0:
                self._selector.unregister(pump.read_fd)
                pump.close()
        return True

    def _signal_adopted(self, pid: int, pgrp: int, sig: int) -> None:
        # Safe from pid reuse: it is our child and not reaped yet. Its group is
        # signalled only when it leads it, so that id is pinned by it too.
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
            if pgrp == pid and pgrp != self._own_pgrp:
                os.killpg(pgrp, sig)

    def _sweep(self) -> dict[_Attempt, list[tuple[int, int]]]:
        """Reap adopted zombies; return the live adopted orphans of each attempt.

        Only children in a session other than ours are considered: every
        attempt runs in a session of its own, whereas children the host
        spawns normally share our session and are left to their owner.
        """
        found: dict[_Attempt, list[tuple[int, int]]] = {}
        for pid in _child_pids():
            if pid in self._by_pid:
                continue
            st = _proc_stat(pid)
            if st is None or st.session == self._own_sid:
                continue
            if st.state in ("Z", "X"):
                self._reap_adopted(pid)
                continue
            att = self._attribute(pid, st)
            if isinstance(att, _Nobody):  # no step still running can own it: kill it now
                self._signal_adopted(pid, st.pgrp, signal.SIGKILL)
                self._watch(pid)  # reaped when it is gone
            elif att is not None:
                found.setdefault(att, []).append((pid, st.pgrp))
        return found

    def _reap_adopted(self, pid: int) -> None:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == 0:
                return  # still running
        except ChildProcessError:
            pass
        self._tags.pop(pid, None)
        self._suspects.pop(pid, None)
        self._unwatch(pid)

    def _attribute(self, pid: int, st: _ProcStat) -> _Attempt | _Nobody | None:
        """The attempt an adopted orphan belongs to: by its tag, else by its session; None while
        that cannot be told yet, _UNOWNED when it belongs to no running attempt."""
        cached = self._tags.get(pid)
        if cached is None or cached[0] != st.starttime:
            cached = (st.starttime, _environ_tag(pid))
            self._tags[pid] = cached
        tag = cached[1]
        owner = self._by_tag.get(tag) if tag is not None else None
        # A step that scrubbed its environment: fall back to its session.
        owner = owner or self._by_pid.get(st.session)
        return owner if owner is not None else self._suspected_owner(pid, st.starttime)

    def _suspected_owner(self, pid: int, starttime: int) -> _Attempt | _Nobody | None:
        """An orphan that left its step's session and scrubbed its environment (`env -i setsid
        daemon`) descends from one of the attempts running when it was first seen. Once a
        single one of them is left, it is that attempt's, and dies with its tree; if none is
        left, it is nobody's and is killed at once (docs/process.md)."""
        seen = self._suspects.get(pid)
        if seen is None or seen[0] != starttime:
            seen = (starttime, tuple(self._attempts.values()))
            self._suspects[pid] = seen
        alive = [att for att in seen[1] if self._attempts.get(att.key) is att]
        if not alive:
            return _UNOWNED
        return alive[0] if len(alive) == 1 else None

    def _finish(self, att: _Attempt, now: float) -> None:
        del self._attempts[att.key]
        del self._by_pid[att.pid]
        del self._by_tag[att.tag]
        outcome, exit_code, sig, reason = _classify(att)
        duration = now - att.t0
        self._finished.append(
            Finished(
                key=att.key,
                outcome=outcome,
                exit_code=exit_code,
                signal=sig,
                reason=reason,
                stderr_tail=stderr_tail(att.spec.stderr_path),
                duration_sec=duration,
                started_at=att.started_at,
                finished_at=att.started_at + duration,
                order=att.pumps[0].order[0] if att.pumps and att.pumps[0].order else None,
            )
        )


class _Nobody:
    """What an adopted orphan belongs to when no attempt that could have started it is left."""


_UNOWNED = _Nobody()


# -- helpers ------------------------------------------------------------------


def _classify(att: _Attempt) -> tuple[Outcome, int | None, int | None, str]:
    if att.outcome is not None:
        return att.outcome, None, None, att.reason
    if att.status_lost:
        return "exited", None, None, "exit status lost (reaped outside planrun)"
    status = att.status or 0
    if os.WIFSIGNALED(status):
        num = os.WTERMSIG(status)
        return "signalled", None, num, f"killed by signal {num} ({_signame(num)})"
    code = os.waitstatus_to_exitcode(status)
    return "exited", code, None, f"exit code {code}"


def _signame(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"


def _secs(value: float) -> str:
    return f"{value:g}"


def _getcwd() -> str | None:
    try:
        return os.getcwd()
    except OSError:  # our own cwd was removed: every step takes the Popen path
        return None


def _nul_error(spec: LaunchSpec, env: dict[str, str]) -> SpawnError:
    """A command line, environment or cwd holding a NUL character (e.g. from an interpolated
    output): the kernel takes C strings, so the step cannot start."""
    for index, arg in enumerate(spec.argv):
        if "\0" in arg:
            where = "the command" if index == 0 else f"argument {index}"
            return SpawnError(f"{where} contains a NUL character, which no program can receive")
    for name, value in env.items():
        if "\0" in name or "\0" in value:
            shown = name.partition("\0")[0]
            return SpawnError(
                f"environment variable {shown} contains a NUL character, which no program can"
                " receive"
            )
    return SpawnError("the cwd contains a NUL character")


def _spawn_error(exc: OSError, spec: LaunchSpec, env: dict[str, str]) -> SpawnError:
    """Explain a failed spawn in one line; only runs on the error path."""
    argv0 = spec.argv[0]
    if exc.filename == spec.cwd:  # Popen's chdir in the child failed
        if exc.errno == errno.ENOENT:
            return SpawnError(f"cwd does not exist: {spec.cwd}")
        if exc.errno == errno.ENOTDIR:
            return SpawnError(f"cwd is not a directory: {spec.cwd}")
        return SpawnError(f"cwd not usable: {spec.cwd}: {exc.strerror}")
    try:
        _resolve(argv0, spec.cwd, env)
    except SpawnError as err:  # not found, or found but not executable
        return err
    if exc.errno in (errno.EACCES, errno.EPERM):
        return SpawnError(f"permission denied: {argv0}")
    if exc.errno == errno.ENOEXEC:
        return SpawnError(f"exec format error: {argv0}")
    if exc.errno == errno.ENOENT:  # the file exists, so its interpreter does not
        return SpawnError(f"cannot execute {argv0}: missing interpreter or loader")
    return SpawnError(f"cannot execute {argv0}: {exc.strerror}")


def _resolve(argv0: str, cwd: str, env: dict[str, str]) -> str:
    """Find the program like execvp would, with the step's PATH and cwd."""
    if "/" in argv0:
        if not _is_executable(os.path.join(cwd, argv0), argv0):
            raise SpawnError(f"command not found: {argv0}")
        return argv0  # relative to the child's cwd, like exec
    unusable: SpawnError | None = None
    for directory in os.get_exec_path(env):
        candidate = os.path.join(cwd, directory or ".", argv0)
        try:
            if _is_executable(candidate, argv0):
                return candidate
        except SpawnError as err:
            unusable = unusable or err  # execvp too keeps looking, then reports the first
    raise unusable or SpawnError(f"command not found: {argv0}")


def _is_executable(path: str, argv0: str) -> bool:
    """False when the path does not exist; SpawnError when it exists but cannot run."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return False
    except PermissionError:
        raise SpawnError(f"permission denied: {argv0}") from None
    except OSError as exc:  # e.g. a name too long, a symlink loop
        raise SpawnError(f"cannot execute {argv0}: {exc.strerror}") from None
    if not stat.S_ISREG(mode) or not os.access(path, os.X_OK):
        raise SpawnError(f"permission denied: {argv0}")
    return True


def _open_logs(spec: LaunchSpec) -> tuple[int, int]:
    out = _open_log(spec.stdout_path, spec.log_dir_fd)
    if spec.stderr_path == spec.stdout_path:
        return out, out  # one open file: both streams share the offset
    try:
        return out, _open_log(spec.stderr_path, spec.log_dir_fd)
    except SpawnError:
        os.close(out)
        raise


def _masked_streams(logs: tuple[int, int], spec: LaunchSpec) -> tuple[int, int, list[_Pump]]:
    """Pipes for the child's stdout and stderr, each pumped through a masker into its log."""
    out_log, err_log = logs
    patterns = spec.mask_patterns
    out_echo, err_echo = spec.echo_fds or (-1, -1)
    if err_log == out_log:  # one file for both: one pipe, so the order of lines is kept
        read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
        os.set_blocking(read_fd, False)
        return write_fd, write_fd, [_Pump(read_fd, out_log, patterns, out_echo)]
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    for fd in (out_r, err_r):
        os.set_blocking(fd, False)
    order = WriteOrder()  # counts the line breaks of each chunk, on top of the masking
    pumps = [
        _Pump(out_r, out_log, patterns, out_echo, (order, 0)),
        _Pump(err_r, err_log, patterns, err_echo, (order, 1)),
    ]
    return out_w, err_w, pumps


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _open_log(path: str, dir_fd: int | None) -> int:
    try:
        if dir_fd is None:
            return create_private(path)
        return create_private(os.path.basename(path), dir_fd=dir_fd)
    except OSError as exc:
        raise SpawnError(f"cannot open log file {path}: {exc.strerror}") from None


def _log_state(spec: LaunchSpec) -> tuple[tuple[int, int], float]:
    """Sizes of the two logs and the newest mtime (seconds since the epoch)."""
    sizes: list[int] = []
    newest = 0.0
    for path in (spec.stdout_path, spec.stderr_path):
        try:
            st = os.stat(path)
        except OSError:
            sizes.append(-1)
            continue
        sizes.append(st.st_size)
        newest = max(newest, st.st_mtime)
    return (sizes[0], sizes[1]), newest


def stderr_tail(path: str) -> str:
    """The last <= TAIL_LINES lines within the last TAIL_BYTES bytes of a file."""
    try:
        st = os.stat(path, follow_symlinks=False)
        if st.st_size == 0 or not stat.S_ISREG(st.st_mode):  # the common case: one syscall
            return ""
        data, size = read_slice(path, -TAIL_BYTES, TAIL_BYTES)  # no link, no pipe: a step's file
    except OSError:
        return ""
    if size > TAIL_BYTES and b"\n" in data:
        data = data.split(b"\n", 1)[1]  # drop the partial first line
    lines = data.decode(errors="replace").splitlines()
    return "\n".join(lines[-TAIL_LINES:])


def _child_pids() -> list[int]:
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
    return [int(p) for p in _read_at(f"/proc/{pid}/task/{pid}/children", 0, 65536).split()]


def _environ_tag(pid: int) -> str | None:
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


def _set_subreaper(on: bool) -> bool:
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


# -- resume -------------------------------------------------------------------


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
        st = _proc_stat(candidate)
        if candidate == me or st is None or st.state in ("Z", "X"):
            continue
        member = not recycled and (st.pgrp == pgid or st.session == pid or candidate == pid)
        if member or (tag is not None and _environ_tag(candidate) == tag):
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
    st = _proc_stat(pid)
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
