"""Steps on a real Dask cluster (docs/distributed.md): the same events, logs and outputs as a
local run, and the guarantees when a worker dies, the run is interrupted or a step needs what
no worker has."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
from cluster import Cluster
from compare import logs as _logs
from compare import normalized
from support import REPO, RunResult, collect, planc_cli, planrun_cli, wait_for, write_plan


def _plan(steps: list[dict[str, Any]]) -> dict[str, Any]:
    return {"plan_id": "DIST", "version": "1.0", "globals": {"max_concurrency": 4}, "steps": steps}


SEMANTICS = _plan(
    [
        {
            "id": "produce", "command": "sh", "provides": ["x"], "timeout_sec": 30,
            "args": ["-c", 'echo produced; echo to-stderr >&2; echo "x=42" >> "$PLAN_OUTPUT"'],
        },
        {
            "id": "consume", "command": "sh", "args": ["-c", 'echo "got $X"'],
            "env": {"X": "${{ steps.produce.outputs.x }}"}, "depends_on": ["produce"],
            "timeout_sec": 30,
        },
        {
            "id": "flaky", "command": "sh", "retries": 1, "retry_delay_sec": 0, "timeout_sec": 30,
            "args": ["-c", "n=$(cat count 2>/dev/null || echo 0); echo $((n+1)) > count;"
                     " echo try $n; [ $n -ge 1 ]"],
        },
        {
            "id": "fails", "command": "sh", "args": ["-c", "echo boom >&2; exit 3"],
            "on_failure": "continue", "timeout_sec": 30,
        },
        {
            "id": "after", "command": "echo", "args": ["after"], "depends_on": ["fails"],
            "trigger_rule": "all_done", "timeout_sec": 30,
        },
        {
            "id": "slow", "command": "sleep", "args": ["30"], "timeout_sec": 1,
            "on_failure": "continue",
        },
        {
            "id": "nowhere", "command": "true", "cwd": "/nonexistent-planrun-dir",
            "on_failure": "continue", "timeout_sec": 30,
        },
        {
            "id": "skipped", "command": "echo", "args": ["never"], "depends_on": ["consume"],
            "condition": "steps.produce.outputs.x == '41'", "timeout_sec": 30,
        },
    ]
)  # fmt: skip


def _run(tmp: Path, plan: dict[str, Any], *extra: str) -> tuple[Any, Path]:
    work = tmp / "work"
    work.mkdir(parents=True)
    plan_path = write_plan(tmp, plan)
    state = tmp / "state"
    done = planrun_cli(
        str(plan_path), "--state-dir", str(state), "--workdir", str(work), "--kill-grace", "1",
        *extra, cwd=tmp,
    )  # fmt: skip
    return collect(state, done.returncode, done.stderr), work


def test_a_plan_gives_the_same_events_logs_and_outputs_locally_and_on_dask(
    tmp_path: Path, cluster: Cluster
) -> None:
    local, local_work = _run(tmp_path / "local", SEMANTICS)
    remote, remote_work = _run(tmp_path / "dask", SEMANTICS, "--executor", cluster.url)
    assert local.exit_code == remote.exit_code == 0, remote.output  # on_failure: continue
    assert local.statuses == remote.statuses == {
        "produce": "success", "consume": "success", "flaky": "success", "fails": "failed",
        "after": "success", "slow": "timed_out", "skipped": "skipped", "nowhere": "failed",
    }  # fmt: skip
    assert remote.reasons["nowhere"] == "cwd does not exist: /nonexistent-planrun-dir"
    assert normalized(remote, remote_work) == normalized(local, local_work)
    assert _logs(remote) == _logs(local)
    assert _logs(remote)["consume.1.stdout"] == b"got 42\n"
    # Every remote attempt that ran is placed, after its step_started, on a worker.
    started = [e for e in remote.events if e.type == "step_started"]
    placed = [e for e in remote.events if e.type == "step_placed"]
    ran = {(e.step_id, e.attempt) for e in started} - {("nowhere", 1)}  # it could not start
    assert {(e.step_id, e.attempt) for e in placed} == ran
    for event in placed:
        start = next(e for e in started if (e.step_id, e.attempt) == (event.step_id, event.attempt))
        assert start.seq < event.seq
        assert event.payload["worker"].startswith("tcp://127.0.0.1:")
    assert all(e.payload["pid"] is None for e in started)


def test_a_step_needing_a_resource_goes_to_the_worker_offering_it(
    tmp_path: Path, cluster: Cluster
) -> None:
    plan = _plan(
        [{"id": "train", "command": "echo", "args": ["on gpu"], "resources": {"gpu": 1},
          "timeout_sec": 30}]
    )  # fmt: skip
    result, _ = _run(tmp_path, plan, "--executor", cluster.url)
    assert result.exit_code == 0, result.output
    (placed,) = [e for e in result.events if e.type == "step_placed"]
    gpu_worker = psutil.Process(cluster.workers["gpu"].pid)
    assert placed.payload["pid"] in {c.pid for c in gpu_worker.children(recursive=True)} or (
        psutil.Process(cluster.workers["gpu"].pid).is_running()
    )
    assert _worker_name(cluster, placed.payload["worker"]) == "gpu"


def _worker_name(cluster: Cluster, address: str) -> str:
    from distributed import Client

    with Client(cluster.url.replace("dask://", "tcp://"), set_as_default=False) as client:
        workers = client.scheduler_info(n_workers=-1)["workers"]
    return str(workers[address]["name"])


def test_a_resource_no_worker_offers_fails_the_run_before_anything_runs(
    tmp_path: Path, cluster: Cluster
) -> None:
    plan = _plan(
        [{"id": "fine", "command": "true", "timeout_sec": 30},
         {"id": "train", "command": "touch", "args": ["ran"], "resources": {"tpu": 2},
          "timeout_sec": 30}]
    )  # fmt: skip
    plan_path = write_plan(tmp_path, plan)
    done = planrun_cli(
        str(plan_path), "--state-dir", "state", "--executor", cluster.url, cwd=tmp_path
    )
    assert done.returncode == 2
    assert "step train needs tpu=2, which no worker of tcp://127.0.0.1:" in done.stderr
    assert "(2 worker(s) connected)" in done.stderr
    assert not (tmp_path / "state").exists()
    assert not (tmp_path / "ran").exists()


def test_secrets_are_not_sent_to_a_remote_scheduler_without_tls(tmp_path: Path) -> None:
    plan = _plan([{"id": "deploy", "command": "true", "secrets": ["TOKEN"], "timeout_sec": 30}])
    plan_path = write_plan(tmp_path, plan)
    done = planrun_cli(
        str(plan_path), "--state-dir", "state", "--executor", "dask://192.0.2.1:8786",
        cwd=tmp_path, env={"TOKEN": "s3cr3t-value-123"},
    )  # fmt: skip
    assert done.returncode == 2
    assert "the plan has secrets and 192.0.2.1 is not this machine" in done.stderr
    assert "use dask+tls://" in done.stderr
    assert not (tmp_path / "state").exists()


def test_secrets_reach_the_step_but_no_worker_disk_in_clear(
    tmp_path: Path, cluster: Cluster
) -> None:
    secret = "s3cr3t-value-7f2a91"
    marker = tmp_path / "work" / "printed"
    plan = _plan(
        [{"id": "deploy", "command": "sh", "secrets": ["TOKEN"], "timeout_sec": 60,
          "args": ["-c", 'echo "token is $TOKEN"; echo "$TOKEN" >&2; touch printed;'
                   ' while [ ! -e go ]; do sleep 0.05; done']}]
    )  # fmt: skip
    (tmp_path / "work").mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "planrun", str(write_plan(tmp_path, plan)), "--state-dir",
         str(tmp_path / "state"), "--workdir", str(tmp_path / "work"), "--executor", cluster.url],
        cwd=tmp_path, env={**os.environ, "TOKEN": secret}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for(marker.exists, 60, "the step to print its secret")
        # What the worker side holds on disk while the step runs: the attempt's files, Dask's
        # own scratch space.
        roots = [Path("/dev/shm"), Path(os.environ.get("TMPDIR", "/tmp")) / "dask-scratch-space"]
        for root in roots:
            for path in root.rglob("*") if root.exists() else []:
                if path.is_file() and os.access(path, os.R_OK):
                    try:
                        assert secret.encode() not in path.read_bytes(), path
                    except OSError:
                        continue
        (tmp_path / "work" / "go").touch()
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    result = collect(tmp_path / "state", 0)
    logs = _logs(result)
    assert logs["deploy.1.stdout"] == b"token is ***\n"
    assert logs["deploy.1.stderr"] == b"***\n"


def _sleeping(step_pid: int) -> None:
    """Wait until the step's shell runs its `sleep`: past its `[ ! -e go ]` test, so that
    creating `go` now lets only the retry through (placed is not enough: the shell may not have
    read the test yet, and the first attempt would then finish the work itself)."""
    wait_for(
        lambda: any(c.name() == "sleep" for c in psutil.Process(step_pid).children()),
        30,
        "the first attempt to sleep",
    )


def _placed(state: Path, step: str, attempt: int) -> dict[str, Any] | None:
    for path in (state / "runs").glob("*/events.jsonl"):
        for line in path.read_text().splitlines():
            event = json.loads(line)
            if (event["type"], event.get("step_id"), event.get("attempt")) == (
                "step_placed",
                step,
                attempt,
            ):
                return dict(event["payload"])
    return None


def _kill_planrun_once_placed(args: list[str], cwd: Path, state: Path, step: str) -> int:
    """Run `planrun ARGS` (its state in `state`), kill -9 it once `step`'s first attempt is
    placed on a worker, and return that remote attempt's pid."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "planrun", *args, "--state-dir", str(state)],
        cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        placed = wait_for(lambda: _placed(state, step, 1), 60, f"{step} to be placed")
        proc.kill()
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return int(placed["pid"])


def test_a_worker_killed_mid_step_fails_the_attempt_and_the_retry_does_the_work_once(
    tmp_path: Path, own_cluster: Cluster
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    plan = _plan(
        [{"id": "job", "command": "sh", "retries": 1, "retry_delay_sec": 0, "timeout_sec": 60,
          "args": ["-c", "echo $$ >> starts; if [ ! -e go ]; then sleep 30; fi; echo x >> done"]}]
    )  # fmt: skip
    state = tmp_path / "state"
    proc = subprocess.Popen(
        [sys.executable, "-m", "planrun", str(write_plan(tmp_path, plan)), "--state-dir",
         str(state), "--workdir", str(work), "--executor", own_cluster.url],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        holder: list[dict[str, Any]] = []
        wait_for(lambda: bool(holder.append(_placed(state, "job", 1) or {}) or holder[-1]), 60,
                 "the first attempt to be placed")  # fmt: skip
        placed = holder[-1]
        step_pid = placed["pid"]
        agent = psutil.Process(step_pid).parent()
        worker_pid = agent.ppid()
        lost = next(n for n, p in own_cluster.workers.items() if p.pid == worker_pid)
        _sleeping(step_pid)
        (work / "go").touch()  # the retry does not sleep; the killed attempt never gets here
        os.killpg(worker_pid, signal.SIGKILL)
        _out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    own_cluster.workers[lost].wait(timeout=10)
    assert not psutil.pid_exists(step_pid) or psutil.Process(step_pid).status() == "zombie"
    # The agent said the tree was dead before the retry ran; it may take a moment to exit.
    wait_for(lambda: not agent.is_running() or agent.status() == "zombie", 30, "the agent to exit")
    result = _retried_after_losing(placed["worker"], work, state)
    assert result.statuses == {"job": "success"}


def test_ctrl_c_stops_the_remote_step_and_the_run_ends_cancelled(
    tmp_path: Path, cluster: Cluster
) -> None:
    plan = _plan([{"id": "long", "command": "sleep", "args": ["60"], "timeout_sec": 120}])
    state = tmp_path / "state"
    proc = subprocess.Popen(
        [sys.executable, "-m", "planrun", str(write_plan(tmp_path, plan)), "--state-dir",
         str(state), "--kill-grace", "1", "--executor", cluster.url],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for(lambda: _placed(state, "long", 1) is not None, 60, "the step to be placed")
        step_pid = (_placed(state, "long", 1) or {})["pid"]
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    result = collect(state, 130)
    assert result.statuses == {"long": "cancelled"}
    assert result.reasons == {"long": "interrupted"}
    wait_for(lambda: not psutil.pid_exists(step_pid), 10, "the remote step to be gone")


def test_the_guide_plan_checks_and_compiles_its_placement_keys(tmp_path: Path) -> None:
    text = (REPO / "docs" / "distributed.md").read_text(encoding="utf-8")
    (block,) = re.findall(r"```yaml\n(.*?)```", text, re.DOTALL)
    plan = tmp_path / "train.yaml"
    plan.write_text(block, encoding="utf-8")
    done = planc_cli("check", str(plan))
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    done = planc_cli("compile", str(plan), "-o", str(tmp_path / "ir.json"))
    assert done.returncode == 0, done.stderr
    steps = json.loads((tmp_path / "ir.json").read_text())["steps"]
    assert steps[0]["resources"] == {"gpu": 1} and "executor" not in steps[0]
    assert steps[1]["executor"] == "local" and "resources" not in steps[1]


def test_an_executor_local_step_runs_on_the_coordinator(tmp_path: Path, cluster: Cluster) -> None:
    plan = _plan(
        [{"id": "here", "command": "sh", "args": ["-c", "echo $PPID"], "executor": "local",
          "timeout_sec": 30},
         {"id": "there", "command": "true", "depends_on": ["here"], "timeout_sec": 30}]
    )  # fmt: skip
    result, _ = _run(tmp_path, plan, "--executor", cluster.url)
    assert result.exit_code == 0, result.output
    started = {e.step_id: e for e in result.events if e.type == "step_started"}
    assert started["here"].payload["pid"] is not None
    assert started["there"].payload["pid"] is None
    assert [e.step_id for e in result.events if e.type == "step_placed"] == ["there"]


def test_a_killed_coordinator_takes_its_remote_steps_down(tmp_path: Path, cluster: Cluster) -> None:
    plan = _plan([{"id": "long", "command": "sleep", "args": ["60"], "timeout_sec": 120}])
    state = tmp_path / "state"
    args = [str(write_plan(tmp_path, plan)), "--executor", cluster.url]
    step_pid = _kill_planrun_once_placed(args, tmp_path, state, "long")
    wait_for(lambda: not psutil.pid_exists(step_pid), 30, "the remote step to be gone")


def test_the_scheduler_and_workers_listen_only_on_loopback(cluster: Cluster) -> None:
    for proc in [cluster.scheduler, *cluster.workers.values()]:
        listening = [
            c.laddr for c in psutil.Process(proc.pid).net_connections("inet")
            if c.status == psutil.CONN_LISTEN
        ]  # fmt: skip
        assert listening, proc.args
        assert all(addr.ip == "127.0.0.1" for addr in listening), (proc.args, listening)


def _run_topics(cluster: Cluster) -> set[str]:
    """The events topics of planrun runs the scheduler holds (a killed planrun leaves its own)."""
    from distributed import Client

    with Client(cluster.url.replace("dask://", "tcp://"), set_as_default=False) as client:
        return {t for t in client.get_events() if t.startswith("planrun-")}


def test_planrun_executor_env_names_the_executor(tmp_path: Path, cluster: Cluster) -> None:
    plan = _plan(
        [{"id": "one", "command": "sh", "args": ["-c", "echo hi; sleep 0.5"], "timeout_sec": 30}]
    )
    before = _run_topics(cluster)
    done = planrun_cli(
        str(write_plan(tmp_path, plan)), "--state-dir", "state", cwd=tmp_path,
        env={"PLANRUN_EXECUTOR": cluster.url},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = collect(tmp_path / "state", 0)
    assert [e.type for e in result.events if e.step_id == "one"] == [
        "step_started", "step_placed", "step_succeeded"
    ]  # fmt: skip
    # The run's events topic (placements, live output) is not left on the scheduler.
    assert _run_topics(cluster) == before


def test_a_bad_executor_url_is_a_usage_error(tmp_path: Path) -> None:
    plan = _plan([{"id": "one", "command": "true", "timeout_sec": 30}])
    path = str(write_plan(tmp_path, plan))
    done = planrun_cli(path, "--state-dir", "state", "--executor", "ray://x:1", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == (
        "planrun: --executor 'ray://x:1': expected dask://HOST:PORT or dask+tls://HOST:PORT\n"
    )
    assert not (tmp_path / "state").exists()


def test_a_scheduler_that_would_rerun_lost_tasks_is_refused(tmp_path: Path) -> None:
    """A plain `dask scheduler` re-runs a lost worker's task elsewhere (allowed-failures 3)."""
    from cluster import _free_port

    port = _free_port()
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
         "--port", str(port), "--no-dashboard", "--dashboard-address", "127.0.0.1:0"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        plan = _plan([{"id": "one", "command": "touch", "args": ["ran"], "timeout_sec": 30}])
        done = planrun_cli(
            str(write_plan(tmp_path, plan)), "--state-dir", "state", "--executor",
            f"dask://127.0.0.1:{port}", cwd=tmp_path,
        )  # fmt: skip
    finally:
        os.killpg(scheduler.pid, signal.SIGTERM)
        scheduler.wait(timeout=30)
    assert done.returncode == 2, done.stderr
    assert "re-runs the tasks of lost workers (allowed-failures=3)" in done.stderr
    assert not (tmp_path / "ran").exists() and not (tmp_path / "state").exists()


def test_a_frozen_worker_is_lost_after_its_ttl_and_its_tree_killed(tmp_path: Path) -> None:
    from cluster import start_cluster

    ttl = {"DASK_DISTRIBUTED__SCHEDULER__WORKER_TTL": "3s"}
    frozen_cluster = start_cluster(tmp_path / "cluster", {"a": [], "b": []}, ttl)
    work = tmp_path / "work"
    work.mkdir()
    plan = _plan(
        [{"id": "job", "command": "sh", "retries": 1, "retry_delay_sec": 0, "timeout_sec": 90,
          "args": ["-c", "echo $$ >> starts; if [ ! -e go ]; then sleep 60; fi; echo x >> done"]}]
    )  # fmt: skip
    state = tmp_path / "state"
    proc = subprocess.Popen(
        [sys.executable, "-m", "planrun", str(write_plan(tmp_path, plan)), "--state-dir",
         str(state), "--workdir", str(work), "--executor", frozen_cluster.url],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    stopped = None
    try:
        wait_for(lambda: _placed(state, "job", 1) is not None, 60, "the attempt to be placed")
        placed = _placed(state, "job", 1) or {}
        worker_pid = psutil.Process(placed["pid"]).parent().ppid()
        _sleeping(placed["pid"])
        (work / "go").touch()  # the retry does not sleep
        os.kill(worker_pid, signal.SIGSTOP)
        stopped = worker_pid
        _out, err = proc.communicate(timeout=90)
        # The frozen worker's agent kills the first attempt's tree once the TTL is over.
        wait_for(lambda: not psutil.pid_exists(placed["pid"]), 30, "the frozen attempt's end")
    finally:
        if stopped is not None:
            os.kill(stopped, signal.SIGCONT)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        frozen_cluster.stop()
    assert proc.returncode == 0, err
    _retried_after_losing(placed["worker"], work, state)


def test_a_remote_steps_output_reaches_its_log_while_it_runs(
    tmp_path: Path, cluster: Cluster
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    plan = _plan(
        [{"id": "talk", "command": "sh", "timeout_sec": 60,
          "args": ["-c", "echo first; echo oops >&2; while [ ! -e go ]; do sleep 0.05; done;"
                   " echo last"]}]
    )  # fmt: skip
    state = tmp_path / "state"
    proc = subprocess.Popen(
        [sys.executable, "-m", "planrun", str(write_plan(tmp_path, plan)), "--state-dir",
         str(state), "--workdir", str(work), "--executor", cluster.url],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip

    def log(stream: str) -> bytes:
        paths = list((state / "runs").glob(f"*/logs/talk.1.{stream}"))
        return paths[0].read_bytes() if paths else b""

    try:
        wait_for(lambda: log("stdout") == b"first\n", 60, "the first line in the log")
        wait_for(lambda: log("stderr") == b"oops\n", 10, "the stderr line in its log")
        assert proc.poll() is None  # still running: the output came live
        (work / "go").touch()
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert log("stdout") == b"first\nlast\n"


def test_kill_9_of_planrun_then_resume_runs_the_step_again_and_once(
    tmp_path: Path, cluster: Cluster
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    plan = _plan(
        [{"id": "job", "command": "sh", "timeout_sec": 60,
          "args": ["-c", "echo $$ >> starts; if [ ! -e go ]; then sleep 60; fi; echo x >> done"]}]
    )  # fmt: skip
    plan_path = str(write_plan(tmp_path, plan))
    state = tmp_path / "state"
    args = [plan_path, "--workdir", str(work), "--executor", cluster.url]
    first_pid = _kill_planrun_once_placed(args, tmp_path, state, "job")
    # The dropped client connection stops the remote tree; then the resume runs it again.
    wait_for(lambda: not psutil.pid_exists(first_pid), 30, "the orphaned attempt's end")
    (work / "go").touch()
    run_id = collect(state, 0).run_id
    done = planrun_cli(
        "--resume", run_id, "--state-dir", str(state), "--workdir", str(work), "--executor",
        cluster.url, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (work / "done").read_text() == "x\n"
    assert len((work / "starts").read_text().split()) == 2
    result = collect(state, 0)
    assert result.statuses == {"job": "success"}
    assert _placed(state, "job", 2) is not None


# A step that records its pid in `starts` and, first, any earlier start still alive in
# `overlaps`: the work of two attempts of the step must never run at the same time.
_ONCE = (
    "for p in $(cat starts 2>/dev/null); do kill -0 $p 2>/dev/null && echo $p >> overlaps; done;"
    " echo $$ >> starts; if [ ! -e go ]; then sleep 60; fi; echo x >> done"
)


def _scheduler_workers(cluster: Cluster) -> int:
    from distributed import Client

    with Client(cluster.url.replace("dask://", "tcp://"), set_as_default=False) as client:
        return len(client.scheduler_info(n_workers=-1)["workers"])


def test_the_retry_of_a_lost_worker_waits_until_its_tree_is_dead(
    tmp_path: Path, own_cluster: Cluster
) -> None:
    """The lost worker's agent is stopped when its worker is SIGKILLed, so the lost attempt's
    tree outlives the worker until the agent runs again: the retry waits for the agent to
    confirm the tree's end instead of running the step beside it."""
    work = tmp_path / "work"
    work.mkdir()
    plan = _plan(
        [{"id": "job", "command": "sh", "retries": 1, "retry_delay_sec": 0, "timeout_sec": 120,
          "args": ["-c", _ONCE]}]
    )  # fmt: skip
    state = tmp_path / "state"
    proc = subprocess.Popen(
        [sys.executable, "-m", "planrun", str(write_plan(tmp_path, plan)), "--state-dir",
         str(state), "--workdir", str(work), "--executor", own_cluster.url],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    agent = None
    try:
        placed = wait_for(lambda: _placed(state, "job", 1), 60, "the first attempt to be placed")
        agent = psutil.Process(placed["pid"]).parent()
        worker_pid = agent.ppid()
        _sleeping(placed["pid"])
        agent.suspend()
        (work / "go").touch()  # the retry does not sleep
        os.killpg(worker_pid, signal.SIGKILL)
        wait_for(lambda: _scheduler_workers(own_cluster) == 1, 30, "the worker to be lost")
        assert psutil.pid_exists(placed["pid"])  # the lost tree still runs
        agent.resume()  # its parent is gone: it kills the tree, then says so
        _out, err = proc.communicate(timeout=90)
    finally:
        if agent is not None and agent.is_running():
            agent.resume()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert not (work / "overlaps").exists()
    result = _retried_after_losing(placed["worker"], work, state)
    assert result.statuses == {"job": "success"}


def test_resume_kills_by_tag_on_every_worker_what_a_killed_planrun_left_running(
    tmp_path: Path, cluster: Cluster
) -> None:
    """The first run's step ignores SIGTERM and has a long kill grace, so its tree outlives the
    kill -9 of planrun (its worker stops it gracefully when the client goes): the resume kills
    it by its tag on the workers before it runs the step again."""
    work = tmp_path / "work"
    work.mkdir()
    plan = _plan(
        [{"id": "job", "command": "sh", "timeout_sec": 120,
          "args": ["-c", f"trap '' TERM; {_ONCE}"]}]
    )  # fmt: skip
    plan_path = str(write_plan(tmp_path, plan))
    state = tmp_path / "state"
    args = [plan_path, "--workdir", str(work), "--kill-grace", "120", "--executor", cluster.url]
    first = psutil.Process(_kill_planrun_once_placed(args, tmp_path, state, "job"))
    (work / "go").touch()
    run_id = collect(state, 0).run_id
    assert first.is_running()  # it survived its coordinator
    done = planrun_cli(
        "--resume", run_id, "--state-dir", str(state), "--workdir", str(work), "--executor",
        cluster.url, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "1 leftover process group(s) killed" in done.stderr
    assert not first.is_running() or first.status() == "zombie"
    assert not (work / "overlaps").exists()
    assert (work / "done").read_text() == "x\n"
    assert len((work / "starts").read_text().split()) == 2
    assert collect(state, 0).statuses == {"job": "success"}


def test_planrun_exec_runs_the_command_on_a_worker_with_its_output_live_and_masked(
    tmp_path: Path, cluster: Cluster
) -> None:
    script = 'echo out; echo err >&2; echo "token $TOKEN"; exit 3'
    done = planrun_cli(
        "exec", "--state-dir", "state", "--secret", "TOKEN", "--executor", cluster.url, "--",
        "sh", "-c", script, cwd=tmp_path, env={"TOKEN": "s3cr3t-exec-value"},
    )  # fmt: skip
    assert done.returncode == 3, done.stderr  # the command's own status, as locally
    assert done.stdout == "out\ntoken ***\n"
    assert "\nerr\n" in done.stderr
    assert "s3cr3t-exec-value" not in done.stderr
    result = collect(tmp_path / "state", 3)
    assert [e.type for e in result.events if e.step_id == "sh"] == [
        "step_started", "step_placed", "step_failed"
    ]  # fmt: skip


def test_planrun_exec_shows_a_remote_commands_output_as_it_comes(
    tmp_path: Path, cluster: Cluster
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "planrun", "exec", "--state-dir", "state", "--executor",
         cluster.url, "--", "sh", "-c", "echo first; while [ ! -e go ]; do sleep 0.05; done;"
         " echo last"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        assert ready, "no output while the command runs"
        assert os.read(proc.stdout.fileno(), 100) == b"first\n"
        (tmp_path / "go").touch()
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert rest == b"last\n"  # each byte once


def test_planrun_exec_with_an_unusable_executor_is_its_own_error(tmp_path: Path) -> None:
    done = planrun_cli(
        "exec", "--state-dir", "state", "--executor", "ray://x:1", "--", "touch", "ran",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 125
    assert done.stderr == (
        "planrun: --executor 'ray://x:1': expected dask://HOST:PORT or dask+tls://HOST:PORT\n"
    )
    assert not (tmp_path / "ran").exists() and not (tmp_path / "state").exists()


_API = """\
import json, sys
from planrun.api import PlanrunError, run_command, run_plan
url = sys.argv[1]
plan = {"plan_id": "API", "version": "1.0", "steps": [
    {"id": "hello", "command": "sh", "args": ["-c", "echo x=1 >> $PLAN_OUTPUT"],
     "provides": ["x"], "timeout_sec": 30}]}
import pathlib; pathlib.Path("plan.json").write_text(json.dumps(plan))
ran = run_plan("plan.json", state_dir="state", executor=url)
cmd = run_command(["sh", "-c", "exit 4"], state_dir="state", executor=url)
try:
    run_plan("plan.json", state_dir="state", executor="ray://x:1")
except PlanrunError as exc:
    refused = str(exc)
print(json.dumps([ran.run_id, ran.outputs, cmd.run_id, cmd.exit_code, refused]))
"""


def test_the_api_runs_plans_and_commands_on_dask(tmp_path: Path, cluster: Cluster) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _API, cluster.url], cwd=tmp_path, capture_output=True,
        text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    plan_run, outputs, command_run, code, refused = json.loads(done.stdout)
    assert outputs == {"hello": {"x": "1"}}
    assert code == 4
    assert refused == "--executor 'ray://x:1': expected dask://HOST:PORT or dask+tls://HOST:PORT"
    for run_id in (plan_run, command_run):
        events = collect(tmp_path / "state", 0, run_id=run_id).events
        assert [e.type for e in events if e.type == "step_placed"] == ["step_placed"]


def _retried_after_losing(worker: str, work: Path, state: Path) -> RunResult:
    """The step started twice, its work completed exactly once, and its one retry says the
    worker was lost; the run's result."""
    assert (work / "done").read_text() == "x\n"
    assert len((work / "starts").read_text().split()) == 2
    result = collect(state, 0)
    (retrying,) = [e for e in result.events if e.type == "step_retrying"]
    assert retrying.payload["reason"] == f"worker lost: {worker}"
    return result
