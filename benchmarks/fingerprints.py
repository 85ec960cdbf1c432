#!/usr/bin/env python3
"""Up-to-date checks: planrun's fingerprints against make and ninja on the same DAG.

The DAG: N steps (1,000) in a binary tree; step i reads 10 input files (9 sources of its own
and, but for the root, the output of its parent step (i-1)//2) and writes one output,
`out/i.txt` (`cat` of its inputs), and appends its id to `ran.log`. Each tool gets its own copy of
the tree: planrun (a plan with `sources`/`generates`), GNU make (a Makefile with the same
prerequisites) and ninja (a build.ninja with the same edges).

Measured, side by side, tools alternating run by run:
- build: the first run, every step runs;
- no-op: the median of `--repeat` runs with nothing changed (planrun after one warm-up run, so
  that outputs written less than 2 s before their first hashing are in the stat cache);
- one change: one source of step K edited; exactly K and its descendants must run again
  (checked with ran.log for every tool);
- hashing: planrun's stat cache over `--mb` MiB of input files (`--gb` for 1 GiB), cold (every
  file hashed) and warm (stat only), and `--hashes`: hashlib sha256/blake2b and, if installed,
  xxhash/blake3 over 256 MiB in memory.

    python benchmarks/fingerprints.py                 # 1,000 steps, 256 MiB hashing
    python benchmarks/fingerprints.py --gb --hashes   # + 1 GiB of inputs, algorithms
    python benchmarks/fingerprints.py --quick         # smoke run (tests/test_benchmarks.py)

See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INPUTS = 10


def parent(i: int) -> int | None:
    return None if i == 0 else (i - 1) // 2


def descendants(k: int, n: int) -> set[int]:
    found, stack = set(), [k]
    while stack:
        current = stack.pop()
        found.add(current)
        stack.extend(c for c in (2 * current + 1, 2 * current + 2) if c < n)
    return found


def inputs_of(i: int) -> list[str]:
    own = [f"src/{i}_{k}.txt" for k in range(INPUTS - (0 if i == 0 else 1))]
    p = parent(i)
    return own + ([] if p is None else [f"out/{p}.txt"])


def make_tree(directory: Path, n: int) -> None:
    (directory / "src").mkdir(parents=True)
    (directory / "out").mkdir()
    for i in range(n):
        for name in inputs_of(i):
            if name.startswith("src/"):
                (directory / name).write_text(f"{name}\n")


def write_plan(directory: Path, n: int) -> None:
    steps = []
    for i in range(n):
        p = parent(i)
        steps.append(
            {
                "id": f"s{i}",
                "command": f"cat {' '.join(inputs_of(i))} > out/{i}.txt && echo {i} >> ran.log",
                "shell": True,
                "sources": inputs_of(i),
                "generates": [f"out/{i}.txt"],
                "depends_on": [] if p is None else [f"s{p}"],
                "timeout_sec": 60,
            }
        )
    plan = {"plan_id": "fingerprint-bench", "globals": {"max_concurrency": 2}, "steps": steps}
    (directory / "plan.json").write_text(json.dumps(plan))
    compiled = subprocess.run(
        [sys.executable, "-m", "planc", "compile", "plan.json", "-o", "plan.ir.json"],
        cwd=directory, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if compiled.returncode != 0:
        raise SystemExit(f"planc failed: {compiled.stderr}")


def write_makefile(directory: Path, n: int) -> None:
    lines = [f"all: {' '.join(f'out/{i}.txt' for i in range(n))}", ""]
    for i in range(n):
        lines.append(f"out/{i}.txt: {' '.join(inputs_of(i))}")
        lines.append(f"\t@cat $^ > $@ && echo {i} >> ran.log")
    (directory / "Makefile").write_text("\n".join(lines) + "\n")


def write_ninja(directory: Path, n: int) -> None:
    lines = ["rule cat", "  command = cat $in > $out && echo $id >> ran.log", ""]
    for i in range(n):
        lines.append(f"build out/{i}.txt: cat {' '.join(inputs_of(i))}")
        lines.append(f"  id = {i}")
    (directory / "build.ninja").write_text("\n".join(lines) + "\n")


TOOLS = {
    "planrun": [sys.executable, "-m", "planrun", "plan.ir.json", "-q", "--state-dir", "state"],
    "make": ["make", "-r", "-j2", "-s"],
    "ninja": ["ninja", "-j2"],
}


def run_tool(tool: str, directory: Path) -> tuple[float, set[int]]:
    """Seconds, and the steps that ran (from ran.log)."""
    log = directory / "ran.log"
    log.unlink(missing_ok=True)
    start = time.perf_counter()
    done = subprocess.run(
        TOOLS[tool], cwd=directory, capture_output=True, text=True, check=False,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{tool} failed ({done.returncode}): {done.stderr[-2000:]}")
    ran = {int(x) for x in log.read_text().split()} if log.exists() else set()
    return elapsed, ran


def dag_benchmark(n: int, repeat: int, tools: list[str], work: Path) -> list[str]:
    dirs = {}
    for tool in tools:
        d = work / tool
        make_tree(d, n)
        {"planrun": write_plan, "make": write_makefile, "ninja": write_ninja}[tool](d, n)
        dirs[tool] = d
    results: dict[str, dict[str, float]] = {t: {} for t in tools}
    for tool in tools:
        seconds, ran = run_tool(tool, dirs[tool])
        assert ran == set(range(n)), f"{tool}: the first build ran {len(ran)} of {n} steps"
        results[tool]["build"] = seconds
    time.sleep(2.1)  # past planrun's racy window: the outputs are now cacheable
    if "planrun" in tools:
        run_tool("planrun", dirs["planrun"])  # warm-up: caches the digests of the outputs
    noop: dict[str, list[float]] = {t: [] for t in tools}
    for _ in range(repeat):
        for tool in tools:
            seconds, ran = run_tool(tool, dirs[tool])
            assert not ran, f"{tool}: a no-op run ran {sorted(ran)[:5]}"
            noop[tool].append(seconds)
    k = max(1, n // 3)
    expected = descendants(k, n)
    for tool in tools:
        source = dirs[tool] / f"src/{k}_0.txt"
        source.write_text(source.read_text() + "edited\n")
        seconds, ran = run_tool(tool, dirs[tool])
        assert ran == expected, f"{tool}: one change ran {sorted(ran)}, not {sorted(expected)}"
        results[tool]["change"] = seconds
    lines = [
        f"DAG: {n} steps (binary tree), {INPUTS} input files and 1 output each; "
        f"one change: step {k} and its {len(expected) - 1} descendants re-run (checked)",
        "",
        f"| tool | build s | no-op s (median of {repeat}) | no-op ms/step | one change s |",
        "|------|--------:|------------:|------:|------:|",
    ]
    for tool in tools:
        median = statistics.median(noop[tool])
        results[tool]["noop"] = median
        lines.append(
            f"| {tool} | {results[tool]['build']:.3f} | {median:.3f} |"
            f" {1000 * median / n:.3f} | {results[tool]['change']:.3f} |"
        )
    if "planrun" in tools:
        lines.append("")
        for other in (t for t in tools if t != "planrun"):
            ratio = results["planrun"]["noop"] / max(results[other]["noop"], 1e-9)
            change = results["planrun"]["change"] / max(results[other]["change"], 1e-9)
            lines.append(f"ratio planrun/{other}: no-op {ratio:.1f}x, one change {change:.1f}x")
    return lines


def hashing_benchmark(total_mb: int, work: Path) -> list[str]:
    sys.path.insert(0, str(ROOT / "runtime"))
    from planrun.statcache import StatCache
    from planrun.store import RunStore

    directory = work / "hashing"
    (directory / "data").mkdir(parents=True)
    chunk = os.urandom(1 << 20)
    files = max(1, total_mb // 8)
    per_file = total_mb // files
    for f in range(files):
        with open(directory / "data" / f"{f}.bin", "wb") as handle:
            for _ in range(per_file):
                handle.write(chunk)
    old = time.time() - 60
    for path in (directory / "data").iterdir():
        os.utime(path, (old, old))  # out of the racy window: cacheable at once
    RunStore.open(directory / "state").close()  # the schema, with its stat_cache table
    lines = []
    for label in ("cold (no stat cache: every file hashed)", "warm (stat cache: no file read)"):
        cache = StatCache(directory / "state")
        start = time.perf_counter()
        digests = cache.digests(str(directory), ["data/*.bin"])
        elapsed = time.perf_counter() - start
        cache.save()
        cache.close()
        assert len(digests) == files
        rate = f"{total_mb / 1024 / elapsed:.2f} GiB/s" if cache.hashed else "-"
        lines.append(
            f"| {label} | {total_mb} MiB in {files} files | {elapsed:.3f} s |"
            f" {cache.hashed} | {rate} |"
        )
    return [
        "| stat cache | inputs | time | files hashed | throughput |",
        "|------------|--------|-----:|-------------:|-----------:|",
        *lines,
    ]


def hash_algorithms() -> list[str]:
    data = memoryview(os.urandom(256 << 20))
    candidates: dict[str, object] = {
        "hashlib.sha256": hashlib.sha256,
        "hashlib.blake2b": hashlib.blake2b,
    }
    try:
        import xxhash  # type: ignore[import-not-found]

        candidates["xxhash.xxh3_128"] = xxhash.xxh3_128
    except ImportError:
        pass
    try:
        import blake3  # type: ignore[import-not-found]

        candidates["blake3"] = blake3.blake3
    except ImportError:
        pass
    lines = ["| algorithm | GB/s (256 MiB in memory, 1 MiB updates) |", "|---|---:|"]
    for name, factory in candidates.items():
        hasher = factory()  # type: ignore[operator]
        start = time.perf_counter()
        for offset in range(0, len(data), 1 << 20):
            hasher.update(data[offset : offset + (1 << 20)])
        hasher.digest()
        lines.append(f"| {name} | {len(data) / (time.perf_counter() - start) / 1e9:.2f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--mb", type=int, default=256, help="MiB of inputs to hash")
    parser.add_argument("--gb", action="store_true", help="hash 1 GiB of inputs")
    parser.add_argument("--hashes", action="store_true", help="compare hash algorithms")
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.repeat, args.mb = 30, 2, 8
    tools = ["planrun"] + [t for t in ("make", "ninja") if shutil.which(t)]
    with tempfile.TemporaryDirectory(prefix="fingerprint-bench-") as tmp:
        work = Path(tmp)
        report = dag_benchmark(args.steps, args.repeat, tools, work)
        report += ["", *hashing_benchmark(1024 if args.gb else args.mb, work)]
        if args.hashes:
            report += ["", *hash_algorithms()]
    print("\n".join(report))


if __name__ == "__main__":
    main()
