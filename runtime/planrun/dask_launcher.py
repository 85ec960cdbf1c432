"""The Dask launcher: the coordinator's side of `planrun PLAN --executor dask://HOST:PORT`.

Each attempt is one Dask task (`dask_worker.run_attempt`) that a `planrun worker` runs through
its agent. The truth stays here: only this process writes the state dir; the task's result
(its end, its masked logs, its $PLAN_OUTPUT) is written into the same attempt files as a local
step's, then the future is released. Steps with `executor: local` run in this process's own
ProcessSet, which is also what `wait` blocks on (the futures' callbacks wake it).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from planrun.core.launcher import Finished, LauncherError, LaunchSpec, Placement, Started
from planrun.core.writes import write_all
from planrun.process import ProcessSet
from planrun.safefs import create_private

if TYPE_CHECKING:
    from planrun.core.ir import IR

# distributed is untyped: its Client and Future are Any here.
Client = Any
Future = Any

SCHEMES = {"dask": "tcp", "dask+tls": "tls"}
CONNECT_TIMEOUT_SEC = 10.0
CLOSE_TIMEOUT_SEC = 10.0
# A lost worker's attempt ends once its agent confirmed that its tree is dead (so that the retry
# never runs beside it), or after this long without word (the machine is gone, or cut off).
LOST_CONFIRM_SEC = 30.0
# The reasons of lost attempts whose tree may still run on its worker (a task that raised did
# not get to run one, or its agent is gone: docs/distributed.md, "Limits").
_WORKER_LOST = "worker lost: "
_DROPPED = "lost: the Dask scheduler dropped the task"
_TREE_MAY_RUN = (_WORKER_LOST, _DROPPED)


@dataclass
class _Remote:
    tag: str
    future: Future
    spec: LaunchSpec
    t0: float
    placed: bool = False
    stopping: bool = False  # cancelled by planrun (else a dropped future is a lost attempt)
    held: tuple[Finished, float] | None = None  # lost: its end, held until then (monotonic)
    echoed: dict[str, int] = field(default_factory=lambda: {"stdout": 0, "stderr": 0})


def scheduler_address(url: str) -> str:
    """`dask://HOST:PORT` -> `tcp://HOST:PORT` (`dask+tls://` -> `tls://`)."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES or not parts.hostname or parts.port is None:
        raise LauncherError(
            f"--executor {url!r}: expected dask://HOST:PORT or dask+tls://HOST:PORT"
        )
    return f"{SCHEMES[parts.scheme]}://{parts.netloc}"


def is_loopback(host: str) -> bool:
    try:
        return all(
            ipaddress.ip_address(a[4][0]).is_loopback for a in socket.getaddrinfo(host, None)
        )
    except (OSError, ValueError):
        return False


class DaskLauncher:
    def __init__(self, url: str, ir: IR, has_secrets: bool) -> None:
        address = scheduler_address(url)
        host = urlsplit(url).hostname or ""
        if has_secrets and address.startswith("tcp://") and not is_loopback(host):
            raise LauncherError(
                f"the plan has secrets and {host} is not this machine: they would cross the"
                ' network in clear; use dask+tls:// (docs/distributed.md, "Secrets")'
            )
        self.steps = ir.steps_by_id
        self.address = address
        self.local = ProcessSet()
        try:
            self.client = _connect(address)
            _check_scheduler(self.client, address)
            _check_resources(self.client, ir, address)
        except BaseException:
            self.local.close()
            raise
        self.topic = f"planrun-{self.client.id}"  # placements and live output
        self.client.subscribe_topic(self.topic, self._on_event)
        self.remote: dict[str, _Remote] = {}
        self.done: deque[tuple[str, str, Future]] = deque()
        self.placed: deque[dict[str, Any]] = deque()  # raw, from the workers
        self.placed_out: list[Placement] = []
        self.dead: set[str] = set()  # tags whose tree a worker confirmed dead after a loss
        self.echo_lock = threading.Lock()  # live chunks (the client's thread) and results
        self.token = os.urandom(4).hex()
        self.seq = 0

    # --- the Launcher protocol ----------------------------------------------------------------

    def start(self, key: str, spec: LaunchSpec) -> Started:
        step = self.steps[key]
        if step.executor == "local":
            return self.local.start(key, spec)
        from planrun.dask_worker import run_attempt

        self.seq += 1
        tag = f"{self.token}-{os.getpid()}-{self.seq}"
        for path in {spec.stdout_path, spec.stderr_path}:  # there from the start, as locally
            _write(path, spec.log_dir_fd, b"")
        future = self.client.submit(
            run_attempt, tag, spec, self.topic, key, key=f"planrun-{key}-{tag}", pure=False,
            resources=step.resources or None, retries=0,
        )  # fmt: skip
        self.remote[key] = _Remote(tag, future, spec, time.monotonic())
        future.add_done_callback(lambda f: self._on_done(key, tag, f))
        return Started(None, None, None, tag)

    def wait(self, timeout: float | None) -> list[Finished]:
        holds = [r.held[1] - time.monotonic() for r in self.remote.values() if r.held]
        if holds:
            timeout = max(0.0, min(holds if timeout is None else [timeout, *holds]))
        ended = self.local.wait(0 if self.done else timeout)
        while self.done:
            key, tag, future = self.done.popleft()
            remote = self.remote.get(key)
            if remote is None or remote.tag != tag or remote.held:  # already closed: ignored
                future.release()
                continue
            finished = self._finished(key, remote, future)
            if finished.reason.startswith(_TREE_MAY_RUN) and not remote.stopping:
                remote.held = (finished, time.monotonic() + LOST_CONFIRM_SEC)
            else:
                del self.remote[key]
                self.dead.discard(tag)  # a cancelled attempt's task confirms its end too
                ended.append(finished)
        return ended + self._released()

    def _released(self) -> list[Finished]:
        """The lost attempts whose tree is now known dead, or waited for long enough: the
        attempt ends there, and only then may the executor retry the step."""
        ended = []
        for key, remote in list(self.remote.items()):
            if remote.held is None:
                continue
            finished, give_up = remote.held
            if remote.tag in self.dead or remote.stopping:
                self.dead.discard(remote.tag)
            elif time.monotonic() >= give_up:
                why = f" (its process tree was not confirmed dead within {LOST_CONFIRM_SEC:g}s)"
                finished = replace(finished, reason=f"{finished.reason}{why}")
            else:
                continue
            del self.remote[key]
            ended.append(finished)
        return ended

    def kill_leftovers(self, tags: list[str]) -> int:
        """`--resume`: kill the trees these attempts of a dead coordinator left on any worker,
        and return once they are dead: how many there were."""
        from planrun.dask_worker import kill_leftovers

        if not tags:
            return 0
        try:
            counts: dict[str, int] = self.client.run(kill_leftovers, tags)
        except Exception as exc:  # a worker that cannot answer may still run one of them
            raise LauncherError(
                f"cannot make sure that the run's attempts on the workers of {self.address} are"
                f" stopped ({type(exc).__name__}: {exc}); the run was not resumed"
            ) from None
        return sum(counts.values())

    def wakeup(self) -> None:
        self.local.wakeup()

    def cancel(self, key: str) -> None:
        if key in self.local:
            self.local.cancel(key)
            return
        remote = self.remote[key]
        remote.stopping = True
        if not remote.placed and not remote.held:  # still queued: the scheduler drops it
            self.client.cancel(remote.future)
        self._stop([remote.tag], hard=False)

    def kill_all(self) -> None:
        self.local.kill_all()
        for remote in self.remote.values():
            remote.stopping = True
            if not remote.placed and not remote.held:
                self.client.cancel(remote.future)
        self._stop([r.tag for r in self.remote.values()], hard=True)

    def placements(self) -> list[Placement]:
        out, self.placed_out = self.placed_out, []
        while self.placed:
            msg = self.placed.popleft()
            remote = self.remote.get(msg["step"])
            if remote is None or remote.tag != msg["tag"] or remote.placed:
                continue
            remote.placed = True
            out.append(Placement(msg["step"], msg["worker"], msg["host"], msg["pid"]))
        return out

    @property
    def running(self) -> int:
        return self.local.running + len(self.remote)

    def __contains__(self, key: object) -> bool:
        return key in self.remote or key in self.local

    def close(self) -> None:
        try:
            if self.remote:
                self.kill_all()
                give_up = time.monotonic() + CLOSE_TIMEOUT_SEC
                while self.remote and time.monotonic() < give_up:
                    self.wait(give_up - time.monotonic())
            # The scheduler keeps a topic's last 1,000 events (up to 64 KiB of output each) for
            # its lifetime: drop this run's (best effort: private API, planrun on the scheduler).
            with contextlib.suppress(Exception):
                self.client.unsubscribe_topic(self.topic)
                self.client.run_on_scheduler(_forget_topic, self.topic)
            self.client.close()
        finally:
            self.local.close()

    # --- callbacks (the client's thread) and results ------------------------------------------

    def _on_done(self, key: str, tag: str, future: Future) -> None:
        self.done.append((key, tag, future))
        self.local.wakeup()

    def _on_event(self, event: tuple[float, dict[str, Any]]) -> None:
        msg = event[1]
        if "data" in msg:
            self._write_chunk(msg)
            return
        if msg.get("dead"):
            remote = self.remote.get(msg["step"])
            if remote is not None and remote.tag == msg["tag"]:
                self.dead.add(msg["tag"])
                self.local.wakeup()
            return
        self.placed.append(msg)
        self.local.wakeup()

    def _write_chunk(self, msg: dict[str, Any]) -> None:
        """Live output of a running attempt, written in place (the client's thread; the whole
        log is written again from the result, so a chunk that comes late changes nothing)."""
        remote = self.remote.get(msg["step"])
        if remote is None or remote.tag != msg["tag"]:
            return
        spec = remote.spec
        path = spec.stdout_path if msg["stream"] == "stdout" else spec.stderr_path
        name = os.path.basename(path) if spec.log_dir_fd is not None else path
        with contextlib.suppress(OSError):
            fd = os.open(name, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=spec.log_dir_fd)
            try:
                os.pwrite(fd, msg["data"], int(msg["offset"]))
            finally:
                os.close(fd)
        self._echo(remote, msg["stream"], msg["data"], int(msg["offset"]))

    def _echo(self, remote: _Remote, stream: str, data: bytes, offset: int) -> None:
        """`planrun exec`: a remote attempt's (masked) output on our stdout/stderr, each byte
        once and in order: what follows what was echoed, from a live chunk or the result."""
        if remote.spec.echo_fds is None:
            return
        with self.echo_lock:
            done = remote.echoed[stream]
            if offset > done or offset + len(data) <= done:
                return  # a gap (the result fills it) or echoed already
            remote.echoed[stream] = offset + len(data)
            fd = remote.spec.echo_fds[0 if stream == "stdout" else 1]
            with contextlib.suppress(OSError):  # a closed pipe ends the echo, never the step
                write_all(fd, data[done - offset :])

    def _stop(self, tags: list[str], hard: bool) -> None:
        from planrun.dask_worker import stop_attempts

        if tags:
            with contextlib.suppress(Exception):  # a worker gone meanwhile: its agent killed all
                self.client.run(stop_attempts, tags, hard, wait=False)

    def _finished(self, key: str, remote: _Remote, future: Future) -> Finished:
        status = future.status
        try:
            if status == "finished":
                result: dict[str, Any] = future.result()
                return self._record(key, remote, result)
            now = time.time()
            duration = time.monotonic() - remote.t0
            if status == "cancelled" and remote.stopping:
                return Finished(key, "cancelled", None, None, "cancelled", "", duration, now, now)
            # Cancelled, not by planrun: the scheduler (or the link) dropped it.
            reason = _DROPPED if status == "cancelled" else _failure_reason(future.exception())
            return Finished(key, "lost", None, None, reason, "", duration, now - duration, now)
        finally:
            future.release()  # a kept future is recomputed when a worker dies

    def _record(self, key: str, remote: _Remote, result: dict[str, Any]) -> Finished:
        """Write the attempt's files where a local attempt's are; its end is as the worker's
        ProcessSet saw it (the stderr tail taken there from the masked log, as locally)."""
        spec = remote.spec
        finished: Finished = result["finished"]
        if not remote.placed and result["pid"] is not None:  # the result overtook the event
            remote.placed = True
            placed = Placement(key, result["worker"], result["host"], result["pid"])
            self.placed_out.append(placed)
        _write(spec.stdout_path, spec.log_dir_fd, result["stdout"] or b"")
        self._echo(remote, "stdout", result["stdout"] or b"", 0)
        if spec.stderr_path != spec.stdout_path:
            _write(spec.stderr_path, spec.log_dir_fd, result["stderr"] or b"")
            self._echo(remote, "stderr", result["stderr"] or b"", 0)
        if result["outputs"]:
            _write(spec.env["PLAN_OUTPUT"], spec.log_dir_fd, result["outputs"])
        return replace(finished, key=key)  # the agent knew it by its tag


def _forget_topic(topic: str, dask_scheduler: Any = None) -> None:
    dask_scheduler._broker.truncate(topic)


def _failure_reason(exc: BaseException | None) -> str:
    from distributed.scheduler import KilledWorker

    if isinstance(exc, KilledWorker):
        worker = getattr(exc.last_worker, "address", exc.last_worker)
        return f"{_WORKER_LOST}{worker}"
    return f"remote error: {type(exc).__name__}: {exc}"


def _write(path: str, dir_fd: int | None, data: bytes) -> None:
    name = os.path.basename(path) if dir_fd is not None else path
    fd = create_private(name, dir_fd=dir_fd)
    try:
        write_all(fd, data)
    finally:
        os.close(fd)


def _connect(address: str) -> Client:
    from distributed import Client as DaskClient

    try:
        client: Client = DaskClient(  # type: ignore[no-untyped-call]
            address, timeout=CONNECT_TIMEOUT_SEC, set_as_default=False
        )
        return client
    except (OSError, TimeoutError) as exc:
        raise LauncherError(f"cannot reach the Dask scheduler at {address}: {exc}") from None


def _check_scheduler(client: Client, address: str) -> None:
    def allowed_failures(dask_scheduler: Any) -> int:
        return int(dask_scheduler.allowed_failures)

    failures = client.run_on_scheduler(allowed_failures)
    if failures != 0:
        client.close()
        raise LauncherError(
            f"the Dask scheduler at {address} re-runs the tasks of lost workers"
            f" (allowed-failures={failures}), so a step could run twice; start it with"
            " `planrun scheduler` or DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=0"
        )


def _check_resources(client: Client, ir: IR, address: str) -> None:
    """A step needing what no worker offers would wait forever (`no-worker`): refuse the run."""
    workers = client.scheduler_info(n_workers=-1)["workers"]
    if not workers:
        client.close()
        raise LauncherError(f"no worker is connected to the Dask scheduler at {address}")
    offered = [w.get("resources") or {} for w in workers.values()]
    for step in ir.steps:
        needs: Mapping[str, float] = step.resources or {}
        if step.executor == "local" or not needs:
            continue
        if not any(all(o.get(r, 0) >= n for r, n in needs.items()) for o in offered):
            wanted = ", ".join(f"{r}={n:g}" for r, n in sorted(needs.items()))
            client.close()
            raise LauncherError(
                f"step {step.id} needs {wanted}, which no worker of {address} offers"
                f" ({len(workers)} worker(s) connected)"
            )
