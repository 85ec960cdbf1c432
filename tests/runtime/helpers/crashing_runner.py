"""Simulate a planrun process that dies without cleaning up (for kill_leftover tests).

Usage: python crashing_runner.py WORKDIR
Starts one attempt that leaves a background sleep in its process group and a
setsid'd daemon outside it, waits until both wrote their pidfiles, prints the
Started record as JSON and exits at once, with no ProcessSet.close().
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time

from planrun.core.launcher import LaunchSpec
from planrun.process import ProcessSet

SCRIPT = (
    "sleep 300 & echo $! > bg.pid; "
    "(setsid sh -c 'echo $$ > daemon.pid; exec sleep 300' &); "
    "exec sleep 300"
)


def main() -> None:
    workdir = sys.argv[1]
    spec = LaunchSpec(
        argv=["/bin/sh", "-c", SCRIPT],
        cwd=workdir,
        env=dict(os.environ),
        stdout_path=os.path.join(workdir, "out"),
        stderr_path=os.path.join(workdir, "err"),
        timeout_sec=None,
        heartbeat_timeout_sec=None,
        kill_grace_sec=1.0,
    )
    started = ProcessSet().start("leftover", spec)
    pidfiles = [os.path.join(workdir, name) for name in ("bg.pid", "daemon.pid")]
    give_up = time.monotonic() + 10
    while not all(os.path.exists(p) and os.path.getsize(p) for p in pidfiles):
        if time.monotonic() > give_up:
            sys.exit("the attempt never wrote its pidfiles")
        time.sleep(0.01)
    print(json.dumps(dataclasses.asdict(started)), flush=True)
    os._exit(0)  # a crash: nothing is killed, nothing is reaped


if __name__ == "__main__":
    main()
