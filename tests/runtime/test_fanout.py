"""Fan-out over a step's output (docs/composition.md): instances made at run time, each a step
of the run; the fan-out step's own failures (not a list, empty, over the bound); outputs as a
list; fail_fast and max_parallel among the instances; resume."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support import collect, run_plan, start_planrun, wait_for

from planrun.store import open_reader
from planrun.views.model import snapshot

PY = sys.executable


def _plan(
    tasks: str, *, item_step: dict[str, Any] | None = None, max_items: int = 3
) -> dict[str, Any]:
    write = f"import os; open(os.environ['PLAN_OUTPUT'], 'a').write('tasks=' + {tasks!r} + '\\n')"
    echo = (
        "import os, sys; item = sys.argv[1]; print('item', item);"
        " open(os.environ['PLAN_OUTPUT'], 'a').write('size=' + str(len(item)) + '\\n');"
        " sys.exit(1 if item == 'bad' else 0)"
    )
    each = {
        "id": "each",
        "for_each": "${{ steps.list.outputs.tasks }}",
        "max_items": max_items,
        "depends_on": ["list"],
        "command": PY,
        "args": ["-c", echo, "${{ item }}"],
        "provides": ["size"],
        "timeout_sec": 30,
        **(item_step or {}),
    }
    return {
        "plan_id": "FAN",
        "steps": [
            {"id": "list", "command": PY, "args": ["-c", write], "provides": ["tasks"],
             "timeout_sec": 30},
            each,
            {"id": "after", "command": PY, "args": ["-c", "import sys; print(sys.argv[1])",
             "${{ steps.each.outputs.size }}"], "depends_on": ["each"], "timeout_sec": 30},
        ],
    }  # fmt: skip


def test_one_instance_per_element_and_the_outputs_as_a_list(tmp_path: Path) -> None:
    result = run_plan(tmp_path, _plan('["a", "bb", {"n": 1}]'))

    assert result.exit_code == 0, result.output
    assert result.statuses == {
        "list": "success",
        "each": "success",
        "after": "success",
        "each[0]": "success",
        "each[1]": "success",
        "each[2]": "success",
    }
    expanded = [e for e in result.events if e.type == "step_expanded"]
    assert [(e.step_id, e.payload) for e in expanded] == [
        ("each", {"instances": ["each[0]", "each[1]", "each[2]"], "items": 3})
    ]
    assert result.summary["steps"]  # the summary lists the instances too
    succeeded = {e.step_id: e.payload for e in result.events if e.type == "step_succeeded"}
    assert succeeded["each"]["outputs"] == {"size": json.dumps(["1", "2", "8"])}
    # the terminal counts the instances once they exist: 3 steps, then 6
    assert "] ✓ list" in result.output and "[1/3] ✓ list" in result.output, result.output
    assert "[6/6] ✓ after" in result.output, result.output
    # the views list each instance right after its fan-out step, named after its template
    with open_reader(result.state_dir) as reader:
        shown = snapshot(reader, result.run_id, with_logs=False)["steps"]
    assert [(s["step_id"], s["name"]) for s in shown] == [
        ("list", "list"),
        ("each", "each"),
        ("each[0]", "each [0]"),
        ("each[1]", "each [1]"),
        ("each[2]", "each [2]"),
        ("after", "after"),
    ]
    logs = result.state_dir / "runs" / result.run_id / "logs"
    assert (logs / "each[2].1.stdout").read_text() == 'item {"n": 1}\n'
    assert (logs / "after.1.stdout").read_text() == '["1", "2", "8"]\n'


@pytest.mark.parametrize(
    ("tasks", "reason"),
    [
        ("[]", "for_each: output tasks of step list is an empty list"),
        (
            '["a", "b", "c", "d"]',
            "for_each: output tasks of step list has 4 items, more than max_items 3",
        ),
        ('{"a": 1}', "for_each: output tasks of step list is a JSON object, not a list"),
        ("a, b", "for_each: output tasks of step list is not JSON (expected a JSON list)"),
    ],
)
def test_a_list_that_cannot_fan_out_fails_the_step(tmp_path: Path, tasks: str, reason: str) -> None:
    result = run_plan(tmp_path, _plan(tasks))

    assert result.exit_code == 1
    assert result.statuses == {"list": "success", "each": "failed", "after": "cancelled"}
    assert result.reasons["each"] == reason
    assert result.types("each") == ["step_started", "step_failed"]


def test_a_failing_instance_fails_the_fan_out_and_cancels_its_siblings(tmp_path: Path) -> None:
    never = tmp_path / "never"
    hold = f"import pathlib, sys, time; [time.sleep(0.05) for _ in range(1200) if not pathlib.Path({str(never)!r}).exists()]"
    plan = _plan(
        '["slow", "bad", "slow2"]',
        item_step={
            "args": ["-c", f"import sys; sys.exit(1) if sys.argv[1] == 'bad' else exec({hold!r})",
                     "${{ item }}"],
            "on_failure": "skip_dependents",
            "provides": [],
        },
    )  # fmt: skip
    plan["steps"][2]["args"] = ["-c", "print('after')"]
    result = run_plan(tmp_path, plan, max_concurrency=4)

    assert result.exit_code == 1
    assert result.statuses["each[1]"] == "failed"
    assert result.statuses["each[0]"] == result.statuses["each[2]"] == "cancelled"
    assert result.reasons["each[0]"] == result.reasons["each[2]"] == "fail_fast"
    assert result.statuses["each"] == "failed"
    assert result.reasons["each"] == (
        "3 of 3 instances did not succeed: each[0] cancelled, each[1] failed, each[2] cancelled"
    )
    assert result.statuses["after"] == "upstream_failed"  # blocked by a failure (semantics.md §1)


def test_max_parallel_bounds_the_instances_running_at_once(tmp_path: Path) -> None:
    plan = _plan('["a", "b", "c", "d", "e"]', item_step={"max_parallel": 2}, max_items=5)
    result = run_plan(tmp_path, plan, max_concurrency=8)

    assert result.exit_code == 0, result.output
    running = most = 0
    for event in result.events:
        if event.step_id and event.step_id.startswith("each["):
            running += {"step_started": 1, "step_succeeded": -1}.get(event.type, 0)
            most = max(most, running)
    assert most == 2


def test_resume_runs_again_only_the_instances_that_did_not_succeed(tmp_path: Path) -> None:
    marker = tmp_path / "break-b"
    marker.touch()
    fails_while_marked = (
        "import os, pathlib, sys; item = sys.argv[1];"
        " open(os.environ['PLAN_OUTPUT'], 'a').write('size=' + str(len(item)) + '\\n');"
        f" sys.exit(1 if item == 'bb' and pathlib.Path({str(marker)!r}).exists() else 0)"
    )
    plan = _plan(
        '["a", "bb", "ccc"]',
        item_step={"args": ["-c", fails_while_marked, "${{ item }}"], "fail_fast": False},
    )
    first = run_plan(tmp_path, plan)
    assert first.exit_code == 1
    assert (first.statuses["each[1]"], first.statuses["each"]) == ("failed", "failed")

    marker.unlink()
    second = run_plan(tmp_path, plan, resume=first.run_id)

    assert second.exit_code == 0, second.output
    assert set(second.statuses.values()) == {"success"}
    this_session = [e for e in second.events if e.seq > first.events[-1].seq]
    started = [e.step_id for e in this_session if e.type == "step_started"]
    assert started == ["each", "each[1]", "after"]  # list, each[0] and each[2] kept
    attempt = next(e for e in this_session if e.type == "step_started" and e.step_id == "each[1]")
    assert attempt.attempt == 2
    succeeded = {e.step_id: e.payload for e in this_session if e.type == "step_succeeded"}
    assert succeeded["each"]["outputs"] == {"size": json.dumps(["1", "2", "3"])}


def test_an_interrupt_cancels_the_instances_and_the_fan_out(
    tmp_path: Path, spawned: list[subprocess.Popen[str]]
) -> None:
    pids = tmp_path / "pids"
    pids.mkdir()
    plan = _plan(
        '["a", "b", "c"]',
        item_step={
            "command": "sh",
            "args": ["-c", f'echo $$ > "{pids}/$1"; exec sleep 300', "sh", "${{ item }}"],
            "max_parallel": 2,
            "provides": [],
        },
    )
    plan["steps"][2]["args"] = ["-c", "print('after')"]
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(json.dumps(plan), encoding="utf-8")
    state = tmp_path / "state"
    proc = start_planrun([str(plan_path), "--state-dir", str(state)], tmp_path, spawned)
    wait_for(lambda: len(list(pids.iterdir())) == 2, what="two instances to start")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130

    result = collect(state, 130)
    assert result.statuses == {
        "list": "success",
        "each": "cancelled",
        "each[0]": "cancelled",
        "each[1]": "cancelled",
        "each[2]": "cancelled",
        "after": "cancelled",
    }
    assert {result.reasons[s] for s in result.statuses if s != "list"} == {"interrupted"}
    assert result.types("each[2]") == ["step_cancelled"]  # never started (max_parallel 2)
