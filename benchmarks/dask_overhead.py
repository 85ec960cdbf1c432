"""planrun's per-step overhead on a Dask cluster against local runs (docs/distributed.md).

The same plans as runtime_vs_floor.py (W1 independent steps, W2 a chain, each step `true`),
run by `planrun plan.ir.json -j2 -q` locally and with `--executor dask://…` on a cluster of a
`planrun scheduler` and two `planrun worker --nthreads 1` on 127.0.0.1 (the same two slots as
-j2). Besides wall time it reads the scheduler's CPU time (/proc utime+stime) and the
coordinator's (wait4 rusage of the planrun child) to estimate what one scheduler and one
coordinator could drive: 100 workers × 10,000 steps.

    python benchmarks/dask_overhead.py --repeat 3
    python benchmarks/dask_overhead.py --quick           # W1 100 steps, W2 30 (CI smoke test)
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "distributed"))

from _harness import machine_header, median, table  # noqa: E402
from runtime_vs_floor import Workload, chain, independent, write_plan  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def _run(argv: list[str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and the child's CPU seconds (its own and its reaped children's)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    done = subprocess.run(argv, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed:\n{done.stderr.decode(errors='replace')[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def measure(w: Workload, root: Path, url: str, scheduler_pid: int, repeat: int) -> list[str]:
    root.mkdir(parents=True)
    write_plan(w, root / "plan.json")
    compile_ = [sys.executable, "-m", "planc", "compile", "plan.json", "-o", "plan.ir.json"]
    subprocess.run(compile_, cwd=root, check=True, stdin=subprocess.DEVNULL, capture_output=True)
    walls: dict[str, list[float]] = {"local": [], "dask": []}
    coordinator_cpu: list[float] = []
    scheduler_cpu: list[float] = []
    for n in range(repeat):
        for mode in ("local", "dask"):
            argv = [sys.executable, "-m", "planrun", "plan.ir.json", "-j", "2", "-q"]
            argv += ["--state-dir", f"state-{mode}-{n}"]
            if mode == "dask":
                argv += ["--executor", url]
                sched_before = _cpu_seconds(scheduler_pid)
            wall, cpu = _run(argv, root)
            walls[mode].append(wall)
            if mode == "dask":
                scheduler_cpu.append(_cpu_seconds(scheduler_pid) - sched_before)
                coordinator_cpu.append(cpu)
    local, remote = median(walls["local"]), median(walls["dask"])
    per = 1000 / w.steps
    return [
        w.name, f"{w.steps:,}", f"{local * per:.2f}", f"{remote * per:.2f}",
        f"{(remote - local) * per:+.2f}", f"{median(coordinator_cpu) * per:.2f}",
        f"{median(scheduler_cpu) * per:.2f}",
    ]  # fmt: skip


def estimate(rows: list[list[str]]) -> str:
    """100 workers × 10,000 steps from W1's measured per-step CPU of scheduler and coordinator."""
    w1 = next(r for r in rows if r[0] == "W1")
    coordinator_ms, scheduler_ms = float(w1[5]), float(w1[6])
    steps, workers = 10_000, 100
    lines = []
    for step_sec in (0.0, 10.0, 60.0):
        work = steps * step_sec / workers
        bound = steps * max(coordinator_ms, scheduler_ms) / 1000
        lines.append(
            f"- steps of {step_sec:g} s: ≥ {max(work, bound):,.0f} s"
            f" (workers busy {work:,.0f} s; coordinator {steps * coordinator_ms / 1000:,.0f} s"
            f" and scheduler {steps * scheduler_ms / 1000:,.0f} s of CPU)"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    from cluster import start_cluster  # tests/distributed/cluster.py

    work = [independent("W1", 100), chain("W2", 30)] if args.quick else [
        independent("W1", 1_000), chain("W2", 300)
    ]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="dask-bench-") as tmp:
        workers = {"a": ["--nthreads", "1"], "b": ["--nthreads", "1"]}
        cluster = start_cluster(Path(tmp) / "cluster", workers)
        try:
            rows = [
                measure(w, Path(tmp) / w.name, cluster.url, cluster.scheduler.pid, args.repeat)
                for w in work
            ]
        finally:
            cluster.stop()
    print(machine_header(sys.argv))
    headers = [
        "workload", "steps", "local ms/step", "dask ms/step", "dask − local",
        "coordinator CPU ms/step", "scheduler CPU ms/step",
    ]  # fmt: skip
    print(table(headers, rows))
    print()
    print("Estimate, 100 workers × 10,000 steps (one scheduler, one coordinator):")
    print(estimate(rows))


if __name__ == "__main__":
    main()
