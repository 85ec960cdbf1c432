"""Plain lines: a multi-line shell command stays indented under -v, a condition skip quotes the
condition, one step is `1 step`."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import UTC
from pathlib import Path

from planrun.console import LineReporter
from planrun.events import Event


def test_verbose_indents_every_line_of_a_multi_line_shell_command() -> None:
    out = io.StringIO()
    report = LineReporter(out, 1, verbose=True, github=False, tz=UTC, background=False,
                          clock=lambda: 0.0)  # fmt: skip
    payload = {"argv": ["/bin/sh", "-c", "set -e\nmake\nmake check"]}
    report(Event(1, "2026-11-30T12:01:03.000000Z", "R", "step_started", "build", 1, payload))
    assert out.getvalue().splitlines()[1:] == ["    $ set -e", "      make", "      make check"]


def test_a_condition_skip_quotes_the_condition_and_one_step_is_singular(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(
        "plan_id: ONE\nglobals: {default_timeout_sec: 60}\n"
        "params: {deploy: {type: bool, default: false}}\n"
        "steps:\n  - id: ship\n    command: 'true'\n    condition: params.deploy == true\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "planrun", "p.yaml"], cwd=tmp_path, capture_output=True,
        text=True, timeout=120, stdin=subprocess.DEVNULL, env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "(plan ONE, 1 step)\n" in done.stderr
    assert "⊘ ship condition: `params.deploy == true` is false\n" in done.stderr


def test_the_live_view_prints_both_streams_of_a_failure() -> None:
    from rich.console import Console

    from planrun.views.live import LiveView

    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=200, color_system=None)
    view = LiveView(console, 1, auto_refresh=False)
    tail = {
        "lines": [["stdout", "FAILED t.py::x"], ["stderr", "Traceback"]],
        "order": "written",
        "cut": False,
        "stdout_log": "L/test.1.stdout",
        "stderr_log": "L/test.1.stderr",
    }
    view(Event(1, "2026-11-30T12:01:03.000000Z", "R", "step_started", "test", 1, {}))
    view(Event(2, "2026-11-30T12:01:04.000000Z", "R", "step_failed", "test", 1,
               {"reason": "exit code 1", "duration_sec": 1.0, "output_tail": tail}))  # fmt: skip
    view(Event(3, "2026-11-30T12:01:04.000000Z", "R", "run_finished", None, None, {}))
    printed = out.getvalue()
    assert "    test output (2 lines, in the order written; | stdout, ! stderr)\n" in printed
    assert "    | FAILED t.py::x\n    ! Traceback\n" in printed
    assert "    full log: L/test.1.std{out,err} (planrun logs R test [--stderr])\n" in printed
