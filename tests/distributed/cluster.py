"""A local Dask cluster of `planrun scheduler` and `planrun worker` processes on 127.0.0.1, each
in its own session (tests/distributed and benchmarks/dask_overhead.py)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from planrun.agent import set_parent_death_signal

START_TIMEOUT_SEC = 60.0


@dataclass
class Cluster:
    url: str
    scheduler: subprocess.Popen[bytes]
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def stop(self) -> None:
        procs = [*self.workers.values(), self.scheduler]
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=20)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _planrun(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    parent = os.getpid()

    def die_with_parent() -> None:
        # In a session of its own, a scheduler or worker would outlive a pytest that is killed
        # (or a benchmark stopped with kill -9); the kernel stops it instead. The parent may
        # already be gone by the time this runs.
        set_parent_death_signal(signal.SIGTERM)
        if os.getppid() != parent:
            os._exit(1)

    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "planrun", *args],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, env={**os.environ, **env}, preexec_fn=die_with_parent,
        )  # fmt: skip


def _worker_count(address: str) -> int:
    from distributed import Client

    with Client(address, timeout=10, set_as_default=False) as client:
        return len(client.scheduler_info(n_workers=-1)["workers"])


def start_cluster(
    directory: Path, workers: dict[str, list[str]], env: dict[str, str] | None = None
) -> Cluster:
    """A scheduler and one worker per entry (name -> extra `planrun worker` arguments), ready;
    `env` is added to the environment of all of them (Dask's configuration)."""
    env = env or {}
    directory.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    url = f"dask://127.0.0.1:{port}"
    scheduler = _planrun(["scheduler", "--port", str(port)], directory / "scheduler.log", env)
    cluster = Cluster(url, scheduler)
    try:
        deadline = time.monotonic() + START_TIMEOUT_SEC
        while True:  # bounded wait for the port, not a sleep
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or scheduler.poll() is not None:
                    raise AssertionError((directory / "scheduler.log").read_text()) from None
                time.sleep(0.05)
        for name, extra in workers.items():
            args = ["worker", url, "--name", name, "--nthreads", "2", *extra]
            cluster.workers[name] = _planrun(args, directory / f"worker-{name}.log", env)
        address = f"tcp://127.0.0.1:{port}"
        while _worker_count(address) < len(workers):
            if time.monotonic() > deadline:
                raise AssertionError("the workers did not register")
            time.sleep(0.05)
    except BaseException:
        cluster.stop()
        raise
    return cluster
