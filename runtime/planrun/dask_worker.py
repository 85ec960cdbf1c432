"""`planrun worker` and `planrun scheduler`: a Dask worker whose tasks run attempts through the
planrun agent (planrun.agent), and `dask scheduler` with safe defaults (docs/distributed.md).

Imported only by those commands and, on a worker, by the tasks the coordinator submits.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any

from planrun.agent import POLL_SEC, AgentHandle
from planrun.core.launcher import LaunchSpec

# The worker process's agent (set by `serve`); tasks reach it through this module.
_AGENT: AgentHandle | None = None
# Dask re-runs a task whose worker died; planrun retries by itself (the plan's `retries`), so
# the scheduler must give up at once: a step never runs twice behind planrun's back.
SCHEDULER_ENV = {"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"}
_LOST_STATES = frozenset({"cancelled", "released", "forgotten"})
# How long `kill_leftovers` waits for killed trees to be gone (SIGKILL: milliseconds).
LEFTOVER_TIMEOUT_SEC = 30.0


# Output is streamed to the coordinator in chunks of at most this size (Dask's events are
# small messages; the scheduler keeps the last 1,000 of a topic for late subscribers).
LOG_CHUNK = 65536


class _LogStream:
    """Sends what an attempt's logs gained since the last look, as `log_event`s with offsets:
    the coordinator writes them in place for `planrun logs -f` and the live views. The full
    logs still come with the result: a lost chunk costs liveness, never content."""

    def __init__(self, send: Callable[[dict[str, Any]], None], spec: LaunchSpec) -> None:
        self.send = send
        self.merged = spec.stderr_path == spec.stdout_path
        self.offsets = {"stdout": 0} if self.merged else {"stdout": 0, "stderr": 0}
        self.directory = ""

    def tick(self) -> None:
        for stream, offset in self.offsets.items():
            try:
                with open(os.path.join(self.directory, stream), "rb") as file:
                    file.seek(offset)
                    data = file.read(LOG_CHUNK * 16)
            except OSError:
                continue
            for start in range(0, len(data), LOG_CHUNK):
                chunk = data[start : start + LOG_CHUNK]
                self.send({"stream": stream, "offset": offset + start, "data": chunk})
            self.offsets[stream] = offset + len(data)


def run_attempt(tag: str, spec: LaunchSpec, topic: str, step_id: str) -> dict[str, Any]:
    """The Dask task of one attempt: run it through the agent, return its end and its files."""
    from distributed import get_worker

    worker = get_worker()
    agent = _AGENT
    if agent is None:
        raise RuntimeError("this Dask worker was not started by `planrun worker`")
    task_key = worker.get_current_task()
    host = socket.gethostname()

    def cancelled() -> bool:  # client.cancel, or the coordinator's client went away
        state = worker.state.tasks.get(task_key)
        return state is None or state.state in _LOST_STATES

    def send(event: dict[str, Any]) -> None:
        worker.log_event(topic, {"step": step_id, "tag": tag, **event})

    logs = _LogStream(send, spec)

    def placed(pid: int, directory: str) -> None:
        logs.directory = directory
        send({"worker": worker.address, "host": host, "pid": pid})

    result = agent.run(tag, spec, (topic, step_id), cancelled, placed, logs.tick)
    if cancelled():  # nobody may wait for the result: say that the tree is dead (a held retry)
        send({"dead": True})
    files: dict[str, bytes | None] = dict.fromkeys(("stdout", "stderr", "outputs"))
    if result.directory:  # none when the agent could not even create it
        try:
            files = {name: _read(result.directory, name) for name in files}
        finally:
            shutil.rmtree(result.directory, ignore_errors=True)
    place = {"worker": worker.address, "host": host, "pid": result.pid}
    return {"finished": result.finished, **place, **files}


async def kill_leftovers(tags: list[str]) -> int:
    """Run by `Client.run` on every worker for `planrun --resume`: kill at once the trees of
    these attempts of a dead coordinator (never start them, should their task come late) and
    return, once they are dead, how many ran here."""
    if _AGENT is None:
        return 0
    waiters = [w for tag, w in list(_AGENT.waiters.items()) if tag in tags]
    for tag in tags:
        _AGENT.stop(tag, hard=True)
    give_up = asyncio.get_running_loop().time() + LEFTOVER_TIMEOUT_SEC
    while not all(w.done.is_set() for w in waiters):
        if asyncio.get_running_loop().time() > give_up:
            raise TimeoutError(f"the trees of {tags} did not end in {LEFTOVER_TIMEOUT_SEC:g}s")
        await asyncio.sleep(POLL_SEC)
    return len(waiters)


async def stop_attempts(tags: list[str], hard: bool) -> None:
    """Run by `Client.run` on every worker, in its event loop (a coroutine, which Dask needs
    for `wait=False`): stop these attempts, or never start them."""
    if _AGENT is not None:
        for tag in tags:
            _AGENT.stop(tag, hard)


def _read(directory: str, name: str) -> bytes | None:
    try:
        with open(os.path.join(directory, name), "rb") as file:
            return file.read()
    except FileNotFoundError:
        return None


def serve_worker(
    scheduler: str, resources: dict[str, float], name: str | None, nthreads: int, host: str
) -> int:
    """Run a Dask worker (no nanny: the agent's parent is this process) until it is told to stop."""
    global _AGENT
    import dask

    # Nothing a task holds may be written to this machine's disk (secrets in an attempt's env).
    dask.config.set(
        {"distributed.worker.memory.spill": False, "distributed.worker.memory.target": False}
    )
    import distributed  # noqa: F401  (loads Dask's distributed.* configuration)
    from dask.utils import parse_timedelta

    # The scheduler drops a worker silent for its worker-ttl; the same setting (a cluster sets
    # it alike everywhere, e.g. DASK_DISTRIBUTED__SCHEDULER__WORKER_TTL) tells the agent when a
    # stopped worker's attempts have been given up on.
    ttl = dask.config.get("distributed.scheduler.worker-ttl")
    _AGENT = AgentHandle.spawn(float(parse_timedelta(ttl) or 0) if ttl else 0.0, scheduler)
    try:
        asyncio.run(_run_worker(scheduler, resources, name, nthreads, host))
    finally:
        _AGENT.close()
    return 0


async def _run_worker(
    scheduler: str, resources: dict[str, float], name: str | None, nthreads: int, host: str
) -> None:
    from distributed import Worker

    async with Worker(
        scheduler, resources=resources or None, name=name, nthreads=nthreads, host=host,
        dashboard=False, dashboard_address="127.0.0.1:0",
    ) as worker:  # fmt: skip
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, lambda: asyncio.ensure_future(worker.close()))
        await worker.finished()


def scheduler_argv(host: str, port: int, extra: tuple[str, ...]) -> list[str]:
    """`dask scheduler` bound to `host`, its HTTP server (which --no-dashboard still opens)
    on loopback."""
    return [
        sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", host,
        "--port", str(port), "--no-dashboard", "--dashboard-address", "127.0.0.1:0", *extra,
    ]  # fmt: skip


def exec_scheduler(host: str, port: int, extra: tuple[str, ...]) -> None:
    argv = scheduler_argv(host, port, extra)
    os.execve(sys.executable, argv, {**os.environ, **SCHEDULER_ENV})
