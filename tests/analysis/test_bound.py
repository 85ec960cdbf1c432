"""The worst-case duration bound: exact numbers computed by hand, the deadline diagnostics, the
`planc bound` command."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any

import pytest
from analysis_support import SAFE_MERGE, big_plan, check, codes, compile_ir, write
from support import planc_cli

from planc.analysis.bound import bound_for_ir, format_seconds, list_scheduling_bound


def plan(*steps: dict[str, Any], **globals_: Any) -> dict[str, Any]:
    return {"plan_id": "B", "globals": {"kill_grace_sec": 0, **globals_}, "steps": list(steps)}


def step(sid: str, timeout: float | None = 10, **fields: Any) -> dict[str, Any]:
    extra = {} if timeout is None else {"timeout_sec": timeout}
    return {"id": sid, "command": "true", **extra, **fields}


def test_one_step_with_retries_backoff_cap_and_kill_grace() -> None:
    # 3 attempts × (10 s + 5 s grace) = 45; delays before attempts 2, 3: 1, min(1 × 2, 1.5) = 1.5.
    ir = compile_ir(
        plan(
            step("a", retries=2, retry_delay_sec=1, retry_backoff=2, max_retry_delay_sec=1.5),
            kill_grace_sec=5,
        )
    )
    result = bound_for_ir(ir)
    a = result.steps["a"]
    assert (a.attempts, a.attempt_sec, a.delays_sec, a.total_sec) == (3, 15.0, 2.5, 47.5)
    assert result.critical_path == ("a",)
    assert result.critical_path_sec == result.work_sec == result.concurrency_bound_sec == 47.5


def test_uncapped_backoff_grows_geometrically() -> None:
    # delays 2, 6, 18: 26; 4 attempts × 1 s.
    ir = compile_ir(plan(step("a", timeout=1, retries=3, retry_delay_sec=2, retry_backoff=3)))
    assert bound_for_ir(ir).steps["a"].total_sec == 4 + 26


def test_diamond_critical_path_and_graham_bound() -> None:
    steps = (
        step("a", 10),
        step("b", 20, depends_on=["a"]),
        step("c", 30, depends_on=["a"]),
        step("d", 5, depends_on=["b", "c"]),
        step("e", 50),
    )
    result = bound_for_ir(compile_ir(plan(*steps, max_concurrency=2)))
    # L: a → c → d = 45 < e = 50, so the path is e alone; W = 115.
    assert result.critical_path == ("e",)
    assert result.critical_path_sec == 50
    assert result.work_sec == 115
    assert result.concurrency_bound_sec == 115 / 2 + (1 - 1 / 2) * 50 == 82.5
    # -j1: everything in a row. With 5 workers nobody ever waits: L.
    assert bound_for_ir(compile_ir(plan(*steps)), max_concurrency=1).concurrency_bound_sec == 115
    assert bound_for_ir(compile_ir(plan(*steps)), max_concurrency=5).concurrency_bound_sec == 50


def test_fallback_counts_on_the_path_of_the_step_naming_it() -> None:
    steps = (
        step("merge", 100, on_failure="fallback_step", fallback="restore"),
        step("push", 10, depends_on=["merge"]),
        step("restore", 40, on_failure="fallback_step", fallback="page"),
        step("page", 1),
    )
    result = bound_for_ir(compile_ir(plan(*steps, max_concurrency=1)))
    assert result.critical_path == ("merge", "restore", "page", "push")
    assert result.critical_path_sec == 151
    assert result.path_text() == (
        "merge -> restore (fallback of merge) -> page (fallback of restore) -> push"
    )
    assert result.work_sec == 151  # every step once


def test_shared_fallback_is_work_once_but_on_every_path() -> None:
    steps = (
        step("a", 10, on_failure="fallback_step", fallback="r"),
        step("b", 20, on_failure="fallback_step", fallback="r"),
        step("r", 7),
    )
    result = bound_for_ir(compile_ir(plan(*steps, max_concurrency=2)))
    assert result.critical_path == ("b", "r")
    assert result.critical_path_sec == 27
    assert result.work_sec == 37
    assert result.concurrency_bound_sec == 37 / 2 + 27 / 2


def test_a_step_without_timeout_makes_the_bound_infinite() -> None:
    result = bound_for_ir(compile_ir(plan(step("a"), step("slow", None, depends_on=["a"]))))
    assert result.unbounded == ("slow",)
    assert not result.bounded
    assert math.isinf(result.critical_path_sec)
    assert result.to_json()["critical_path_sec"] is None


def test_overflowing_backoff_is_the_cap() -> None:
    # planrun.core.semantics.retry_delay raises OverflowError for 1e10 ** 98; the bound uses the cap.
    ir = compile_ir(
        plan(
            step("a", 1, retries=100, retry_delay_sec=1, retry_backoff=1e10, max_retry_delay_sec=60)
        )
    )
    assert bound_for_ir(ir).steps["a"].delays_sec == 1 + 99 * 60


def test_graham_bound_formula() -> None:
    assert list_scheduling_bound(100, 40, 4, 10) == 25 + 30
    assert list_scheduling_bound(100, 40, 1, 10) == 100
    assert list_scheduling_bound(100, 40, 10, 10) == 40
    assert math.isinf(list_scheduling_bound(math.inf, math.inf, 2, 3))


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(5, "5s"), (59.5, "59.5s"), (3600, "3600s (1h)"), (2222.5, "2222.5s (37m 2.5s)"),
     (3601, "3601s (1h 0m 1s)"), (math.inf, "unbounded")],
)  # fmt: skip
def test_format_seconds(seconds: float, text: str) -> None:
    assert format_seconds(seconds) == text


# --- planc check -------------------------------------------------------------------------------

DEADLINE_PLAN = """\
plan_id: DEADLINE
globals:
  default_timeout_sec: 300
  kill_grace_sec: 5
  deadline_sec: 600
steps:
  - id: build
    command: make
  - id: test
    command: make
    args: [test]
    depends_on: [build]
"""


def test_deadline_exceeded_by_the_critical_path() -> None:
    _, text = check(DEADLINE_PLAN)
    assert text == (
        "plan.yaml:5:17: error[deadline-exceeded]: the critical path build -> test can take"
        " 610s (10m 10s), more than deadline_sec 600s (10m)\n"
        " 5 |   deadline_sec: 600\n"
        "   |                 ^~~\n"
        "  help: the largest share is `build`: 1 attempt(s) × 305s (5m 5s) + 0s of retry delays"
        " (`planc bound` shows every step)\n"
        "1 error, 0 warnings\n"
    )


def test_deadline_exceeded_only_with_the_plans_concurrency() -> None:
    text = DEADLINE_PLAN.replace("deadline_sec: 600", "deadline_sec: 700\n  max_concurrency: 2")
    text = text.replace("    depends_on: [build]\n", "") + "  - id: lint\n    command: ruff\n"
    # Three independent 305 s steps, 2 workers: W/m + (1 − 1/m)·L = 915/2 + 305/2 = 610 ≤ 700.
    assert codes(check(text)[0]) == []
    result, _ = check(text.replace("deadline_sec: 700", "deadline_sec: 609"))
    assert codes(result) == ["deadline-exceeded"]
    assert result.diagnostics[0].message == (
        "with max_concurrency 2 the plan can take 610s (10m 10s), more than deadline_sec 609s"
        " (10m 9s) (critical path build: 305s (5m 5s); all steps: 915s (15m 15s) of work)"
    )


def test_unbounded_step_with_a_deadline() -> None:
    text = DEADLINE_PLAN.replace("  default_timeout_sec: 300\n", "")
    text = text.replace(
        "    command: make\n    args", "    timeout_sec: 60\n    command: make\n    args"
    )
    result, _ = check(text)
    assert [d.code for d in result.diagnostics if d.code != "no-timeout"] == ["unbounded-step"]
    unbounded = next(d for d in result.diagnostics if d.code == "unbounded-step")
    assert (unbounded.line, unbounded.col) == (6, 9)
    assert unbounded.message == (
        "step `build` has no timeout, so no run can be promised to end within deadline_sec 600s"
        " (10m)"
    )


def test_no_deadline_no_bound_diagnostic() -> None:
    result, _ = check(DEADLINE_PLAN.replace("  deadline_sec: 600\n", ""))
    assert codes(result) == []


def test_analyses_can_be_turned_off() -> None:
    assert codes(check(DEADLINE_PLAN, analyses=())[0]) == []
    assert codes(check(DEADLINE_PLAN, analyses=("bound",))[0]) == ["deadline-exceeded"]


# --- planc bound -------------------------------------------------------------------------------


def test_planc_bound_text_for_the_safe_merge_plan() -> None:
    done = planc_cli("bound", str(SAFE_MERGE))
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        "Worst-case duration of SAFE-MERGE (kill grace 5s, max_concurrency 2)\n"
        "\n"
        "step              attempts  × (timeout + grace) s  + retry delays s  = worst s  path\n"
        "snapshot                 1                     65                 0         65  *\n"
        "pull                     3                    125                30        405  *\n"
        "merge                    1                    305                 0        305  *\n"
        "validate                 1                   1205                 0       1205  *\n"
        "push                     1                    125                 0        125  *\n"
        "restore_snapshot         1                     65                 0         65  *\n"
        "drop_snapshot            1                     35                 0         35  *\n"
        "alert                    1                     35                 0         35\n"
        "\n"
        "critical path:       snapshot -> pull -> merge -> restore_snapshot (fallback of merge)"
        " -> validate -> push -> drop_snapshot\n"
        "  unlimited workers  L = 2205s (36m 45s)\n"
        "  all steps          W = 2240s (37m 20s)\n"
        "  max_concurrency 2  W/m + (1 − 1/m)·L = 2240/2 + 0.5·2205 = 2222.5s (37m 2.5s)\n"
        "deadline_sec 3600s (1h): met\n"
    )


def test_planc_bound_json_and_deadline_exit_code(tmp_path: Path) -> None:
    path = write(tmp_path, DEADLINE_PLAN)
    done = planc_cli("bound", str(path), "--format", "json")
    assert done.returncode == 1  # the bound breaks deadline_sec
    data = json.loads(done.stdout)
    assert data["critical_path"] == ["build", "test"]
    assert data["critical_path_sec"] == 610
    assert data["deadline"] == "exceeded by the critical path"
    assert data["steps"]["build"] == {
        "attempts": 1,
        "attempt_sec": 305.0,
        "retry_delays_sec": 0.0,
        "total_sec": 305.0,
        "fallback": None,
    }
    assert planc_cli("bound", str(path), "-j", "1", "--format", "json").returncode == 1


def test_bound_is_linear_on_a_big_plan() -> None:
    ir = compile_ir(big_plan(2000))
    result = bound_for_ir(ir)
    assert result.bounded
    steps = {s["id"]: s for s in ir["steps"]}
    path = result.critical_path
    # Each step on the path is the fallback of the one before, or depends on the last step on
    # the path that is not such a fallback.
    anchor = path[0]
    for before, after in itertools.pairwise(path):
        if steps[before]["fallback"] == after:
            continue
        assert anchor in steps[after]["depends_on"]
        anchor = after
    assert sum(result.steps[sid].total_sec for sid in path) == result.critical_path_sec
    assert result.critical_path_sec <= result.concurrency_bound_sec <= result.work_sec
