"""Plain terminal output: one timestamped line per state change, and the end-of-run summary.

`reporter()` picks the view for a run: the rich live view on a terminal, these plain lines
elsewhere (CI, pipes, `--json`). This module never imports rich, so headless runs do not load it.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any, Literal, Protocol, TextIO

from planrun.core.failure import tail_block
from planrun.core.printable import printable
from planrun.core.status import REUSE_REASONS
from planrun.events import EVENT_STATUS, FAILURE_EVENTS, FINAL_EVENTS, Event
from planrun.store import StepInfo
from planrun.views.style import (
    ColorMode,
    command_text,
    dim,
    format_duration,
    is_terminal,
    paint,
    symbol,
    use_color,
)
from planrun.views.tail import LogTail


class Observer(Protocol):
    """What `Executor` calls with each recorded event (the same shape as executor.Observer)."""

    def __call__(self, event: Event) -> None: ...


HEARTBEAT_SEC = 60.0  # CI systems kill jobs silent for a few minutes; say something every minute


def reporter(
    stream: TextIO,
    total: int,
    *,
    quiet: bool = False,
    verbose: bool = False,
    color: ColorMode = "auto",
    live: bool | None = None,
    plan_steps: Sequence[Mapping[str, Any]] = (),
    groups: Mapping[str, Mapping[str, Any]] | None = None,  # the IR's: matrices, fan-outs
) -> Observer:
    """The human view of a run on `stream`: live on a terminal (unless -q), else plain lines."""
    if live is None:
        live = is_terminal(stream) and not quiet
    if live:
        try:
            from planrun.views.live import LiveView  # rich is only loaded for a terminal
        except ImportError:
            pass
        else:
            return LiveView.on_stream(stream, total, verbose=verbose, color=color, groups=groups)
    return LineReporter(
        stream,
        total,
        quiet=quiet,
        verbose=verbose,
        color=use_color(stream, color),
        plan_steps=plan_steps,
    )


def tee(*observers: Observer) -> Observer:
    """One observer that passes each event to all of `observers`, in order."""

    def observe(event: Event) -> None:
        for observer in observers:
            observer(event)

    return observe


@dataclass
class _Running:
    attempt: int
    started: float  # clock() when the attempt started
    next_beat: float
    tails: list[tuple[str, LogTail]] = field(default_factory=list)  # (marker, tail), -v only


class LineReporter:
    """`12:01:03 [3/10] ✓ lint 4.2s`; a failed step's stderr tail as an indented block.

    With `GITHUB_ACTIONS=true` the block is folded in `::group::`/`::endgroup::`. A daemon thread
    prints `… lint still running (2m00s, attempt 1)` every `heartbeat_sec` per running step (the
    executor calls observers only on events) and, with `verbose`, copies the running attempts' log
    lines. The thread exists only while steps run and stops at `run_finished`.
    """

    def __init__(
        self,
        out: TextIO,
        total: int,
        quiet: bool = False,
        *,
        verbose: bool = False,
        color: bool = False,
        github: bool | None = None,
        clock: Callable[[], float] = time.time,
        tz: tzinfo | None = None,
        heartbeat_sec: float | None = HEARTBEAT_SEC,
        poll_sec: float = 0.2,
        env: Mapping[str, str] | None = None,
        background: bool = True,  # False: no thread; the caller (a test) calls tick()
        plan_steps: Sequence[Mapping[str, Any]] = (),  # the IR's steps: location, on_failure
    ) -> None:
        self.steps = {str(step["id"]): step for step in plan_steps}
        self.out = out
        self.total = total
        self.done = 0
        self.quiet = quiet
        self.verbose = verbose
        self.color = color
        environ = os.environ if env is None else env
        self.github = environ.get("GITHUB_ACTIONS") == "true" if github is None else github
        self.clock = clock
        self.tz = tz
        self.heartbeat_sec = heartbeat_sec
        self.poll_sec = poll_sec
        self.background = background
        self.running: dict[str, _Running] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- observer ---------------------------------------------------------------------------

    def __call__(self, event: Event) -> None:
        with self._lock:
            self._handle(event)
            self.out.flush()
        if event.type == "run_finished":
            self.close()

    def tick(self) -> None:
        """What the background thread does: heartbeat lines due now, new log lines (-v)."""
        with self._lock:
            now = self.clock()
            for step_id, running in self.running.items():
                self._copy_output(step_id, running, final=False)
                if self.heartbeat_sec and not self.quiet and now >= running.next_beat:
                    running.next_beat += self.heartbeat_sec
                    elapsed = format_duration(now - running.started)
                    self._line("running", "…", step_id, f" still running ({elapsed}, attempt "
                               f"{running.attempt})")  # fmt: skip
            self.out.flush()

    def close(self) -> None:
        """Stop the background thread; safe to call twice and from the thread itself."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    # --- events -----------------------------------------------------------------------------

    def _handle(self, event: Event) -> None:
        step_id = event.step_id
        if event.type in FINAL_EVENTS:
            self.done += 1
        elif event.type == "step_expanded":  # a fan-out's instances are steps of the run too
            self.total += len(event.payload.get("instances", ()))
        if step_id is None or event.type not in EVENT_STATUS:
            return
        if event.type == "step_started":
            self._started(step_id, event)
        elif event.type == "step_retrying" or event.type in FINAL_EVENTS:
            running = self.running.pop(step_id, None)
            if running is not None:
                self._copy_output(step_id, running, final=True)
        failure = event.type in FAILURE_EVENTS
        if self.quiet and not failure:
            return
        status = EVENT_STATUS[event.type]
        self._line(status, symbol(status), step_id, _detail(event))
        if event.type == "step_started" and self.verbose:
            # a multi-line shell script stays indented under its step
            lines = command_text(event.payload).split("\n")
            command = "\n      ".join(printable(line) for line in lines)
            self.out.write(dim(f"    $ {command}", self.color) + "\n")
        if failure and not self.verbose:  # -v has already shown all the output
            self._failure_output(event)

    def _started(self, step_id: str, event: Event) -> None:
        now = self.clock()
        beat = now + (self.heartbeat_sec or 0.0)
        running = _Running(event.attempt or 1, now, beat)
        if self.verbose:
            for key, marker in (("stdout_log", "|"), ("stderr_log", "!")):
                path = event.payload.get(key)
                if path:
                    running.tails.append((marker, LogTail(str(path))))
        self.running[step_id] = running
        self._ensure_thread()

    def _ensure_thread(self) -> None:
        wanted = self.verbose or (self.heartbeat_sec is not None and not self.quiet)
        wanted = wanted and self.background
        if self._thread is not None or not wanted or self._stop.is_set():
            return
        interval = self.poll_sec if self.verbose else 1.0
        self._thread = threading.Thread(
            target=self._loop, args=(interval,), name="planrun-lines", daemon=True
        )
        self._thread.start()

    def _loop(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self.tick()

    # --- output -----------------------------------------------------------------------------

    def _line(self, status: str, mark: str, step_id: str, detail: str) -> None:
        clock = datetime.fromtimestamp(self.clock(), self.tz).strftime("%H:%M:%S")
        head = f"{dim(clock, self.color)} [{self.done}/{self.total}]"
        name, detail = printable(step_id), printable(detail)
        self.out.write(f"{head} {paint(f'{mark} {name}', status, self.color)}{detail}\n")

    def _block(self, title: str, lines: Sequence[str], *, titled: bool = True) -> None:
        # Lines keep a `    ` prefix even inside a group, so a log line can never be read as
        # a GitHub workflow command (those start with `::`).
        if self.github:
            self.out.write(f"::group::{printable(title)}\n")
        elif titled:
            self.out.write(f"    {printable(title)}\n")
        self.out.writelines(f"    {printable(line)}\n" for line in lines)
        if self.github:
            self.out.write("::endgroup::\n")

    def _failure_output(self, event: Event) -> None:
        """The tail of stdout and stderr and where the full logs are; on GitHub Actions folded
        in a group and followed by an `::error` annotation at the step in the plan file."""
        step_id = str(event.step_id)
        tail = event.payload.get("output_tail")
        lines: list[str] = []
        if isinstance(tail, dict):  # a step that never started has no output
            title, lines = tail_block(step_id, tail, event.run_id)
            self._block(title, lines)
        elif event.payload.get("stderr_tail"):  # an event of an older planrun: stderr only
            lines = [f"| {line}" for line in str(event.payload["stderr_tail"]).splitlines()]
            self._block(f"{step_id} stderr (last lines)", lines, titled=False)
        if self.github:
            from planrun.ci import ANNOTATION_LINES, annotation

            quoted = [line for line in lines if line[:1] in ("|", "!")][-ANNOTATION_LINES:]
            status = EVENT_STATUS[event.type].replace("_", " ")
            step = self.steps.get(step_id, {})
            level: Literal["error", "warning"] = "error"
            if step.get("on_failure") == "continue":
                level = "warning"
            where = str(step.get("location", "")) or None
            detail = _detail(event).strip()
            self.out.write(annotation(step_id, where, status, [detail, *quoted], level))

    def _copy_output(self, step_id: str, running: _Running, *, final: bool) -> None:
        for marker, tail in running.tails:
            for line in tail.rest() if final else tail.lines():
                prefix = dim(f"{printable(step_id)} {marker}", self.color)
                self.out.write(f"{prefix} {printable(line)}\n")


def _detail(event: Event) -> str:
    payload = event.payload
    if event.type == "step_started":
        return f" (attempt {event.attempt})" if (event.attempt or 1) > 1 else ""
    if event.type == "step_succeeded":
        return f" {format_duration(payload.get('duration_sec') or 0)}"
    if event.type == "step_retrying":
        return f" {payload.get('reason')}; retrying in {payload.get('delay_sec', 0):g}s"
    if event.type in FAILURE_EVENTS:
        return f" {payload.get('reason')} ({format_duration(payload.get('duration_sec') or 0)})"
    if event.type == "step_recovered":
        return f" recovered by {payload.get('fallback')}"
    return f" {payload.get('reason')}" + (f": {payload['detail']}" if payload.get("detail") else "")


SUMMARY_ROWS = 40  # past this, the end-of-run table lists only what did not succeed


def summary_rows(
    steps: Sequence[StepInfo],
    max_rows: int = SUMMARY_ROWS,
    tolerated: Mapping[str, str] | None = None,
) -> tuple[list[tuple[str, ...]], str]:
    """The end-of-run table's rows (the first is the header) and the line that counts the steps
    not listed ("" when all are); a tolerated failure says so in its status."""
    shown = list(steps)
    if len(shown) > max_rows:
        shown = [s for s in steps if not _done(s)][:max_rows]
    header = ("STEP", "STATUS", "ATTEMPTS", "DURATION", "EXIT", "REASON")
    rows: list[tuple[str, ...]] = [header]
    why = tolerated or {}
    for step in shown:
        if step.step_id in why:
            status = f"{step.status}, tolerated ({why[step.step_id]})"
        else:
            status = step.status + (
                f" (recovered by {step.recovered_by})" if step.recovered_by else ""
            )
        duration = "" if step.duration_sec is None else f"{step.duration_sec:.2f}s"
        exit_code = "" if step.exit_code is None else str(step.exit_code)
        reason = ": ".join(filter(None, [step.reason, step.detail]))
        raw = (step.step_id, status, str(step.attempts), duration, exit_code, reason)
        rows.append(tuple(printable(cell) for cell in raw))
    hidden = len(steps) - len(shown)
    footer = ""
    if hidden:
        succeeded = sum(1 for s in steps if s.status == "success")
        current = sum(1 for s in steps if s.status != "success" and _done(s))
        also = f", {current} up to date or reused" if current else ""
        footer = (
            f"… {hidden} more {plural(hidden, 'step')} not listed ({succeeded} succeeded{also});"
            " `planrun show RUN` lists every step"
        )
    return rows, footer


def summary_table(
    steps: Sequence[StepInfo],
    max_rows: int = SUMMARY_ROWS,
    tolerated: Mapping[str, str] | None = None,
) -> str:
    """One screen: each step's status, attempts, duration, exit code and reason.

    A plan larger than `max_rows` lists only the steps that did not succeed (at most
    `max_rows` of them) and counts the rest: 1,000 ✓ lines would bury the failures.
    """
    rows, footer = summary_rows(steps, max_rows, tolerated)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    if footer:
        lines.append(footer)
    return "\n".join(lines) + "\n"


def plural(count: int, word: str) -> str:
    """`1 step`, `2 steps`: the word for `count` of them (regular English plurals only)."""
    return word if count == 1 else word + "s"


def _done(step: StepInfo) -> bool:
    """Succeeded, or a recorded success stood in for it (docs/fingerprints.md): nothing to see
    in a long plan's summary."""
    return step.status == "success" or step.reason in REUSE_REASONS
