"""Ctrl-C and SIGTERM at any moment of planrun's and planc's life, not only mid-run.

- While the program loads (most of its start-up): one line, exit 130, no traceback. The
  interrupt is delivered deterministically: an import hook raises KeyboardInterrupt when the CLI
  module is imported, as the default SIGINT handler would at that point.
- After the run is recorded but before the executor's loop: the run is cancelled cleanly
  (`cancelled`, exit 130, run_finished), not left `interrupted`; no step starts.
- Interrupted while the state database is being created: nothing half-made is left behind;
  the next run uses it.
- A signal planrun was started with ignored (a shell's background job) stays ignored.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from support import REPO, collect, planc_cli, start_planrun, wait_for, write_plan

from planrun import plan_loader, runner
from planrun.executor import RunOptions

# Imports the program the way its installed script does, with a meta-path hook that interrupts
# the import of MODULE: with a KeyboardInterrupt (what Ctrl-C does while that module loads), or
# with the signal SIGNAL sent to the process.
_INTERRUPTED_WHILE_LOADING = """\
import importlib.abc, os, signal, sys
module, program, how = sys.argv[1], sys.argv[2], sys.argv[3]
class Interrupt(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == module and how == "ctrl-c":
            raise KeyboardInterrupt
        if name == module:
            os.kill(os.getpid(), getattr(signal, how))
        return None
sys.meta_path.insert(0, Interrupt())
sys.argv = [program, *sys.argv[4:]]
from importlib import import_module
import_module(program + ".__main__").main()
"""


@pytest.mark.parametrize(
    ("program", "module", "args"),
    [
        ("planrun", "planrun.cli", ["plan.json", "--state-dir", "state"]),
        ("planrun", "planrun.executor", ["plan.json", "--state-dir", "state"]),
        ("planrun", "planc.pipeline", ["plan.json", "--state-dir", "state"]),  # in-memory compile
        ("planc", "planc.cli", ["check", "plan.json"]),
        ("planc", "planc.rules", ["check", "plan.json"]),
    ],
)
def test_ctrl_c_while_loading_is_one_line_and_exit_130(
    tmp_path: Path, program: str, module: str, args: list[str]
) -> None:
    result = _interrupted_while_loading(tmp_path, program, module, "ctrl-c", args)
    assert (result.returncode, result.stderr) == (130, f"{program}: interrupted\n")
    assert result.stdout == ""
    assert not (tmp_path / "state" / "runs").exists(), "nothing was run"


@pytest.mark.parametrize("program", ["planrun", "planc"])
@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP"])
def test_sigterm_or_sighup_while_loading_is_one_line_and_exit_130(
    tmp_path: Path, program: str, signame: str
) -> None:
    """Their default action would kill the program silently, mid-way through its start-up."""
    args = ["plan.json", "--state-dir", "state"] if program == "planrun" else ["check", "plan.json"]
    result = _interrupted_while_loading(tmp_path, program, f"{program}.cli", signame, args)
    assert (result.returncode, result.stderr) == (130, f"{program}: interrupted\n")
    assert not (tmp_path / "state" / "runs").exists(), "nothing was run"


def _interrupted_while_loading(
    tmp_path: Path, program: str, module: str, how: str, args: list[str]
) -> subprocess.CompletedProcess[str]:
    write_plan(tmp_path, {"plan_id": "P", "steps": [{"id": "a", "command": "true"}]})
    return subprocess.run(
        [sys.executable, "-c", _INTERRUPTED_WHILE_LOADING, module, program, how, *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


class _InterruptWhenRecorded(io.StringIO):
    """planrun's stderr: it says "planrun: run ID …" right after recording the run, before the
    executor exists; that is when this stream sends SIGINT to the process."""

    def write(self, text: str) -> int:
        if text.startswith("planrun: run ") and "(plan " in text:
            os.kill(os.getpid(), signal.SIGINT)
        return super().write(text)


def test_an_interrupt_before_the_loop_cancels_the_recorded_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    plan = {
        "plan_id": "EARLY",
        "steps": [
            {"id": "a", "command": "touch", "args": [str(marker)], "timeout_sec": 10},
            {"id": "b", "command": "true", "depends_on": ["a"], "timeout_sec": 10},
        ],
    }
    ir = plan_loader.load_runnable(str(write_plan(tmp_path, plan)), io.StringIO())
    state = tmp_path / "state"
    err = _InterruptWhenRecorded()
    output = runner.Output(out=io.StringIO(), err=err, quiet=True)
    code = runner.run(ir, str(state), RunOptions(workdir=str(tmp_path)), "normal", output)
    assert code == 130
    assert not marker.exists(), "no step may start once the run was interrupted"
    result = collect(state, code)
    assert result.statuses == {"a": "cancelled", "b": "cancelled"}
    assert set(result.reasons.values()) == {"interrupted"}
    assert result.summary["status"] == "cancelled"
    assert [e.type for e in result.events] == [
        "run_started",
        "step_cancelled",
        "step_cancelled",
        "run_finished",
    ]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler, "handlers restored"


# Opens a state directory with planrun's own RunStore.open and schema.migrate, the connection wrapped
# so that a KeyboardInterrupt (Ctrl-C) arrives right after the statement that starts with
# argv[2].
_INTERRUPTED_MIGRATION = """\
import sys
from planrun.store import RunStore, schema
real_migrate, when = schema.migrate, sys.argv[2]
class CtrlCAfter:
    def __init__(self, conn):
        self.conn = conn
    @property
    def in_transaction(self):
        return self.conn.in_transaction
    def execute(self, sql, *args):
        result = self.conn.execute(sql, *args)
        if sql.lstrip().startswith(when):
            raise KeyboardInterrupt
        return result
schema.migrate = lambda conn: real_migrate(CtrlCAfter(conn))
try:
    RunStore.open(sys.argv[1])
except KeyboardInterrupt:
    sys.exit(130)
"""


@pytest.mark.parametrize("when", ["CREATE TABLE steps", "ALTER TABLE", "COMMIT"])
def test_an_interrupted_state_creation_leaves_a_usable_state(tmp_path: Path, when: str) -> None:
    """Ctrl-C while state.db gets its schema: the interrupt is what propagates, nothing
    half-made is committed, and the next planrun uses the state. Landing just after COMMIT, it
    used to become `cannot open …/state.db: cannot rollback - no transaction is active`,
    exit 2."""
    state = tmp_path / "state"
    interrupted = subprocess.run(
        [sys.executable, "-c", _INTERRUPTED_MIGRATION, str(state), when],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (interrupted.returncode, interrupted.stderr) == (130, "")
    plan = write_plan(tmp_path, {"plan_id": "P", "steps": [{"id": "a", "command": "true"}]})
    ran = subprocess.run(
        [sys.executable, "-m", "planrun", str(plan), "--state-dir", str(state), "-q"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert ran.returncode == 0, ran.stderr
    assert collect(state, 0).statuses == {"a": "success"}


def test_sigint_ignored_at_start_stays_ignored(
    tmp_path: Path, spawned: list[subprocess.Popen[str]]
) -> None:
    """`planrun plan &` in a script: the shell has SIGINT ignored so that Ctrl-C reaches only
    the foreground job; planrun keeps it ignored, as make does. SIGTERM still stops it."""
    gate, started = tmp_path / "gate", tmp_path / "started"
    wait = f"touch {started}; while [ ! -e {gate} ]; do sleep 0.01; done"
    plan = {
        "plan_id": "BACKGROUND",
        "steps": [{"id": "wait", "command": "sh", "args": ["-c", wait], "timeout_sec": 60}],
    }
    ir = tmp_path / "plan.ir.json"
    compiled = planc_cli("compile", str(write_plan(tmp_path, plan)), "-o", str(ir))
    assert compiled.returncode == 0, compiled.stderr
    args = [str(ir), "--state-dir", "state", "-q"]
    proc = start_planrun(args, tmp_path, spawned, ignoring="INT")  # what `&` does in a script
    wait_for(lambda: started.exists() or proc.poll() is not None, what="the step to start")
    assert proc.poll() is None, "planrun ended before its step started"
    proc.send_signal(signal.SIGINT)
    gate.touch()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert collect(tmp_path / "state", 0).statuses == {"wait": "success"}


def test_the_installed_scripts_go_through_the_interrupt_safe_entry_points() -> None:
    pyproject = (REPO / "pyproject.toml").read_text()
    assert 'planc = "planc.__main__:main"' in pyproject
    assert 'planrun = "planrun.__main__:main"' in pyproject
