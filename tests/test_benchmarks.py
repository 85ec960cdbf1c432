"""The benchmark scripts keep working: their --quick smoke runs (docs/benchmarks.md).

Only that they run, check their own results and print a complete report is asserted here; the
figures themselves are for people reading the report, never for a timed test.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def run_quick(script: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--quick", *args],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.skipif(not BENCHMARKS.is_dir(), reason="benchmarks/ is not part of this checkout")
def test_compile_scale_quick_checks_determinism() -> None:
    out = run_quick("compile_scale.py")
    assert "determinism: every compile of the same plan gave byte-identical IR" in out
    assert "OK" in out.split("determinism:", 1)[1].splitlines()[0]


@pytest.mark.skipif(not BENCHMARKS.is_dir(), reason="benchmarks/ is not part of this checkout")
def test_compile_scale_findings_shape_times_every_format() -> None:
    out = run_quick("compile_scale.py", "--shape", "findings", "--sizes", "300")
    header = next(line for line in out.splitlines() if line.startswith("| steps"))
    for column in ("warnings", "--format json s", "--format github s", "--format sarif s"):
        assert f" {column} " in header
    row = next(line for line in out.splitlines() if line.startswith("| 300 "))
    assert [cell.strip() for cell in row.split("|")][3:5] == ["100", "100"]  # conds, warnings


@pytest.mark.skipif(not BENCHMARKS.is_dir(), reason="benchmarks/ is not part of this checkout")
def test_runtime_vs_floor_quick_runs_every_reference() -> None:
    out = run_quick(
        "runtime_vs_floor.py", "--tools", "planrun,python,pyrun,pyrun-db,pyrun-full,click"
    )
    header = next(line for line in out.splitlines() if line.startswith("| workload | steps"))
    assert header.split("|")[4:16:2] == [
        " planrun s ",
        " python s ",
        " pyrun s ",
        " pyrun-db s ",
        " pyrun-full s ",
        " click s ",
    ]
    runs = {(words[0], words[1]) for line in out.splitlines() if len(words := line.split()) > 1}
    for workload in ("W0", "W1", "W2", "W3", "W4"):
        for tool in ("planrun", "python", "pyrun", "pyrun-db", "pyrun-full"):
            assert (workload, tool) in runs, f"no {workload} {tool} run in the report"
    # `import click` is the start-up floor: timed in W0 only.
    assert [w for w, tool in runs if tool == "click"] == ["W0"]
    goals = [line.split(":")[0] for line in out.splitlines() if line.startswith("goal ")]
    assert goals == ["goal W0", "goal W1", "goal W2", "goal W3", "goal W4"]
    assert "python -c 'import click' alone:" in out
    assert "goal W1: planrun ≤ 1.15× pyrun-db: " in out
    assert "(pyrun-full, the guarantees alone, plainly written: " in out


@pytest.mark.skipif(not BENCHMARKS.is_dir(), reason="benchmarks/ is not part of this checkout")
def test_runtime_vs_floor_compares_with_a_baseline_revision_in_one_run(tmp_path: Path) -> None:
    out = run_quick(
        "runtime_vs_floor.py",
        *("--workloads", "W0,W1", "--tools", "planrun", "--baseline", "HEAD"),
        *("--dir", str(tmp_path)),
    )
    assert f"workloads under {tmp_path}/plan-bench-runtime-" in out
    assert list(tmp_path.iterdir()) == []  # removed at the end
    assert "planrun against its baseline revision, alternating in this run" in out
    runs = [line.split()[:2] for line in out.split("all runs (s):")[1].splitlines()[1:5]]
    assert runs == [
        ["W0", "planrun"],
        ["W0", "planrun@HEAD"],
        ["W1", "planrun"],
        ["W1", "planrun@HEAD"],
    ]


@pytest.mark.skipif(not BENCHMARKS.is_dir(), reason="benchmarks/ is not part of this checkout")
def test_fingerprints_quick_checks_what_reruns() -> None:
    """The script asserts itself that a no-op runs nothing and one change runs exactly the
    changed step and its descendants, for every tool."""
    out = run_quick("fingerprints.py")
    assert "| planrun |" in out
    assert "one change: step 10 and its 2 descendants re-run (checked)" in out
    assert "| warm (stat cache: no file read) | 8 MiB in 1 files |" in out


def test_dask_overhead_quick_runs_local_and_dask() -> None:
    pytest.importorskip("distributed")
    out = run_quick("dask_overhead.py", "--repeat", "1")
    rows = [line.split("|")[1].strip() for line in out.splitlines() if line.startswith("| W")]
    assert rows == ["W1", "W2"]
    assert "Estimate, 100 workers × 10,000 steps" in out
