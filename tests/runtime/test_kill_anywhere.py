"""kill -9 (and Ctrl-C) of planrun at arbitrary points of a run, again and again, each time
resumed.

test_resume_and_signals.py kills planrun once, at a chosen moment. Here the moment is drawn
(after 0, 1, … steps have started, including before the run exists and during a resume), and
the run is killed up to eight times before it may finish. Whatever the moment:

- `planrun status` reads the state without error;
- a step once recorded `success` never runs again;
- the finished run ends exactly as an uninterrupted run of the same plan (statuses, exit code);
- events.jsonl holds the same events as SQLite, seq 1…n, at most one `run_resumed` per
  resume;
- no process of the run survives.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from support import collect, planc_cli, planrun_cli, start_planrun, wait_for

from planrun.store import open_reader

STEPS = 30
KILLS = 8


def random_plan(rng: random.Random, effects: Path) -> dict[str, Any]:
    """Steps that log their start to `effects`; some sleep, fail, retry or set an output.
    No step aborts the plan: which steps an abort cancels depends on timing, and the
    final statuses are compared with an uninterrupted run's."""
    steps: list[dict[str, Any]] = []
    for i in range(STEPS):
        sid = f"s{i:02}"
        deps = sorted(rng.sample([s["id"] for s in steps], k=min(i, rng.randint(0, 2))))
        kind = rng.choice(["quick", "quick", "slow", "fail", "output"])
        script = (
            f"echo {sid} >> {effects}; "
            + {
                "quick": "sleep 0.02",
                "slow": "sleep 0.2",
                "fail": "exit 3",
                "output": f'echo "v{i}=yes" >> "$PLAN_OUTPUT"',
            }[kind]
        )
        step: dict[str, Any] = {
            "id": sid,
            "command": "sh",
            "args": ["-c", script],
            "depends_on": deps,
            "timeout_sec": 60,
        }
        if kind == "fail":
            step["on_failure"] = rng.choice(["continue", "skip_dependents"])
            step["retries"] = rng.choice([0, 1])
            step["retry_delay_sec"] = 0.01
        if kind == "output":
            step["provides"] = [f"v{i}"]
        if deps and rng.random() < 0.3:
            step["trigger_rule"] = rng.choice(["all_done", "one_failed", "all_success"])
        steps.append(step)
    return {"plan_id": "KILL-ANYWHERE", "globals": {"max_concurrency": 3}, "steps": steps}


def _upstream_ran_since(state: Path, sid: str) -> bool:
    """A recorded success runs again exactly when its fingerprint changed (docs/fingerprints.md).
    In these plans nothing changes but what ran: a cleanup step (`all_done`, `one_failed`) that
    succeeded while an upstream step had not run yet (cancelled by the interrupt) runs again once
    that step has run. True when the latest start of `sid` says exactly that."""
    with open_reader(state) as reader:
        run_id = reader.latest_run_id()
        assert run_id is not None
        events = reader.events(run_id)
    starts = [e.payload for e in events if e.type == "step_started" and e.step_id == sid]
    if len(starts) < 2 or "fingerprint_parts" not in starts[-2]:
        return False
    reasons = str(starts[-1].get("why", "")).split(", ")
    before = starts[-2]["fingerprint_parts"]["upstream"]
    named = [r.removeprefix("upstream ").removesuffix(" re-ran") for r in reasons]
    return all(r.startswith("upstream ") and r.endswith(" re-ran") for r in reasons) and all(
        before.get(step, "missing") is None for step in named
    )


def started(effects: Path) -> list[str]:
    return effects.read_text().split() if effects.exists() else []


def _progressed(effects: Path, target: int, proc: subprocess.Popen[str]) -> bool:
    return len(started(effects)) >= target or proc.poll() is not None


def processes_tagged(run_id: str) -> list[int]:
    """Processes whose environment carries this run's id (every step's does)."""
    needle = f"PLAN_RUN_ID={run_id}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as handle:
                if needle in handle.read().split(b"\0"):
                    found.append(int(entry))
        except OSError:  # gone, or not ours to read
            continue
    return found


def _signalled_at(
    target: int,
    signum: int,
    ir: Path,
    state: Path,
    run_id: str | None,
    effects: Path,
    spawned: list[subprocess.Popen[str]],
) -> tuple[int, str]:
    """Start planrun on `ir` (resuming `run_id` if set), send it `signum` once `target` steps
    have started in all (or at once if it ends first), wait for it; its exit code and stderr."""
    args = [str(ir), "--state-dir", str(state), "-q"]
    if run_id is not None:
        args += ["--resume", run_id]
    proc = start_planrun(args, ir.parent, spawned)
    wait_for(partial(_progressed, effects, target, proc), timeout=60)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err


def _compiled_and_run_once(
    tmp_path: Path, rng: random.Random, effects: Path
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """A drawn plan compiled to IR, and its uninterrupted run in `clean/` (the reference)."""
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(random_plan(rng, effects)))
    ir = tmp_path / "plan.ir.json"
    compiled = planc_cli("compile", str(plan), "-o", str(ir))
    assert compiled.returncode == 0, compiled.stderr
    clean = planrun_cli(str(ir), "--state-dir", str(tmp_path / "clean"), "-q", cwd=tmp_path)
    assert clean.returncode in (0, 1), clean.stderr
    effects.unlink()
    return ir, clean


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kill_9_anywhere_then_resume_loses_and_repeats_nothing(
    tmp_path: Path, seed: int, spawned: list[subprocess.Popen[str]]
) -> None:
    rng = random.Random(seed)
    effects = tmp_path / "effects"
    ir, clean = _compiled_and_run_once(tmp_path, rng, effects)
    expected = collect(tmp_path / "clean", clean.returncode).statuses

    state = tmp_path / "state"
    run_id: str | None = None
    resumes = 0
    kept: dict[str, int] = {}  # step recorded `success` -> how many times it had started
    for _ in range(KILLS):
        target = len(started(effects)) + rng.randint(0, 6)
        code, err = _signalled_at(target, signal.SIGKILL, ir, state, run_id, effects, spawned)
        assert "Traceback" not in err, err
        if code in (0, 1):  # it finished before the kill
            break
        if run_id is not None:
            resumes += 1
        status = planrun_cli("status", "--state-dir", str(state), cwd=tmp_path)
        assert "Traceback" not in status.stderr, status.stderr
        steps = []
        if state.joinpath("state.db").exists():  # else killed before it made one
            with open_reader(state) as reader:
                run_id = reader.latest_run_id()
                steps = reader.steps(run_id) if run_id else []
        if run_id is not None:
            assert status.returncode in (0, 1), status.stderr
        counts = Counter(started(effects))
        for sid, times in kept.items():
            assert counts[sid] == times or _upstream_ran_since(state, sid), (
                f"{sid} was recorded success, then ran again"
            )
        kept = {s.step_id: counts[s.step_id] for s in steps if s.status == "success"}

    if run_id is None:  # every kill came before the run was recorded: run it whole
        final = planrun_cli(str(ir), "--state-dir", str(state), "-q", cwd=tmp_path)
    else:
        final = planrun_cli("--resume", run_id, str(ir), "--state-dir", str(state), "-q",
                            cwd=tmp_path)  # fmt: skip
        resumes += 1
    assert final.returncode == clean.returncode, final.stderr
    result = collect(state, final.returncode)
    assert result.statuses == expected
    counts = Counter(started(effects))
    for sid, times in kept.items():
        assert counts[sid] == times or _upstream_ran_since(state, sid), (
            f"{sid} was recorded success, then ran again"
        )
    seqs = [e.seq for e in result.events]
    assert seqs == list(range(1, len(seqs) + 1))
    jsonl = (state / "runs" / result.run_id / "events.jsonl").read_text().splitlines()
    assert [json.loads(line)["seq"] for line in jsonl] == seqs
    # A resume killed while it starts may die before its run_resumed; the last one got there.
    assert 1 <= [e.type for e in result.events].count("run_resumed") <= resumes
    assert processes_tagged(result.run_id) == []


@pytest.mark.parametrize("seed", [4, 5])
def test_ctrl_c_anywhere_mid_run_then_resume(
    tmp_path: Path, seed: int, spawned: list[subprocess.Popen[str]]
) -> None:
    """SIGINT at drawn moments once steps run (in a run or in a resume): planrun exits 130 with
    the run `cancelled` and none of its processes left, or finishes first; resumed until it
    ends, the run ends as an uninterrupted one and no recorded success ran twice."""
    rng = random.Random(seed)
    effects = tmp_path / "effects"
    ir, clean = _compiled_and_run_once(tmp_path, rng, effects)
    expected = collect(tmp_path / "clean", clean.returncode).statuses

    state = tmp_path / "state"
    run_id: str | None = None
    kept: dict[str, int] = {}
    for _ in range(KILLS):
        target = len(started(effects)) + rng.randint(1, 6)  # the executor is running by then
        code, err = _signalled_at(target, signal.SIGINT, ir, state, run_id, effects, spawned)
        assert "Traceback" not in err, err
        assert code in (0, 1, 130), err
        result = collect(state, code)
        run_id = result.run_id
        if code != 130:  # it finished before the interrupt
            break
        assert result.summary["status"] == "cancelled"
        assert processes_tagged(run_id) == [], "a process of the run outlived planrun"
        counts = Counter(started(effects))
        for sid, times in kept.items():
            assert counts[sid] == times or _upstream_ran_since(state, sid), (
                f"{sid} was recorded success, then ran again"
            )
        kept = {sid: counts[sid] for sid, status in result.statuses.items() if status == "success"}

    assert run_id is not None
    final = planrun_cli("--resume", run_id, str(ir), "--state-dir", str(state), "-q", cwd=tmp_path)
    assert final.returncode == clean.returncode, final.stderr
    result = collect(state, final.returncode)
    assert result.statuses == expected
    counts = Counter(started(effects))
    for sid, times in kept.items():
        assert counts[sid] == times or _upstream_ran_since(state, sid), (
            f"{sid} was recorded success, then ran again"
        )
    seqs = [e.seq for e in result.events]
    jsonl = (state / "runs" / run_id / "events.jsonl").read_text().splitlines()
    assert [json.loads(line)["seq"] for line in jsonl] == seqs == list(range(1, len(seqs) + 1))
