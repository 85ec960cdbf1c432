"""Per-step cost of running `true` sequentially: GNU make vs bare spawns vs ProcessSet.

Usage: python tests/runtime/helpers/bench_spawn.py [STEPS] [ROUNDS]
The variants run interleaved, round after round, and the median per-step time
of each is printed, so background load affects them alike. "parent CPU" is the
CPU time this process spent per step (children excluded): the cost that limits
throughput when steps run in parallel.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

from planrun.core.launcher import LaunchSpec
from planrun.process import ProcessSet


def cpu_time() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def bench_make(tmp: str, steps: int) -> float:
    make = shutil.which("make")
    if make is None:
        return float("nan")
    names = [f"t{i}" for i in range(steps)]
    rules = "".join(f"{n}:\n\t@true\n" for n in names)
    with open(os.path.join(tmp, "Makefile"), "w") as fh:
        fh.write(f"all: {' '.join(names)}\n{rules}")
    start = time.perf_counter()
    subprocess.run([make, "-s", "-j1", "-C", tmp], check=True, stdout=subprocess.DEVNULL)
    return (time.perf_counter() - start) / steps


def bench_popen(tmp: str, steps: int) -> float:
    out = os.path.join(tmp, "out")
    start = time.perf_counter()
    for _ in range(steps):
        with open(out, "wb") as fh:
            subprocess.run(["true"], stdout=fh, stderr=fh, stdin=subprocess.DEVNULL, check=True)
    return (time.perf_counter() - start) / steps


def bench_posix_spawn(tmp: str, steps: int) -> float:
    env = dict(os.environ)
    true = shutil.which("true") or "/bin/true"
    out = os.path.join(tmp, "out")
    start = time.perf_counter()
    for _ in range(steps):
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        actions = [(os.POSIX_SPAWN_DUP2, fd, 1), (os.POSIX_SPAWN_DUP2, fd, 2)]
        pid = os.posix_spawn(true, ["true"], env, file_actions=actions, setsid=True)
        os.close(fd)
        os.waitpid(pid, 0)
    return (time.perf_counter() - start) / steps


def bench_processset(tmp: str, steps: int, cwd: str) -> float:
    spec = LaunchSpec(
        argv=["true"],
        cwd=cwd,
        env=dict(os.environ),
        stdout_path=os.path.join(tmp, "o"),
        stderr_path=os.path.join(tmp, "e"),
        timeout_sec=None,
        heartbeat_timeout_sec=None,
        kill_grace_sec=5.0,
    )
    with ProcessSet() as ps:
        start = time.perf_counter()
        for _ in range(steps):
            ps.start("k", spec)
            while not ps.wait(None):
                pass
        return (time.perf_counter() - start) / steps


def main() -> None:
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    with tempfile.TemporaryDirectory() as tmp:
        variants: dict[str, Callable[[], float]] = {
            "make -j1": lambda: bench_make(tmp, steps),
            "subprocess.run": lambda: bench_popen(tmp, steps),
            "bare posix_spawn": lambda: bench_posix_spawn(tmp, steps),
            "ProcessSet (posix_spawn path)": lambda: bench_processset(tmp, steps, os.getcwd()),
            "ProcessSet (Popen path)": lambda: bench_processset(tmp, steps, tmp),
        }
        wall: dict[str, list[float]] = {name: [] for name in variants}
        cpu: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(rounds):
            for name, run in variants.items():
                before = cpu_time()
                wall[name].append(run())
                cpu[name].append((cpu_time() - before) / steps)
        base = statistics.median(wall["make -j1"])
        for name, values in wall.items():
            med = statistics.median(values)
            parent = (
                ""
                if name.startswith("make")
                else f"  parent CPU {statistics.median(cpu[name]) * 1e6:5.0f} us/step"
            )
            print(f"{name:30} {med * 1e3:6.3f} ms/step  {med / base:5.2f}x make{parent}")


if __name__ == "__main__":
    main()
