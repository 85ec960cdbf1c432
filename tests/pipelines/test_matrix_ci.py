"""plans/matrix-ci.yaml end to end: 3 Python versions x 2 shards, one combination excluded,
at most 3 at a time, and fail_fast cancelling the other instances when one fails."""

from __future__ import annotations

import json
from pathlib import Path

from pipelines_support import PLANS, run_pipeline

INSTANCES = ["test-3.10-1", "test-3.11-1", "test-3.11-2", "test-3.12-1", "test-3.12-2"]


def _most_at_once(result_events: list[object]) -> int:
    running, most = 0, 0
    for event in result_events:
        step, kind = getattr(event, "step_id", None), getattr(event, "type", "")
        if step in INSTANCES and kind == "step_started":
            running += 1
        elif step in INSTANCES and kind in ("step_succeeded", "step_failed", "step_cancelled"):
            running -= 1
        most = max(most, running)
    return most


def test_every_combination_but_the_excluded_one_runs(tmp_path: Path) -> None:
    out = tmp_path / "shards"
    result = run_pipeline(tmp_path, "matrix-ci.yaml", {"out_dir": str(out)})

    assert result.exit_code == 0, result.output
    assert result.statuses == {**dict.fromkeys(INSTANCES, "success"), "report": "success"}
    assert sorted(p.name for p in out.iterdir()) == [f"{i[5:]}.json" for i in INSTANCES]
    assert json.loads((out / "3.12-2.json").read_text()) == {
        "python": "3.12",
        "shard": 2,
        "shards": 2,
    }
    assert _most_at_once(result.events) == 3  # max_parallel, under max_concurrency 6
    seq = {(e.step_id, e.type): e.seq for e in result.events}
    started = seq[("report", "step_started")]
    assert all(seq[(i, "step_succeeded")] < started for i in INSTANCES)


def test_a_failing_instance_cancels_the_others(tmp_path: Path) -> None:
    out = tmp_path / "shards"
    never = tmp_path / "never"  # the other instances wait for it: still running at the failure
    params = {"out_dir": str(out), "fail": "3.11-2", "hold": str(never)}
    result = run_pipeline(tmp_path, "matrix-ci.yaml", params)

    assert result.exit_code == 1
    assert result.statuses == {
        **dict.fromkeys(INSTANCES, "cancelled"),
        "test-3.11-2": "failed",
        "report": "cancelled",
    }
    # the two running with it were stopped by fail_fast; the rest never started (the plan aborts)
    assert {i: result.reasons[i] for i in INSTANCES if i != "test-3.11-2"} == {
        "test-3.10-1": "fail_fast",
        "test-3.11-1": "fail_fast",
        "test-3.12-1": "aborted",
        "test-3.12-2": "aborted",
    }
    assert result.types("test-3.12-1") == ["step_cancelled"]
    assert not out.exists() or not list(out.iterdir())


def test_without_fail_fast_the_others_finish(tmp_path: Path) -> None:
    text = (PLANS / "matrix-ci.yaml").read_text(encoding="utf-8")
    text = text.replace("fail_fast: true", "fail_fast: false\n    on_failure: continue")
    plan = tmp_path / "matrix-ci.yaml"
    plan.write_text(text, encoding="utf-8")
    out = tmp_path / "shards"
    result = run_pipeline(tmp_path, plan, {"out_dir": str(out), "fail": "3.11-2"})

    assert result.exit_code == 0, result.output  # the failure is tolerated (continue)
    assert result.statuses["test-3.11-2"] == "failed"
    assert [i for i in INSTANCES if result.statuses[i] == "success"] == [
        i for i in INSTANCES if i != "test-3.11-2"
    ]
    assert result.statuses["report"] == "success"
