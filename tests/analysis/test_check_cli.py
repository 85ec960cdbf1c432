"""`planc check --analyses`, `--format json`, `planc explain` for the analysis codes, and the
linear analyses on a 10k-step plan."""

from __future__ import annotations

import json
import time

import pytest
from analysis_support import HERE, big_plan
from support import planc_cli

from planc.analysis import cleanup, reachability
from planc.analysis.bound import bound_for_ir
from planc.analysis.context import AnalysisContext
from planc.pipeline import compile_bytes

LOCK = HERE / "plans" / "lock.yaml"


def test_check_runs_the_default_analyses() -> None:
    done = planc_cli("check", str(LOCK))
    assert done.returncode == 1
    assert "error[cleanup-missing]" in done.stdout


def test_check_analyses_none_and_a_selection() -> None:
    assert planc_cli("check", "--analyses=none", str(LOCK)).returncode == 0
    assert planc_cli("check", "--analyses", "bound,reachability", str(LOCK)).returncode == 0
    assert planc_cli("check", "--analyses=all", str(LOCK)).returncode == 1


def test_check_unknown_analysis_is_a_usage_error() -> None:
    done = planc_cli("check", "--analyses=bogus", str(LOCK))
    assert done.returncode == 2
    assert (
        "unknown analysis `bogus`; choose from bound, reachability, cleanup, invariants, all, none"
        in (done.stderr)
    )


def test_check_json() -> None:
    done = planc_cli("check", "--format", "json", str(LOCK))
    (diagnostic,) = json.loads(done.stdout)
    assert diagnostic["code"] == "cleanup-missing"
    assert (diagnostic["line"], diagnostic["column"]) == (9, 16)
    assert diagnostic["severity"] == "error"


@pytest.mark.parametrize(
    "code",
    [
        "deadline-exceeded",
        "unbounded-step",
        "never-runs",
        "fallback-never-needed",
        "cleanup-missing",
        "cleanup-without-timeout",
        "cleanup-unknown-resource",
    ],
)
def test_every_code_is_explained(code: str) -> None:
    done = planc_cli("explain", code)
    assert done.returncode == 0
    assert done.stdout.startswith(f"{code}: ")


def test_docs_show_every_code() -> None:
    docs = (HERE.parent.parent / "docs" / "analysis.md").read_text(encoding="utf-8")
    for code in ("deadline-exceeded", "unbounded-step", "never-runs", "cleanup-missing"):
        assert f"`{code}`" in docs


def test_generated_plan_checks_clean() -> None:
    plan = big_plan(500)
    result = compile_bytes(
        "big.json",
        json.dumps(plan).encode(),
        want_ir=False,
        analyses=("bound", "reachability", "cleanup"),
    )
    assert [d.code for d in result.diagnostics] == []


@pytest.mark.slow
def test_linear_analyses_on_ten_thousand_steps() -> None:
    plan = big_plan(10_000)
    compiled = compile_bytes("big.json", json.dumps(plan).encode())
    assert compiled.ir is not None
    ir = json.loads(compiled.ir)
    timings = {}
    for name, run in (
        ("bound", lambda: bound_for_ir(ir)),
        (
            "reachability",
            lambda: list(reachability.check(AnalysisContext(ir, compiled.plan, compiled.graph))),
        ),
        (
            "cleanup",
            lambda: list(cleanup.check(AnalysisContext(ir, compiled.plan, compiled.graph))),
        ),
    ):
        start = time.perf_counter()
        run()
        timings[name] = time.perf_counter() - start
    # Not a speed test (docs/benchmarks.md has the figures): a guard against a quadratic slip,
    # which would take minutes; 5 s failed at a load of 13 under pytest-xdist.
    assert all(seconds < 60 for seconds in timings.values()), timings
