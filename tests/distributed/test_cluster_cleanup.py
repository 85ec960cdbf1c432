"""The test cluster (cluster.py) does not outlive the process that started it: its scheduler and
workers run in sessions of their own, so without the parent-death signal a pytest killed with
SIGKILL would leave them running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed")

HERE = Path(__file__).resolve().parent
DEATH_TIMEOUT_SEC = 60.0

STARTER = """
import sys, time
from pathlib import Path
from cluster import start_cluster
cluster = start_cluster(Path(sys.argv[1]), {"a": []})
print(cluster.scheduler.pid, *(w.pid for w in cluster.workers.values()), flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return status != "Z"


def test_a_killed_starter_takes_its_cluster_with_it(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    starter = subprocess.Popen(
        [sys.executable, "-c", STARTER, str(tmp_path / "cluster")],
        stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env, text=True,
    )  # fmt: skip
    pids: list[int] = []
    try:
        assert starter.stdout is not None
        pids = [int(word) for word in starter.stdout.readline().split()]
        assert len(pids) == 2, "the cluster did not start"
        assert all(_alive(pid) for pid in pids)
        starter.kill()
        starter.wait(timeout=30)
        deadline = time.monotonic() + DEATH_TIMEOUT_SEC
        while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [pid for pid in pids if _alive(pid)] == []
    finally:
        if starter.poll() is None:
            starter.kill()
            starter.wait(timeout=30)
        for pid in pids:  # whatever survived, so that a failure leaves nothing behind
            if _alive(pid):
                os.killpg(pid, signal.SIGKILL)
