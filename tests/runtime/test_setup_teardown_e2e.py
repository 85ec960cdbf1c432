"""docs/semantics.md §5b: a teardown runs if and only if its setup succeeded, and work re-run
inside the scope re-runs the setup first and the teardown after (issue 13, part 3). Real
processes: the lock is a real directory (`mkdir` fails when someone else holds it)."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path
from typing import Any

from support import collect, planc_cli, planrun_cli, run_plan, start_planrun, wait_for, write_plan


def backup(tmp_path: Path, copy_command: str = "true") -> dict[str, Any]:
    """The nightly backup of the issue: take a lock, copy, release the lock."""
    lock = str(tmp_path / "lock")
    log = str(tmp_path / "log")
    return {
        "plan_id": "BACKUP",
        "globals": {"default_timeout_sec": 30, "kill_grace_sec": 1, "cleanup_required": ["lock"]},
        "steps": [
            {
                "id": "take_lock",
                "command": "sh",
                "args": ["-c", f"mkdir '{lock}' && echo take >> '{log}'"],
                "provides": ["lock"],
            },
            {
                "id": "copy",
                "command": "sh",
                "args": ["-c", f"echo copy >> '{log}' && {copy_command}"],
                "consumes": ["lock"],
            },
            {
                "id": "release_lock",
                "command": "sh",
                "args": ["-c", f"rmdir '{lock}' && echo release >> '{log}'"],
                "consumes": ["lock"],
                "depends_on": ["copy"],
                "teardown_for": "take_lock",
            },
        ],
    }


def log_of(tmp_path: Path) -> list[str]:
    path = tmp_path / "log"
    return path.read_text().split() if path.exists() else []


def test_planc_check_proves_the_backup_plan(tmp_path: Path) -> None:
    done = planc_cli("check", str(write_plan(tmp_path, backup(tmp_path))))
    assert done.returncode == 0, done.stdout
    assert "cleanup" not in done.stdout


def test_a_foreign_lock_is_never_released(tmp_path: Path) -> None:
    (tmp_path / "lock").mkdir()
    (tmp_path / "lock" / "owner").write_text("someone else")
    result = run_plan(tmp_path, backup(tmp_path))
    assert result.statuses == {
        "take_lock": "failed",
        "copy": "cancelled",
        "release_lock": "upstream_failed",
    }
    assert (tmp_path / "lock" / "owner").read_text() == "someone else"
    assert log_of(tmp_path) == []
    assert result.exit_code == 1


def test_the_lock_is_released_when_the_work_fails(tmp_path: Path) -> None:
    result = run_plan(tmp_path, backup(tmp_path, "exit 3"))
    assert result.statuses == {"take_lock": "success", "copy": "failed", "release_lock": "success"}
    assert not (tmp_path / "lock").exists()
    assert log_of(tmp_path) == ["take", "copy", "release"]


def test_resume_reacquires_before_it_reruns_and_releases_after(tmp_path: Path) -> None:
    fixed = tmp_path / "fixed"
    first = run_plan(tmp_path, backup(tmp_path, f"test -e '{fixed}'"))
    assert first.statuses["copy"] == "failed" and first.statuses["release_lock"] == "success"
    assert log_of(tmp_path) == ["take", "copy", "release"]
    fixed.touch()
    again = run_plan(tmp_path, backup(tmp_path, f"test -e '{fixed}'"), resume=first.run_id)
    assert again.exit_code == 0
    assert set(again.statuses.values()) == {"success"}
    # The resumed session: take the lock, copy, release; each exactly once.
    assert log_of(tmp_path) == ["take", "copy", "release", "take", "copy", "release"]
    assert not (tmp_path / "lock").exists()
    started = [e.step_id for e in again.events if e.type == "step_started"]
    assert started == ["take_lock", "copy", "release_lock"] * 2


def test_only_inside_the_scope_brings_setup_and_teardown(tmp_path: Path) -> None:
    path = write_plan(tmp_path, backup(tmp_path))
    state = str(tmp_path / "state")
    assert planrun_cli(str(path), "--state-dir", state, cwd=tmp_path).returncode == 0
    done = planrun_cli(str(path), "--state-dir", state, "--only", "copy", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert log_of(tmp_path) == ["take", "copy", "release"] * 2
    assert not (tmp_path / "lock").exists()


def test_an_interrupt_during_the_work_still_releases(
    tmp_path: Path, spawned: list[subprocess.Popen[str]]
) -> None:
    # `copy` waits until planrun is interrupted; the teardown must still run.
    path = write_plan(tmp_path, backup(tmp_path, "sleep 30"))
    state = tmp_path / "state"
    proc = start_planrun([str(path), "--state-dir", str(state)], tmp_path, spawned)
    wait_for(lambda: log_of(tmp_path) == ["take", "copy"], what="copy to start")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 130
    result = collect(state, 130)
    assert result.statuses == {
        "take_lock": "success",
        "copy": "cancelled",
        "release_lock": "success",
    }
    assert log_of(tmp_path) == ["take", "copy", "release"]
    assert not (tmp_path / "lock").exists()


def test_the_compiler_refuses_a_bad_teardown(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        "plan_id: P\nsteps:\n  - {id: take, command: x}\n"
        "  - {id: release, command: z, teardown_for: tkae, trigger_rule: all_done}\n"
    )
    done = planc_cli("check", str(plan))
    assert done.returncode == 1
    assert "error[unknown-setup]: step `release` is the teardown of `tkae`" in done.stdout
    assert "help: did you mean `take`?" in done.stdout
    assert "error[teardown-trigger-rule]" in done.stdout


def test_only_a_teardown_carries_the_key_in_the_ir(tmp_path: Path) -> None:
    ir_path = tmp_path / "plan.ir.json"
    done = planc_cli("compile", str(write_plan(tmp_path, backup(tmp_path))), "-o", str(ir_path))
    assert done.returncode == 0, done.stderr
    steps = {s["id"]: s for s in json.loads(ir_path.read_text())["steps"]}
    assert "teardown_for" not in steps["take_lock"] and "teardown_for" not in steps["copy"]
    assert steps["release_lock"]["teardown_for"] == "take_lock"
    assert steps["release_lock"]["trigger_rule"] == "all_done"
    assert steps["release_lock"]["depends_on"] == ["take_lock", "copy"]
