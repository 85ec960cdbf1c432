"""Group commit (docs/state.md, "Batching"): the events of one executor loop iteration are one
SQLite transaction, the JSONL lines follow the commit, and nothing is shown or relied upon before
it is on disk."""

from __future__ import annotations

import io
import random
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from support import write_plan
from test_store import DIGEST, IR, RUN, STEPS, assert_jsonl_matches_sqlite, kill_and_reap, start

import planrun.store.projections
from planrun import plan_loader
from planrun.events import Event
from planrun.executor import Executor, RunOptions
from planrun.store import RunStore, open_reader


@pytest.fixture
def store(tmp_path: Path) -> Any:
    with RunStore.open(tmp_path / "state") as s:
        s.create_run(RUN, "demo", DIGEST, IR, STEPS, ["planrun", "demo.json"], 4)
        yield s


def committed(state_dir: Path) -> list[int]:
    with open_reader(state_dir) as reader:
        return [e.seq for e in reader.events(RUN)]


def test_a_batch_commits_at_flush_and_numbers_at_once(store: RunStore) -> None:
    with store.batch():
        start(store, "build")
        done = store.emit(RUN, "step_succeeded", "build", exit_code=0, duration_sec=0.5)
        assert done.seq == 3 and done.attempt == 1  # numbered at once…
        assert committed(store.state_dir) == [1]  # …committed later
        flushed = store.flush()
        assert [e.seq for e in flushed] == [2, 3]
        assert committed(store.state_dir) == [1, 2, 3]
        assert assert_jsonl_matches_sqlite(store.state_dir) == 3
        start(store, "test")
    # leaving the block flushes what is left
    assert committed(store.state_dir) == [1, 2, 3, 4]
    assert assert_jsonl_matches_sqlite(store.state_dir) == 4
    assert store.flush() == []


def test_a_failed_flush_records_nothing_and_takes_nothing(
    store: RunStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any) -> None:
        raise RuntimeError("disk on fire")

    with store.batch():
        start(store, "build")
        monkeypatch.setitem(planrun.store.projections.PROJECTIONS, "step_recovered", broken)
        store.emit(RUN, "step_recovered", "build", fallback="lint")
        with pytest.raises(RuntimeError, match="disk on fire"):
            store.flush()
        monkeypatch.undo()
        assert committed(store.state_dir) == [1]
        # The same seq and attempt numbers are given again: as if never emitted.
        again = store.emit(RUN, "step_started", "build", pid=1, pgid=1, proc_start_time=1.0)
        assert (again.seq, again.attempt) == (2, 1)
    assert assert_jsonl_matches_sqlite(store.state_dir) == 2


# A writer that emits batches of 3 events forever (argv: state_dir run_id).
BATCH_WRITER = textwrap.dedent(
    """
    import sys
    from planrun.store import RunStore
    state_dir, run_id = sys.argv[1], sys.argv[2]
    store = RunStore.open(state_dir)
    store.create_run(run_id, "p", "sha256:" + "ab" * 32, b"{}", ["a", "b"], ["planrun"], 4)
    store.emit(run_id, "step_started", "a", pid=1, pgid=1, proc_start_time=1.0)
    print("ready", flush=True)
    with store.batch():
        while True:
            for _ in range(3):
                store.emit(run_id, "step_retrying", "a", delay_sec=0, previous_status="failed",
                           reason="exit code 1", exit_code=1, filler="x" * 200)
            store.flush()
    """
)


def test_sigkill_mid_batch_loses_whole_batches_only(tmp_path: Path) -> None:
    rng = random.Random()
    for i in range(6):
        run_id = f"{RUN[:-1]}{i}"
        writer = subprocess.Popen(
            [sys.executable, "-c", BATCH_WRITER, str(tmp_path), run_id],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert writer.stdout is not None
        assert writer.stdout.readline() == "ready\n", writer.communicate()[1]
        time.sleep(rng.uniform(0.005, 0.08))
        kill_and_reap(writer)
        with RunStore.open(tmp_path) as store:
            store.begin_resume(run_id, DIGEST)
        total = assert_jsonl_matches_sqlite(tmp_path, run_id)
        assert (total - 2) % 3 == 0, total  # run_started, step_started, then whole batches


def test_the_observer_only_sees_committed_events_and_steps_find_their_start(
    tmp_path: Path,
) -> None:
    """Each step waits (≤ 10 s) for its own step_started to be committed: the executor commits
    before it waits for the steps. The observer checks every event it is shown is in SQLite."""
    state = tmp_path / "state"
    probe = textwrap.dedent(
        f"""
        import os, sys, time
        from planrun.store import open_reader
        end = time.monotonic() + 10
        while time.monotonic() < end:
            with open_reader({str(state)!r}) as reader:
                for event in reader.events(os.environ["PLAN_RUN_ID"]):
                    if (event.type, event.step_id) == ("step_started", os.environ["PLAN_STEP_ID"]):
                        assert event.payload["pid"] == os.getpid()
                        sys.exit(0)
            time.sleep(0.01)
        sys.exit("my step_started was not committed while I ran")
        """
    )
    steps = [
        {"id": f"s{i}", "command": sys.executable, "args": ["-c", probe],
         "depends_on": [f"s{i - 2}"] if i >= 2 else []}
        for i in range(6)
    ]  # fmt: skip
    plan = {"plan_id": "BATCH", "globals": {"default_timeout_sec": 60}, "steps": steps}
    ir = plan_loader.load_runnable(str(write_plan(tmp_path, plan)), io.StringIO())
    seen: list[Event] = []

    def observer(event: Event) -> None:
        with open_reader(state) as reader:
            assert event.seq in [e.seq for e in reader.events(event.run_id)], event
        seen.append(event)

    with RunStore.open(state) as store:
        run_id = "20261130T101500Z-000001"
        ids = [s.id for s in ir.steps]
        store.create_run(run_id, ir.plan_id, ir.digest, ir.data, ids, [], 2)
        options = RunOptions(workdir=str(tmp_path), max_concurrency=2)
        code = Executor(ir, store, run_id, options, observer).run()
    with open_reader(state) as reader:
        statuses = {s.step_id: (s.status, s.reason) for s in reader.steps(run_id)}
    assert statuses == {f"s{i}": ("success", None) for i in range(6)}
    assert code == 0
    assert [e.seq for e in seen] == list(range(2, len(seen) + 2))
    assert seen[-1].type == "run_finished"
    assert assert_jsonl_matches_sqlite(state, run_id) == len(seen) + 1


def test_a_condition_builds_facts_only_for_the_steps_it_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Conditions used to get a StepFacts for every step of the plan at each evaluation."""
    import planrun.core.conditions

    steps: list[dict[str, Any]] = [{"id": "s0", "command": "true"}]
    for i in range(1, 400):
        steps.append(
            {"id": f"s{i}", "command": "true", "depends_on": [f"s{i - 1}"],
             "condition": f"steps.s{i - 1}.status == 'success'"}
        )  # fmt: skip
    plan = {"plan_id": "FACTS", "globals": {"default_timeout_sec": 60}, "steps": steps}
    ir = plan_loader.load_runnable(str(write_plan(tmp_path, plan)), io.StringIO())
    made: list[str] = []
    real = planrun.core.conditions.StepFacts

    def counting(**fields: Any) -> Any:
        made.append(fields["status"])
        return real(**fields)

    monkeypatch.setattr(planrun.core.conditions, "StepFacts", counting)
    with RunStore.open(tmp_path / "state") as store:
        run_id = "20261130T101500Z-000002"
        store.create_run(run_id, ir.plan_id, ir.digest, ir.data, [s.id for s in ir.steps], [], 1)
        executor = Executor(ir, store, run_id, RunOptions(workdir=str(tmp_path)))
        try:
            assert executor._condition_holds("s1") is False  # s0 is still pending
            executor.plan.status["s0"] = "success"
            assert executor._condition_holds("s1") is True
            assert executor._condition_holds("s0") is True  # no condition
        finally:
            executor.procs.close()
    assert made == ["pending", "success"]
