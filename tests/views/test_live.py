"""The rich live view, drawn on a forced terminal that writes to a string."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from rich.console import Console

from planrun.events import Event
from planrun.views.live import LiveView


def ev(type_: str, step: str | None = None, attempt: int | None = None, **payload: Any) -> Event:
    return Event(1, "2026-11-30T12:01:03.000000Z", "R", type_, step, attempt, payload)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def live(total: int, **options: Any) -> tuple[LiveView, io.StringIO, Clock]:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100, color_system="truecolor")
    clock = Clock()
    return LiveView(console, total, auto_refresh=False, clock=clock, **options), out, clock


def screen(view: LiveView) -> str:
    """What the live region shows now, as plain text."""
    console = Console(file=io.StringIO(), width=100, color_system=None)
    with console.capture() as capture:
        console.print(view.render())
    return capture.get()


def test_shows_progress_running_steps_with_elapsed_and_attempt_and_recent_results() -> None:
    view, out, clock = live(10)
    view(ev("step_started", "lint", 1))
    view(ev("step_started", "build", 1))
    clock.now += 4.2
    view(ev("step_succeeded", "lint", 1, exit_code=0, duration_sec=4.2))
    view(
        ev("step_retrying", "build", 1, reason="exit code 1", delay_sec=1, previous_status="failed")
    )
    clock.now += 1
    view(ev("step_started", "build", 2))
    view(ev("step_skipped", "docs", None, reason="condition"))
    clock.now += 2.5
    text = screen(view)
    assert "[2/10]" in text and "✓ 1" in text and "⊘ 1" in text and "▶ 1 running" in text
    assert "▶ build" in text and "attempt 2" in text and "2.5s" in text
    assert "✓ lint 4.2s" in text and "⊘ docs condition" in text
    assert "\x1b[" in out.getvalue()  # drawn with cursor movement and colour on the terminal
    view.close()


def test_a_step_between_attempts_shows_as_waiting_to_retry() -> None:
    view, _, _ = live(1)
    view(ev("step_started", "flaky", 1))
    view(
        ev("step_retrying", "flaky", 1, reason="exit code 1", delay_sec=5, previous_status="failed")
    )
    text = screen(view)
    assert "↻ flaky" in text and "waiting to retry" in text and "running" not in text.split("\n")[0]
    view.close()


def test_failures_are_printed_above_the_region_with_their_stderr() -> None:
    view, out, _ = live(2)
    view(ev("step_started", "test", 1))
    view(ev("step_failed", "test", 1, reason="exit code 3", duration_sec=1.0, exit_code=3,
            stderr_tail="FAIL: test_parse\n"))  # fmt: skip
    view(ev("run_finished", status="failed", exit_code=1, duration_sec=1.0))
    printed = out.getvalue()
    assert "✗ test" in printed and "exit code 3" in printed and "FAIL: test_parse" in printed
    assert "[1/2]" in printed  # the final one-line result stays after the region is removed


def test_a_thousand_steps_keep_the_region_small() -> None:
    view, _, _ = live(1000, max_running=8, recent=5)
    for i in range(1000):
        view(ev("step_started", f"s{i:04d}", 1))
        if i < 980:
            view(ev("step_succeeded", f"s{i:04d}", 1, exit_code=0, duration_sec=0.1))
    text = screen(view)
    assert "[980/1000]" in text and "✓ 980" in text and "▶ 20 running" in text
    assert "… and 12 more running" in text
    assert len(text.splitlines()) <= 1 + 8 + 1 + 5  # progress, running, "more", recent
    view.close()


def test_verbose_prints_commands_and_output_above_the_region(tmp_path: Path) -> None:
    log = tmp_path / "lint.1.stdout"
    log.write_text("checking 12 files\n")
    view, out, _ = live(1, verbose=True)
    view(ev("step_started", "lint", 1, argv=["ruff", "check"], stdout_log=str(log)))
    view(ev("step_succeeded", "lint", 1, exit_code=0, duration_sec=0.2))
    view.close()
    printed = out.getvalue()
    assert "$ ruff check" in printed and "checking 12 files" in printed


def test_escapes_from_a_step_are_shown_not_obeyed() -> None:
    """OSC (window title), CSI (clear screen), BEL and a newline from a step's stderr, reason or
    id reach the terminal as visible escapes; the view's own colour codes stay."""
    view, out, _clock = live(1)
    hostile = "x\n::error::forged\x1b[2J"
    view(ev("step_started", hostile, 1))
    view(
        ev(
            "step_failed",
            hostile,
            1,
            reason=f"command not found: {hostile}",
            duration_sec=0.1,
            stderr_tail="\x1b]0;pwned\x07 \x1b[2J boom\n\x9b31m",
        )
    )
    view.close()
    written = out.getvalue()
    for raw in ("\x1b]", "\x07", "\x1b[2J", "\x9b", "\n::error"):
        assert raw not in written
    assert "\\x1b]0;pwned\\x07 \\x1b[2J boom" in written
    assert "x\\n::error::forged\\x1b[2J" in written
    assert "\x1b[" in written  # rich's own styling is untouched
