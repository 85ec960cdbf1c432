"""The semantics, dataflow, interrupt and kill-anywhere suites of tests/runtime, a representative
case of each, run with both executors: the plan gives the same events (without pids, hosts and
timings), statuses and logs locally and on a real Dask cluster (docs/distributed.md).

Each case runs one step at a time, so the whole event sequence is compared, not only each
step's own events."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cluster import Cluster
from compare import logs, sequence
from support import RunResult, collect, planrun_cli, wait_for, write_plan

SECRET = "s3cr3t/value+with spaces&more"
ENV = {"PLAN_TEST_TOKEN": SECRET, "PLAN_TEST_OTHER": "another-secret-value"}


def _plan(*steps: dict[str, Any], **top: Any) -> dict[str, Any]:
    globals_ = {"default_timeout_sec": 30, "kill_grace_sec": 1, "max_concurrency": 1}
    return {"plan_id": "PARITY", "globals": globals_, **top, "steps": list(steps)}


def ok(step_id: str, **fields: Any) -> dict[str, Any]:
    return {"id": step_id, "command": "true", **fields}


def sh(step_id: str, script: str, **fields: Any) -> dict[str, Any]:
    return {"id": step_id, "command": "sh", "args": ["-c", script], **fields}


def fail(step_id: str, code: int = 1, **fields: Any) -> dict[str, Any]:
    return sh(step_id, f"echo failing >&2; exit {code}", **fields)


# name -> (plan, expected statuses); each after a test of tests/runtime (named in the comment).
CASES: dict[str, tuple[dict[str, Any], dict[str, str]]] = {
    # test_semantics_e2e: abort cancels the critical branch, all_done cleanup still runs
    "abort": (
        _plan(
            fail("a"), ok("b", depends_on=["a"]),
            sh("cleanup", "touch cleaned", depends_on=["b"], trigger_rule="all_done"),
        ),
        {"a": "failed", "b": "cancelled", "cleanup": "success"},
    ),
    # test_semantics_e2e: not critical, skip_dependents, continue, fallbacks
    "branches": (
        _plan(
            fail("a1", critical=False), ok("b1", depends_on=["a1"]),
            fail("a2", on_failure="skip_dependents"), ok("b2", depends_on=["a2"]),
            fail("a3", 3, on_failure="continue"), ok("b3", depends_on=["a3"]),
            fail("merge", on_failure="fallback_step", fallback="restore"),
            ok("push", depends_on=["merge"]), ok("restore"),
            ok("fine", on_failure="fallback_step", fallback="unneeded"), ok("unneeded"),
        ),
        {"a1": "failed", "b1": "upstream_failed", "a2": "failed", "b2": "upstream_failed",
         "a3": "failed", "b3": "success", "merge": "failed", "push": "success",
         "restore": "success", "fine": "success", "unneeded": "skipped"},
    ),
    # test_semantics_e2e: retries, timeout, heartbeat, conditions
    "limits": (
        _plan(
            sh("flaky", "n=$(cat count 2>/dev/null || echo 0); echo $((n+1)) > count; [ $n -ge 1 ]",
               retries=2, retry_delay_sec=0),
            sh("slow", "echo started; sleep 30", timeout_sec=1, on_failure="continue"),
            sh("stalled", "echo once; sleep 30", heartbeat_timeout_sec=1, on_failure="continue"),
            ok("never", depends_on=["flaky"], condition="env.PLAN_TEST_OTHER == 'x'"),
        ),
        {"flaky": "success", "slow": "timed_out", "stalled": "timed_out", "never": "skipped"},
    ),
    # test_dataflow: outputs into args, env, cwd and conditions; unset and undeclared outputs;
    # secrets masked in logs, tails and events, withheld from other steps
    "dataflow": (
        _plan(
            sh("produce",
               'echo "where=sub dir" >> "$PLAN_OUTPUT";'
               ' printf "notes<<END\\nline 1\\nline 2\\nEND\\n" >> "$PLAN_OUTPUT"',
               provides=["where", "notes", "unset"]),
            {"id": "consume", "command": "sh",
             "args": ["-c", 'echo "$1 in $(pwd) notes $NOTES"', "sh",
                      "${{ steps.produce.outputs.where }}; rm -rf /"],
             "cwd": "${{ steps.produce.outputs.where }}",
             "env": {"NOTES": "${{ steps.produce.outputs.notes }}"}, "depends_on": ["produce"]},
            ok("if_output", depends_on=["produce"],
               condition="steps.produce.outputs.where == 'sub dir'"),
            {"id": "use_unset", "command": "echo", "args": ["${{ steps.produce.outputs.unset }}"],
             "depends_on": ["produce"], "on_failure": "continue"},
            sh("undeclared", 'echo "other=1" >> "$PLAN_OUTPUT"', provides=["ref"],
               on_failure="continue"),
            sh("leak", 'echo "raw $PLAN_TEST_TOKEN"; echo "other=${PLAN_TEST_OTHER:-withheld}";'
               ' echo "err $PLAN_TEST_TOKEN" >&2; exit 3', on_failure="continue"),
            sh("granted", 'test "${PLAN_TEST_OTHER%-secret-value}" = another',
               secrets=["PLAN_TEST_OTHER"]),
            secrets=["PLAN_TEST_TOKEN"],
        ),
        {"produce": "success", "consume": "success", "if_output": "success",
         "use_unset": "failed", "undeclared": "failed", "leak": "failed", "granted": "success"},
    ),
}  # fmt: skip


def _run(work: Path, plan: dict[str, Any], executor: str) -> RunResult:
    """planrun in a child process (an in-process run's ProcessSet would adopt the cluster's
    processes, children of this one, as orphans of its steps)."""
    (work / "sub dir").mkdir(parents=True)
    state = work / "state"
    done = planrun_cli(
        str(write_plan(work, plan)), "--state-dir", str(state), "--workdir", str(work),
        "--executor", executor, cwd=work, env=ENV,
    )  # fmt: skip
    return collect(state, done.returncode, done.stderr)


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_case_gives_the_same_events_and_logs_locally_and_on_dask(
    tmp_path: Path, cluster: Cluster, case: str
) -> None:
    plan, statuses = CASES[case]
    local_work, remote_work = tmp_path / "local", tmp_path / "dask"
    local = _run(local_work, plan, "local")
    remote = _run(remote_work, plan, cluster.url)
    assert local.statuses == statuses, local.output
    assert remote.statuses == statuses, remote.output
    assert remote.exit_code == local.exit_code
    assert sequence(remote, remote_work) == sequence(local, local_work)
    assert logs(remote, remote_work) == logs(local, local_work)
    for result in (local, remote):  # the secret is in no file of the state dir
        for path in result.state_dir.rglob("*"):
            assert not path.is_file() or SECRET.encode() not in path.read_bytes(), path


# The interrupt and kill-anywhere cases: planrun in a child process, stopped while `hold` runs.
_INTERRUPTED = _plan(
    ok("first"),
    # Its first attempt holds until stopped; a later one (the resumed run's) does the work.
    sh(
        "hold",
        "if [ -e holding ]; then echo x >> done; exit; fi; touch holding; sleep 60",
        depends_on=["first"],
    ),
    ok("last", depends_on=["hold"]),
)


def _stopped_mid_run(work: Path, executor: str, how: signal.Signals) -> tuple[int, Path]:
    """Run _INTERRUPTED until `hold` runs, then send `how` to planrun."""
    work.mkdir(parents=True)
    state = work / "state"
    proc = subprocess.Popen(
        [sys.executable, "-m", "planrun", str(write_plan(work, _INTERRUPTED)), "--state-dir",
         str(state), "--workdir", str(work), "--executor", executor],
        cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for((work / "holding").exists, 60, "the step `hold` to run")
        proc.send_signal(how)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, state


def test_ctrl_c_mid_run_gives_the_same_events_locally_and_on_dask(
    tmp_path: Path, cluster: Cluster
) -> None:
    """As tests/runtime/test_resume_and_signals.py: the running step is cancelled, the rest
    never starts, the run ends `cancelled` with exit 130."""
    ends = {}
    for name, executor in (("local", "local"), ("dask", cluster.url)):
        code, state = _stopped_mid_run(tmp_path / name, executor, signal.SIGINT)
        ends[name] = (code, collect(state, code), tmp_path / name)
    for code, result, _ in ends.values():
        assert code == 130
        assert result.statuses == {"first": "success", "hold": "cancelled", "last": "cancelled"}
    local, remote = ends["local"][1:], ends["dask"][1:]
    assert sequence(*remote) == sequence(*local)


def test_kill_9_mid_run_then_resume_gives_the_same_events_locally_and_on_dask(
    tmp_path: Path, cluster: Cluster
) -> None:
    """As tests/runtime/test_kill_anywhere.py: nothing lost, nothing done twice."""
    ends = {}
    for name, executor in (("local", "local"), ("dask", cluster.url)):
        work = tmp_path / name
        code, state = _stopped_mid_run(work, executor, signal.SIGKILL)
        assert code == -signal.SIGKILL
        run_id = collect(state, 0).run_id
        done = planrun_cli(
            "--resume", run_id, "--state-dir", str(state), "--workdir", str(work),
            "--executor", executor, cwd=work,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert (work / "done").read_text() == "x\n"
        ends[name] = (collect(state, 0), work)
    for result, _ in ends.values():
        assert result.statuses == {"first": "success", "hold": "success", "last": "success"}
    assert sequence(*ends["dask"]) == sequence(*ends["local"])
