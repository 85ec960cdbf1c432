"""The worker-side agent: one long-lived process per `planrun worker` that runs attempts with
planrun's own local process control (`process.ProcessSet`: sessions, tree kill, timeouts,
heartbeat, masking, stderr tails), on behalf of the Dask task threads of its worker.

ProcessSet wants the main thread of its process (SIGCHLD, the subreaper), which a Dask task
thread is not; so the worker starts this agent as a child (`AgentHandle.spawn`) and talks to it
over a pipe pair. The agent dies with its worker: PR_SET_PDEATHSIG delivers SIGTERM when the
worker goes (even by SIGKILL), and the end of the request pipe does the same, so the agent kills
every tree it runs (docs/distributed.md, "Guarantees"). Once those trees are dead, the agent
tells the coordinator so through the scheduler (`_confirm_dead`): the coordinator holds the retry
of a lost worker's attempt until then, so that a step's work never runs twice at once.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from typing import Any

from planrun.core.launcher import Finished, LaunchSpec, SpawnError, Started
from planrun.process import ProcessSet

_PR_SET_PDEATHSIG = 1
# How often a task thread looks for the end of its attempt, a cancellation and new output.
POLL_SEC = 0.05
# How often the agent looks whether its worker is stopped, while attempts run.
FROZEN_CHECK_SEC = 1.0
# Where the attempts' files live on the worker: memory-backed when the machine has one, so
# what a step writes to $PLAN_OUTPUT (which may hold a secret) does not touch a disk.
_SHM = "/dev/shm"
# How long the agent tries to reach the scheduler to confirm that a lost attempt's tree is dead.
CONFIRM_TIMEOUT_SEC = 10.0


def set_parent_death_signal(sig: int) -> None:
    """Have the kernel send `sig` to this process when its parent (thread) dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")


@dataclass
class AttemptResult:
    """What the agent tells its worker when an attempt ends; the files are in `directory`."""

    finished: Finished
    pid: int | None
    directory: str


@dataclass
class _Request:
    op: str  # "start", "stop", "kill"
    tag: str
    spec: LaunchSpec | None = None
    report: tuple[str, str] = ("", "")  # a start's events topic and step id (_confirm_dead)


# --- the agent process ------------------------------------------------------------------------


class _Agent:
    def __init__(
        self, requests: Connection, replies: Connection, frozen_sec: float | None, scheduler: str
    ) -> None:
        self.requests = requests
        self.replies = replies
        self.procs = ProcessSet()
        self.inbox: deque[_Request | None] = deque()
        self.dirs: dict[str, str] = {}
        self.pids: dict[str, int | None] = {}
        self.stopped: set[str] = set()  # stopped before they started: never run them
        self.ending = False
        self.base = _SHM if os.access(_SHM, os.W_OK) else tempfile.gettempdir()
        # A worker stopped (SIGSTOP) this long has been dropped by the scheduler (its
        # worker-ttl) and its attempts retried elsewhere: their trees must not run on.
        self.frozen_sec = frozen_sec
        self.frozen_since: float | None = None
        self.lost: set[str] = set()
        self.scheduler = scheduler
        self.reports: dict[str, tuple[str, str]] = {}  # tag -> its run's topic and step id
        self.unsent: list[str] = []  # ended, but the worker went before it could be told

    def read_requests(self) -> None:
        """The reader thread: requests into the inbox, then a wakeup of the main loop."""
        try:
            while True:
                self.inbox.append(self.requests.recv())
                self.procs.wakeup()
        except (EOFError, OSError):
            self.inbox.append(None)  # the worker is gone
            self.procs.wakeup()

    def serve(self) -> None:
        try:
            while not self.ending:
                watch = self.frozen_sec is not None and self.procs.running > 0
                for finished in self.procs.wait(FROZEN_CHECK_SEC if watch else None):
                    self._reply(finished)
                if watch:
                    self._check_frozen()
                while self.inbox and not self.ending:
                    request = self.inbox.popleft()
                    if request is None:
                        self.ending = True
                    else:
                        self._handle(request)
        finally:  # whatever ends the agent, no tree it ran outlives it
            dead = self._kill_all()
            self.procs.close()
            for directory in self.dirs.values():
                shutil.rmtree(directory, ignore_errors=True)
            ended = [(t, *self.reports.get(t, ("", ""))) for t in [*self.unsent, *dead]]
            _confirm_dead(self.scheduler, ended)

    def _kill_all(self) -> list[str]:
        """Kill every tree; the tags of those known dead (their attempt ended: its main process
        reaped, its process group empty, no adopted orphan left)."""
        self.procs.kill_all()
        dead: list[str] = []
        give_up = time.monotonic() + CONFIRM_TIMEOUT_SEC
        while self.procs.running and time.monotonic() < give_up:
            dead += [f.key for f in self.procs.wait(give_up - time.monotonic())]
        return dead

    def _check_frozen(self) -> None:
        assert self.frozen_sec is not None
        if not _parent_stopped():
            self.frozen_since = None
            return
        now = time.monotonic()
        self.frozen_since = self.frozen_since or now
        if now - self.frozen_since >= self.frozen_sec:
            for tag in self.dirs:
                if tag in self.procs and tag not in self.lost:
                    self.lost.add(tag)
                    self.procs.kill(tag)

    def _handle(self, request: _Request) -> None:
        if request.op == "start" and request.spec is not None:
            self._start(request.tag, request.spec, request.report)
        elif request.tag in self.procs:
            if request.op == "kill":
                self.procs.kill(request.tag)
            else:
                self.procs.cancel(request.tag)
        else:
            self.stopped.add(request.tag)

    def _start(self, tag: str, spec: LaunchSpec, report: tuple[str, str]) -> None:
        try:
            directory = tempfile.mkdtemp(prefix="planrun-", dir=self.base)
        except OSError as exc:
            reason = f"cannot create the attempt's directory on the worker: {exc.strerror}"
            self._send(("finished", tag, AttemptResult(_failed(tag, reason), None, "")))
            return
        self.dirs[tag] = directory
        local = replace(
            spec,
            stdout_path=os.path.join(directory, "stdout"),
            stderr_path=os.path.join(
                directory, "stdout" if spec.stderr_path == spec.stdout_path else "stderr"
            ),
            env={**spec.env, "PLAN_OUTPUT": os.path.join(directory, "outputs")},
            echo_fds=None,
            log_dir_fd=None,
        )
        os.close(os.open(local.env["PLAN_OUTPUT"], os.O_CREAT | os.O_WRONLY, 0o600))
        if tag in self.stopped:
            self._reply(_cancelled(tag))
            return
        self.reports[tag] = report
        try:
            started: Started = self.procs.start(tag, local)
        except SpawnError as exc:
            self._reply(Finished.from_spawn_error(tag, exc))
            return
        self.pids[tag] = started.pid
        self._send(("started", tag, (started.pid, directory)))

    def _reply(self, finished: Finished) -> None:
        tag = finished.key
        report = self.reports.get(tag, ("", ""))
        if tag in self.lost:
            self.lost.discard(tag)
            reason = f"worker lost: frozen for over {self.frozen_sec:g}s"
            finished = replace(finished, outcome="lost", reason=reason)
            # The worker is stopped: the coordinator learns that this tree is dead from here.
            args = (self.scheduler, [(tag, *report)])
            threading.Thread(target=_confirm_dead, args=args, daemon=True).start()
        directory = self.dirs.pop(tag, "")
        result = AttemptResult(finished, self.pids.pop(tag, None), directory)
        if self._send(("finished", tag, result)):
            self.reports.pop(tag, None)
        else:
            self.unsent.append(tag)

    def _send(self, reply: tuple[str, str, Any]) -> bool:
        try:
            self.replies.send(reply)
        except OSError:  # the worker is gone: end, killing every tree
            self.ending = True
            return False
        return True


def _parent_stopped() -> bool:
    try:
        with open(f"/proc/{os.getppid()}/stat", "rb") as stat:
            state = stat.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state in (b"T", b"t")


def _confirm_dead(scheduler: str, dead: list[tuple[str, str, str]]) -> None:
    """Tell the coordinators, through the scheduler (an event on each run's topic), that these
    attempts' trees (tag, topic, step id) are dead; best effort: a coordinator that hears
    nothing gives up waiting after dask_launcher.LOST_CONFIRM_SEC."""
    dead = [d for d in dead if d[1]]
    if not dead or not scheduler:
        return
    try:
        from distributed import Client

        client = Client(  # type: ignore[no-untyped-call]
            scheduler, timeout=CONFIRM_TIMEOUT_SEC, set_as_default=False
        )
        with client:
            for tag, topic, step in dead:
                client.log_event(topic, {"step": step, "tag": tag, "dead": True})
    except Exception as exc:  # the scheduler is gone or unreachable: nothing to tell it
        sys.stderr.write(f"planrun agent: cannot confirm {len(dead)} attempt(s) ended: {exc}\n")


def _failed(tag: str, reason: str) -> Finished:
    return Finished.from_spawn_error(tag, SpawnError(reason))


def _cancelled(tag: str) -> Finished:
    return replace(_failed(tag, "cancelled"), outcome="cancelled")


def main() -> None:
    """`python -c … REQUEST_FD REPLY_FD FROZEN_SEC SCHEDULER`, started by AgentHandle.spawn."""
    requests = Connection(int(sys.argv[-4]), writable=False)
    replies = Connection(int(sys.argv[-3]), readable=False)
    frozen = float(sys.argv[-2])
    agent = _Agent(requests, replies, frozen if frozen > 0 else None, sys.argv[-1])

    def parent_died(signum: int, frame: object) -> None:
        agent.inbox.append(None)
        agent.procs.wakeup()

    signal.signal(signal.SIGTERM, parent_died)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C of the worker's terminal: it decides
    threading.Thread(target=agent.read_requests, daemon=True).start()
    agent.serve()


# --- the worker's side ------------------------------------------------------------------------


@dataclass
class _Waiter:
    done: threading.Event = field(default_factory=threading.Event)
    result: AttemptResult | None = None
    started: tuple[int, str] | None = None  # the attempt's pid and directory


class AgentHandle:
    """The worker process's link to its agent; used from Dask task threads."""

    def __init__(self, proc: subprocess.Popen[bytes], requests: Connection, replies: Connection):
        self.proc = proc
        self.requests = requests
        self.replies = replies
        self.lock = threading.Lock()
        self.waiters: dict[str, _Waiter] = {}
        self.broken = False  # the replies can no longer be read
        threading.Thread(target=self._read_replies, daemon=True).start()

    @classmethod
    def spawn(cls, frozen_sec: float, scheduler: str) -> AgentHandle:
        """The agent; it kills the trees of a worker stopped for `frozen_sec` (0: never), and
        confirms the end of a lost worker's trees to the coordinator through `scheduler`."""
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        proc = subprocess.Popen(
            # Not `-m planrun.agent`: the replies' classes must pickle as planrun.agent's.
            [
                sys.executable,
                "-c",
                "from planrun.agent import main; main()",
                str(req_r),
                str(rep_w),
                str(frozen_sec),
                scheduler,
            ],
            pass_fds=(req_r, rep_w),
            stdin=subprocess.DEVNULL,
            # Its own session: a signal to the worker's process group (Ctrl-C, a kill of the
            # group) reaches the agent only as its parent's death, after which it kills its trees.
            start_new_session=True,
            preexec_fn=lambda: set_parent_death_signal(signal.SIGTERM),
        )
        os.close(req_r)
        os.close(rep_w)
        os.set_inheritable(req_w, False)
        os.set_inheritable(rep_r, False)
        return cls(proc, Connection(req_w, readable=False), Connection(rep_r, writable=False))

    def run(
        self,
        tag: str,
        spec: LaunchSpec,
        report: tuple[str, str],
        cancelled: Callable[[], bool],
        on_started: Callable[[int, str], None],
        on_tick: Callable[[], None],
    ) -> AttemptResult:
        """Run one attempt to its end (`report`: its run's topic and step id, for the agent to
        confirm its tree's end should the worker die); `cancelled()` is polled: True stops it
        gracefully;
        `on_started(pid, directory)` is called once the attempt's process runs (its files are
        in `directory`), then `on_tick()` at every poll."""
        waiter = self.waiters[tag] = _Waiter()
        self._send(_Request("start", tag, spec, report))
        asked = placed = False
        while not waiter.done.wait(POLL_SEC):
            if not placed and waiter.started is not None:
                placed = True
                on_started(*waiter.started)
            if placed:
                on_tick()
            if not asked and cancelled():
                asked = True
                self.stop(tag, hard=False)
            if self.broken or self.proc.poll() is not None:
                raise RuntimeError(
                    f"the planrun agent of this worker exited ({self.proc.returncode})"
                )
        del self.waiters[tag]
        assert waiter.result is not None
        return waiter.result

    def stop(self, tag: str, hard: bool) -> None:
        self._send(_Request("kill" if hard else "stop", tag))

    def _send(self, request: _Request) -> None:
        with self.lock:
            self.requests.send(request)

    def _read_replies(self) -> None:
        try:
            while True:
                kind, tag, value = self.replies.recv()
                waiter = self.waiters.get(tag)
                if waiter is None:
                    continue
                if kind == "started":
                    waiter.started = value
                else:
                    waiter.result = value
                    waiter.done.set()
        finally:
            self.broken = True

    def close(self) -> None:
        self.requests.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(30)


if __name__ == "__main__":
    main()
