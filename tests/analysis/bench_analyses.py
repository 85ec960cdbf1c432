"""Time each analysis on generated plans (default 1k and 10k steps): `python bench_analyses.py`.

Not a test (no `test_` prefix): it prints a table for docs/analysis.md. `--all-single-failures`
is quadratic by nature (one replay per step), so it is timed on the first `--rows` steps and
extrapolated to every step.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from analysis_support import big_plan

from planc.analysis import cleanup, reachability
from planc.analysis.bound import bound_for_ir
from planc.analysis.context import AnalysisContext
from planc.analysis.simulate import all_single_failures, simulate
from planc.pipeline import compile_bytes
from planrun.core.ir_types import IRStep
from planrun.core.semantics import rules_from_ir


def timed(action: Callable[[], Any], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - start)
    return best


def measure(steps: int, rows: int, full_limit: int) -> dict[str, float]:
    plan = big_plan(steps)
    data = json.dumps(plan).encode()
    compiled = compile_bytes("bench.json", data)
    assert compiled.ir is not None, [d.message for d in compiled.diagnostics[:5]]
    ir = json.loads(compiled.ir)
    plan_, graph = compiled.plan, compiled.graph

    def fresh() -> AnalysisContext:  # no shared memo: each analysis pays for what it needs
        return AnalysisContext(ir, plan_, graph)

    edges = sum(len(s["depends_on"]) for s in ir["steps"])
    rules = rules_from_ir(map(IRStep.from_json, ir["steps"]))
    first = [s["id"] for s in ir["steps"][:rows]]
    per_row = timed(lambda: [simulate(ir, fail=[sid], rules=rules) for sid in first], 1)
    per_row /= len(first)
    single = {}
    if len(ir["steps"]) <= full_limit:
        single["all single failures (measured)"] = timed(lambda: all_single_failures(ir), 1)
    return {
        "steps": len(ir["steps"]),
        "edges": edges,
        "check (no analyses)": timed(lambda: compile_bytes("b.json", data, want_ir=False)),
        "check (default analyses)": timed(
            lambda: compile_bytes(
                "b.json", data, want_ir=False, analyses=("bound", "reachability", "cleanup")
            )
        ),
        "bound": timed(lambda: bound_for_ir(ir)),
        "reachability": timed(lambda: list(reachability.check(fresh()))),
        "cleanup": timed(lambda: list(cleanup.check(fresh()))),
        "simulate (no failure)": timed(lambda: simulate(ir)),
        "simulate (first step fails)": timed(lambda: simulate(ir, fail=[first[0]])),
        "all single failures (extrapolated)": per_row * len(ir["steps"]),
        **single,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--rows", type=int, default=50)
    parser.add_argument("--full", type=int, default=2000, help="time every row up to this size")
    args = parser.parse_args()
    results = [measure(int(n), args.rows, args.full) for n in args.sizes.split(",")]
    keys = list(dict.fromkeys(k for r in results for k in r))
    print(f"{'':36}" + "".join(f"{int(r['steps']):>12}" for r in results))
    for key in keys[1:]:
        cells = []
        for r in results:
            value = r.get(key)
            if value is None:
                cells.append(f"{'-':>12}")
                continue
            cells.append(f"{int(value):>12}" if key == "edges" else f"{value:>11.3f}s")
        print(f"{key:36}" + "".join(cells))


if __name__ == "__main__":
    main()
