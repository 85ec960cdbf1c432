"""The run store against real SQLite files and real processes (docs/state.md)."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from planrun.store import (
    AmbiguousRunError,
    DigestMismatchError,
    NoStateError,
    Reader,
    RunExistsError,
    RunLockedError,
    RunStore,
    StoreError,
    UnknownRunError,
    open_reader,
    process_alive,
)

RUN = "20261130T101500Z-3f9a1c"
DIGEST = "sha256:" + "ab" * 32
IR = b'{"ir_version":1}\n'
STEPS = ["build", "test", "lint", "deploy"]

# A separate planrun-like process. argv: state_dir run_id mode count. It creates (or, with
# mode "resume", resumes) the run, says "ready" on stdout, then either emits `count` events
# (count < 0: forever) or, with count 0, holds the run until stdin closes.
WRITER = textwrap.dedent(
    """
    import sys
    from planrun.store import RunStore
    state_dir, run_id, mode, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    store = RunStore.open(state_dir)
    if mode == "resume":
        store.begin_resume(run_id, "sha256:" + "ab" * 32)
    else:
        store.create_run(run_id, "p", "sha256:" + "ab" * 32, b"{}", ["a"], ["planrun"], 4)
        store.emit(run_id, "step_started", "a", pid=1, pgid=1, proc_start_time=1.0)
    print("ready", flush=True)
    if count == 0:
        sys.stdin.read()
    i = 0
    while i != count:
        store.emit(run_id, "step_retrying", "a", delay_sec=0, previous_status="failed",
                   reason="exit code 1", exit_code=1, filler="x" * (i % 300))
        i += 1
    """
)


def spawn_writer(state_dir: Path, run_id: str, mode: str, count: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(state_dir), run_id, mode, str(count)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line != "ready\n":
        proc.kill()
        pytest.fail(f"writer did not start: {line!r} {proc.communicate()[1]}")
    return proc


def kill_and_reap(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.communicate()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RunStore]:
    with RunStore.open(tmp_path / "state") as s:
        s.create_run(RUN, "demo", DIGEST, IR, STEPS, ["planrun", "demo.json"], 4)
        yield s


@pytest.fixture
def reader(store: RunStore) -> Iterator[Reader]:
    with open_reader(store.state_dir) as r:
        yield r


def jsonl_path(state_dir: Path, run_id: str = RUN) -> Path:
    return state_dir / "runs" / run_id / "events.jsonl"


def start(store: RunStore, step: str, **extra: Any) -> None:
    store.emit(
        RUN,
        "step_started",
        step,
        pid=4242,
        pgid=4242,
        proc_start_time=1.5e9,
        argv=["make", step],
        cwd="/src",
        stdout_log=f"{step}.out",
        stderr_log=f"{step}.err",
        **extra,
    )


def assert_jsonl_matches_sqlite(state_dir: Path, run_id: str = RUN) -> int:
    """Both hold exactly the same events, numbered 1..n; returns n."""
    data = jsonl_path(state_dir, run_id).read_text()
    assert data.endswith("\n")
    lines = data.splitlines()
    with open_reader(state_dir) as r:
        events = r.events(run_id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert lines == [e.to_json() for e in events]
    for line, event in zip(lines, events, strict=True):
        parsed = json.loads(line)
        assert list(parsed) == ["seq", "ts", "run_id", "type", "step_id", "attempt", "payload"]
        assert parsed["payload"] == event.payload
    return len(events)


# --- write side: events and projections ------------------------------------------------------


def test_create_run_writes_run_started_ir_and_pending_steps(
    store: RunStore, reader: Reader
) -> None:
    run_dir = store.state_dir / "runs" / RUN
    assert (run_dir / "ir.json").read_bytes() == IR
    assert (run_dir / "logs").is_dir()
    assert reader.ir(RUN) == IR
    (event,) = reader.events(RUN)
    assert (event.seq, event.type, event.step_id, event.attempt) == (1, "run_started", None, None)
    assert event.payload["pid"] == os.getpid()
    assert event.payload["argv"] == ["planrun", "demo.json"]
    assert event.payload["ir_digest"] == DIGEST
    assert event.ts.endswith("Z") and len(event.ts) == len("2026-11-30T10:15:00.123456Z")
    run = reader.run(RUN)
    assert (run.status, run.plan_id, run.max_concurrency) == ("running", "demo", 4)
    assert run.step_counts == {"pending": 4}
    assert [(s.step_id, s.ordinal, s.status) for s in reader.steps(RUN)] == [
        (step, i, "pending") for i, step in enumerate(STEPS)
    ]


def test_events_are_numbered_without_gaps_in_both_stores(store: RunStore) -> None:
    start(store, "build")
    store.emit(RUN, "step_succeeded", "build", exit_code=0, duration_sec=1.25)
    start(store, "test")
    store.emit(
        RUN,
        "step_failed",
        "test",
        exit_code=2,
        signal=None,
        reason="exit code 2",
        stderr_tail="boom\n",
        duration_sec=0.5,
    )
    store.emit(RUN, "step_skipped", "deploy", reason="upstream", detail="test failed")
    store.emit(RUN, "step_cancelled", "lint", reason="aborted", duration_sec=None)
    event = store.emit(RUN, "run_finished", status="failed", exit_code=1, duration_sec=3.0)
    assert event.seq == 8
    assert assert_jsonl_matches_sqlite(store.state_dir) == 8


def test_step_started_records_the_process_before_anything_else(
    store: RunStore, reader: Reader
) -> None:
    event = store.emit(
        RUN,
        "step_started",
        "build",
        pid=10,
        pgid=11,
        proc_start_time=12.5,
        stdout_log="b.out",
        stderr_log="b.err",
    )
    assert event.attempt == 1
    (step,) = [s for s in reader.steps(RUN) if s.step_id == "build"]
    assert (step.status, step.attempts, step.started_at) == ("running", 1, event.ts)
    (attempt,) = reader.attempts(RUN, "build")
    assert (attempt.pid, attempt.pgid, attempt.proc_start_time) == (10, 11, 12.5)
    assert (attempt.status, attempt.started_at, attempt.finished_at) == ("running", event.ts, None)
    assert (attempt.stdout_log, attempt.stderr_log) == ("b.out", "b.err")


def test_retry_closes_the_attempt_and_the_next_one_resets_the_step(
    store: RunStore, reader: Reader
) -> None:
    start(store, "build")
    store.emit(
        RUN,
        "step_retrying",
        "build",
        delay_sec=1.0,
        previous_status="timed_out",
        reason="timeout",
        exit_code=None,
        duration_sec=5.0,
    )
    (step,) = reader.steps(RUN)[:1]
    assert (step.status, step.reason) == ("running", "timeout")
    second = store.emit(RUN, "step_started", "build", pid=5, pgid=5, proc_start_time=2.0)
    assert second.attempt == 2
    store.emit(RUN, "step_succeeded", "build", exit_code=0, duration_sec=0.25)
    first, last = reader.attempts(RUN, "build")
    assert (first.status, first.reason, first.duration_sec) == ("timed_out", "timeout", 5.0)
    assert (last.attempt, last.status, last.exit_code, last.pid) == (2, "success", 0, 5)
    step = reader.steps(RUN)[0]
    assert (step.status, step.attempts, step.exit_code, step.reason) == ("success", 2, 0, None)
    assert (step.started_at, step.duration_sec) == (second.ts, 0.25)


def test_failure_projections(store: RunStore, reader: Reader) -> None:
    start(store, "build")
    failed = store.emit(
        RUN,
        "step_failed",
        "build",
        exit_code=None,
        signal=9,
        reason="killed by signal 9",
        stderr_tail="",
        duration_sec=0.1,
    )
    start(store, "test")
    store.emit(
        RUN,
        "step_timed_out",
        "test",
        reason="stalled",
        limit_sec=30,
        stderr_tail="",
        duration_sec=30.2,
    )
    steps = {s.step_id: s for s in reader.steps(RUN)}
    assert (steps["build"].status, steps["build"].exit_code) == ("failed", None)
    assert (steps["build"].reason, steps["build"].finished_at) == ("killed by signal 9", failed.ts)
    assert (steps["test"].status, steps["test"].reason) == ("timed_out", "stalled")
    attempts = {a.step_id: a for a in reader.attempts(RUN)}
    assert (attempts["build"].status, attempts["build"].signal) == ("failed", 9)
    assert (attempts["test"].status, attempts["test"].duration_sec) == ("timed_out", 30.2)


def test_skip_cancel_and_recovery_projections(store: RunStore, reader: Reader) -> None:
    skipped = store.emit(RUN, "step_skipped", "deploy", reason="condition", detail="env.CI != 1")
    assert skipped.attempt is None
    never_started = store.emit(RUN, "step_cancelled", "lint", reason="aborted", duration_sec=None)
    assert never_started.attempt is None
    start(store, "build")
    store.emit(RUN, "step_failed", "build", exit_code=1, reason="exit code 1", duration_sec=1.0)
    store.emit(RUN, "step_recovered", "build", fallback="test")
    start(store, "test")
    store.emit(RUN, "step_cancelled", "test", reason="interrupted", duration_sec=0.3)
    steps = {s.step_id: s for s in reader.steps(RUN)}
    assert (steps["deploy"].status, steps["deploy"].reason) == ("skipped", "condition")
    assert steps["deploy"].detail == "env.CI != 1"
    assert (steps["lint"].status, steps["lint"].attempts) == ("cancelled", 0)
    assert (steps["build"].status, steps["build"].recovered_by) == ("failed", "test")
    assert (steps["test"].status, steps["test"].reason) == ("cancelled", "interrupted")
    (attempt,) = reader.attempts(RUN, "test")
    assert (attempt.status, attempt.reason) == ("cancelled", "interrupted")


def test_cancel_during_retry_delay_keeps_the_finished_attempt(
    store: RunStore, reader: Reader
) -> None:
    start(store, "build")
    store.emit(
        RUN,
        "step_retrying",
        "build",
        delay_sec=60,
        previous_status="failed",
        reason="exit code 1",
        exit_code=1,
    )
    store.emit(RUN, "step_cancelled", "build", reason="interrupted", duration_sec=None)
    (attempt,) = reader.attempts(RUN, "build")
    assert (attempt.status, attempt.exit_code) == ("failed", 1)
    step = reader.steps(RUN)[0]
    assert (step.status, step.exit_code) == ("cancelled", 1)


def test_run_finished_sets_the_run_outcome(store: RunStore, reader: Reader) -> None:
    event = store.emit(RUN, "run_finished", status="cancelled", exit_code=130, duration_sec=2.5)
    run = reader.run(RUN)
    assert (run.status, run.exit_code, run.duration_sec, run.finished_at) == (
        "cancelled",
        130,
        2.5,
        event.ts,
    )


def test_emit_rejects_inconsistent_events(store: RunStore, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot emit"):
        store.emit(RUN, "step_exploded", "build")
    with pytest.raises(ValueError, match="cannot emit"):
        store.emit(RUN, "run_started")
    with pytest.raises(ValueError, match="needs a 'status' payload field"):
        store.emit(RUN, "run_finished", exit_code=0)
    with pytest.raises(ValueError, match="needs the id of a step"):
        store.emit(RUN, "step_started", "nope")
    with pytest.raises(ValueError, match="run event"):
        store.emit(RUN, "run_finished", "build", status="success")
    with pytest.raises(ValueError, match="starts attempt 1, not 3"):
        store.emit(RUN, "step_started", "build", attempt=3)
    with pytest.raises(ValueError, match="no attempt 1"):
        store.emit(RUN, "step_failed", "build", attempt=1)
    with pytest.raises(StoreError, match="not held"):
        store.emit("other", "run_finished", status="success")
    with pytest.raises(RunExistsError):
        store.create_run(RUN, "demo", DIGEST, b"{}", STEPS, [], 1)
    assert (store.state_dir / "runs" / RUN / "ir.json").read_bytes() == IR
    with pytest.raises(TypeError):
        store.emit(RUN, "step_skipped", "build", reason=object())
    # None of the refused events left a trace or consumed a sequence number.
    assert store.emit(RUN, "step_skipped", "build", reason="upstream", detail="").seq == 2
    assert assert_jsonl_matches_sqlite(store.state_dir) == 2


def test_summary_json(store: RunStore) -> None:
    start(store, "build")
    store.emit(RUN, "step_succeeded", "build", exit_code=0, duration_sec=1.5)
    store.emit(RUN, "step_skipped", "test", reason="upstream", detail="")
    store.emit(RUN, "step_recovered", "test", fallback="lint")
    done = store.emit(RUN, "run_finished", status="success", exit_code=0, duration_sec=2.0)
    path = store.write_summary(RUN)
    summary = json.loads(path.read_text())
    assert path.read_text() == json.dumps(summary, sort_keys=True, indent=2) + "\n"
    assert {k: v for k, v in summary.items() if k not in ("steps", "started_at")} == {
        "run_id": RUN,
        "plan_id": "demo",
        "ir_digest": DIGEST,
        "status": "success",
        "finished_at": done.ts,
        "duration_sec": 2.0,
        "exit_code": 0,
    }
    assert list(summary["steps"]) == sorted(STEPS)
    build = summary["steps"]["build"]
    assert {k: build[k] for k in ("status", "attempts", "exit_code", "duration_sec")} == {
        "status": "success",
        "attempts": 1,
        "exit_code": 0,
        "duration_sec": 1.5,
    }
    assert summary["steps"]["test"] == {
        "status": "skipped",
        "attempts": 0,
        "exit_code": None,
        "started_at": None,
        "finished_at": summary["steps"]["test"]["finished_at"],
        "duration_sec": None,
        "reason": "upstream",
        "recovered_by": "lint",
        "outputs": {},
    }
    with open_reader(store.state_dir) as r:
        assert r.summary(RUN) == summary


# --- JSONL repair -----------------------------------------------------------------------------


def run_some_events(state_dir: Path) -> bytes:
    """A finished-looking but unclosed run; returns its intact events.jsonl."""
    store = RunStore.open(state_dir)
    store.create_run(RUN, "demo", DIGEST, IR, STEPS, [], 2)
    for step in STEPS:
        start(store, step)
        store.emit(RUN, "step_succeeded", step, exit_code=0, duration_sec=0.1)
    store.close()
    return jsonl_path(state_dir).read_bytes()


@pytest.mark.parametrize(
    ("damage", "reemitted"),
    [
        pytest.param(lambda d: d + b'{"seq":10,"ts":"2026-', 0, id="torn-tail"),
        pytest.param(lambda d: d[:-1], 1, id="no-final-newline"),
        pytest.param(lambda d: d[: d.rindex(b"\n", 0, -1) + 1] + b"garbage\n", 1, id="bad-json"),
        pytest.param(lambda d: b"".join(d.splitlines(keepends=True)[:-3]), 3, id="lost-lines"),
        pytest.param(lambda d: d[: len(d) // 2], 5, id="cut-mid-file"),
        pytest.param(lambda d: b"", 9, id="emptied"),
    ],
)
def test_resume_repairs_the_jsonl_from_sqlite(tmp_path: Path, damage: Any, reemitted: int) -> None:
    intact = run_some_events(tmp_path)
    jsonl_path(tmp_path).write_bytes(damage(intact))
    with RunStore.open(tmp_path) as store:
        info = store.begin_resume(RUN, DIGEST)
        assert info.reemitted_events == reemitted
        assert jsonl_path(tmp_path).read_bytes() == intact
        store.emit(RUN, "run_resumed", pid=os.getpid(), previous_status=info.previous_status)
    assert assert_jsonl_matches_sqlite(tmp_path) == 10


def test_resume_recreates_deleted_files(tmp_path: Path) -> None:
    intact = run_some_events(tmp_path)
    jsonl_path(tmp_path).unlink()
    (tmp_path / "runs" / RUN / "ir.json").write_bytes(b"tampered")
    with RunStore.open(tmp_path) as store:
        assert store.begin_resume(RUN, DIGEST).reemitted_events == 9
    assert jsonl_path(tmp_path).read_bytes() == intact
    assert (tmp_path / "runs" / RUN / "ir.json").read_bytes() == IR


# --- resume, run lock, processes ----------------------------------------------------------


def test_resume_reports_state_and_closes_leftover_attempts(tmp_path: Path) -> None:
    store = RunStore.open(tmp_path)
    store.create_run(RUN, "demo", DIGEST, IR, STEPS, [], 2)
    start(store, "build")
    store.emit(RUN, "step_succeeded", "build", exit_code=0, duration_sec=0.1)
    start(store, "test")
    store.close()  # planrun went away without run_finished
    with open_reader(tmp_path) as r:
        assert r.run(RUN).status == "interrupted"
    with RunStore.open(tmp_path) as store:
        info = store.begin_resume(RUN[:8], DIGEST)
        assert (info.run.run_id, info.previous_status, info.run.status) == (
            RUN,
            "interrupted",
            "interrupted",
        )
        assert [(s.step_id, s.status) for s in info.steps][:2] == [
            ("build", "success"),
            ("test", "running"),
        ]
        (leftover,) = info.running_attempts
        assert (leftover.step_id, leftover.attempt, leftover.pid) == ("test", 1, 4242)
        assert leftover.proc_start_time == 1.5e9
        store.emit(RUN, "run_resumed", pid=os.getpid(), previous_status=info.previous_status)
        with open_reader(tmp_path) as r:
            assert r.run(RUN).status == "running"
            (closed,) = r.attempts(RUN, "test")
            assert (closed.status, closed.reason) == ("cancelled", "interrupted")
        assert start_and_get_attempt(store, "test") == 2


def start_and_get_attempt(store: RunStore, step: str) -> int | None:
    return store.emit(RUN, "step_started", step, pid=1, pgid=1, proc_start_time=1.0).attempt


def test_resume_refuses_another_ir(tmp_path: Path) -> None:
    run_some_events(tmp_path)
    other = "sha256:" + "cd" * 32
    with RunStore.open(tmp_path) as store:
        with pytest.raises(DigestMismatchError) as err:
            store.begin_resume(RUN, other)
        assert DIGEST in str(err.value) and other in str(err.value)
    with open_reader(tmp_path) as r:  # the refused resume did not take the lock
        assert r.run(RUN).owner_pid is None


def test_lock_refuses_a_live_owner_and_takes_over_a_dead_one(tmp_path: Path) -> None:
    owner = spawn_writer(tmp_path, RUN, "create", 0)
    try:
        with RunStore.open(tmp_path) as store:
            with pytest.raises(RunLockedError, match=rf"process {owner.pid}\b"):
                store.begin_resume(RUN, DIGEST)
            with open_reader(tmp_path) as r:
                assert r.run(RUN).status == "running"
            kill_and_reap(owner)
            with open_reader(tmp_path) as r:
                assert r.run(RUN).status == "interrupted"
            info = store.begin_resume(RUN, DIGEST)
            assert info.previous_status == "interrupted"
            assert [a.pid for a in info.running_attempts] == [1]
            with open_reader(tmp_path) as r:
                assert r.run(RUN).owner_pid == os.getpid()
    finally:
        owner.kill()
        owner.communicate()


def test_another_process_cannot_take_a_run_this_process_holds(store: RunStore) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", WRITER, str(store.state_dir), RUN, "resume", "0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode != 0
    assert "RunLockedError" in proc.stderr
    assert f"process {os.getpid()} " in proc.stderr


def test_reader_sees_a_concurrent_writer_without_lock_errors(tmp_path: Path) -> None:
    count = 3000
    writer = spawn_writer(tmp_path, RUN, "create", count)
    seen = reads_while_writing = 0
    with open_reader(tmp_path) as r:
        while writer.poll() is None:
            for event in r.events(RUN, after_seq=seen):
                assert event.seq == seen + 1
                seen = event.seq
            r.summary(RUN)
            r.attempts(RUN)
            reads_while_writing += 1
        _, stderr = writer.communicate()
        assert writer.returncode == 0, stderr
        seen += len(r.events(RUN, after_seq=seen))
    assert reads_while_writing > 1
    assert seen == count + 2  # run_started and step_started
    assert assert_jsonl_matches_sqlite(tmp_path) == count + 2


def test_sigkill_mid_stream_then_repair(tmp_path: Path) -> None:
    rng = random.Random()
    # About a third of the kills land between the SQLite commit and the JSONL write.
    for i in range(8):
        run_id = f"{RUN[:-1]}{i}"
        writer = spawn_writer(tmp_path, run_id, "create", -1)
        time.sleep(rng.uniform(0.005, 0.08))
        kill_and_reap(writer)
        with RunStore.open(tmp_path) as store:
            store.begin_resume(run_id, DIGEST)
        assert assert_jsonl_matches_sqlite(tmp_path, run_id) > 2


def test_process_alive() -> None:
    me = psutil.Process()
    assert process_alive(me.pid, me.create_time())
    assert not process_alive(me.pid, me.create_time() - 3600)  # same pid, another process
    assert not process_alive(None, None)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert not process_alive(dead.pid, None)


# --- read side --------------------------------------------------------------------------------


def test_run_ids_resolve_by_unique_prefix(tmp_path: Path) -> None:
    ids = ["20261130T101500Z-aaaaaa", "20261130T101500Z-abbbbb", "20261201T090000Z-cccccc"]
    with RunStore.open(tmp_path) as store:
        for run_id in ids:
            store.create_run(run_id, "demo", DIGEST, IR, STEPS, [], 1)
    with open_reader(tmp_path) as r:
        assert [run.run_id for run in r.runs()] == ids[::-1]
        assert [run.run_id for run in r.runs(limit=1)] == [ids[2]]
        assert r.latest_run_id() == ids[2]
        assert r.run("20261130T101500Z-aa").run_id == ids[0]
        assert r.run("202612").run_id == ids[2]
        with pytest.raises(AmbiguousRunError, match="ambiguous: 20261130T101500Z-abbbbb, 2026"):
            r.run("20261130T101500Z-a")
        with pytest.raises(UnknownRunError, match=r"did you mean 20261130T101500Z-abbbbb, "):
            r.steps("20261130T101500Z-x")
        with pytest.raises(UnknownRunError, match="latest runs: 20261201T090000Z-cccccc"):
            r.events("zzz")


def test_reader_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(NoStateError, match=r"no state\.db"):
        open_reader(tmp_path / "nowhere")
    RunStore.open(tmp_path).close()
    with open_reader(tmp_path) as r:
        assert r.runs() == [] and r.latest_run_id() is None
        with pytest.raises(UnknownRunError, match="no runs recorded yet"):
            r.run("2026")


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    RunStore.open(tmp_path).close()
    conn = sqlite3.connect(tmp_path / "state.db")
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(StoreError, match="schema version 99"):
        RunStore.open(tmp_path)
    with pytest.raises(StoreError, match="schema version 99"):
        open_reader(tmp_path)


def test_log_paths(store: RunStore) -> None:
    out, err = store.log_paths(RUN, "build", 2)
    assert out == store.state_dir / "runs" / RUN / "logs" / "build.2.stdout"
    assert err.name == "build.2.stderr"
