"""The live terminal view of a run (rich): progress, running steps, recent results, failures.

Only the bottom region is redrawn, and it has a fixed maximum height (the progress line, at most
`max_running` running steps, the last `recent` results), so a 1,000-step plan never repaints a
screenful. The running instances of a matrix or a fan-out share one row (`test[*]`) that counts
its instances by status. Failures (and, with -v, commands and output) are printed above the
region and scroll away like ordinary output.
"""

from __future__ import annotations

import atexit
import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from planrun.core.failure import tail_block
from planrun.core.printable import printable
from planrun.events import EVENT_STATUS, FAILURE_EVENTS, FINAL_EVENTS, Event
from planrun.groups import instance_of, matrix_of
from planrun.views.style import (
    FINAL_STATUSES,
    RICH_STYLES,
    ColorMode,
    command_text,
    format_duration,
    symbol,
    use_color,
)
from planrun.views.tail import LogTail


@dataclass
class _Running:
    attempt: int
    started: float
    waiting: bool = False  # between a failed attempt and its retry
    tails: list[tuple[str, LogTail]] = field(default_factory=list)


class LiveView:
    """An observer for `Executor`: call it with each event; it stops itself at `run_finished`."""

    def __init__(
        self,
        console: Console,
        total: int,
        *,
        verbose: bool = False,
        auto_refresh: bool = True,
        clock: Callable[[], float] = time.monotonic,
        max_running: int = 8,
        recent: int = 5,
        groups: Mapping[str, Mapping[str, Any]] | None = None,  # the IR's
    ) -> None:
        self.console = console
        self.total = total
        self.verbose = verbose
        self.clock = clock
        self.max_running = max_running
        self.started = clock()
        self.done = 0
        self.counts: Counter[str] = Counter()
        self.running: dict[str, _Running] = {}
        self.recent: deque[tuple[str, str, str]] = deque(maxlen=recent)  # status, step, detail
        # A matrix's members are known now, a fan-out's once it expands (`build[0]`, …).
        self.matrix_of = matrix_of(groups or {})
        self.group_size: Counter[str] = Counter(self.matrix_of.values())
        self.group_done: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._live = Live(
            get_renderable=self.render,
            console=console,
            auto_refresh=auto_refresh,
            refresh_per_second=4,
            transient=True,  # the final summary replaces the region
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._live.start()
        atexit.register(self.close)  # never leave the cursor hidden if the run dies
        self._poller: threading.Thread | None = None
        if verbose:
            self._poller = threading.Thread(target=self._poll, name="planrun-live", daemon=True)
            self._poller.start()

    @classmethod
    def on_stream(
        cls,
        stream: TextIO,
        total: int,
        *,
        verbose: bool = False,
        color: ColorMode = "auto",
        groups: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> LiveView:
        console = Console(file=stream, color_system="auto" if use_color(stream, color) else None)
        return cls(console, total, verbose=verbose, groups=groups)

    # --- observer ---------------------------------------------------------------------------

    def __call__(self, event: Event) -> None:
        with self._lock:
            self._handle(event)
        if event.type == "run_finished":
            self.close()
        elif not self._live.auto_refresh:
            self._live.refresh()

    def close(self) -> None:
        """Remove the live region and print the one-line result; safe to call twice."""
        if self._stop.is_set():
            return
        self._stop.set()
        if self._poller is not None and self._poller is not threading.current_thread():
            self._poller.join()
        self._live.stop()
        self.console.print(self._progress_line(), highlight=False)
        atexit.unregister(self.close)

    # --- state ------------------------------------------------------------------------------

    def _handle(self, event: Event) -> None:
        step_id = event.step_id
        if event.type == "step_expanded":  # a fan-out's instances are steps of the run too
            instances = [str(i) for i in event.payload.get("instances", ())]
            self.total += len(instances)
            self.group_size.update(filter(None, map(self._group, instances)))
        if step_id is None or event.type not in EVENT_STATUS:
            return
        group = self._group(step_id)
        step_id = printable(step_id)  # every text from the plan or a step is made printable
        if event.type == "step_started":
            self._started(step_id, event)
            return
        running = self.running.get(step_id)
        if running is not None:
            self._print_output(step_id, running, final=True)
        if event.type == "step_retrying":
            if running is not None:
                running.waiting = True
            self._print_failure(event, retrying=True)
            return
        if event.type not in FINAL_EVENTS:
            return  # step_recovered: the result line already went by
        self.running.pop(step_id, None)
        status = EVENT_STATUS[event.type]
        self.done += 1
        self.counts[status] += 1
        if group is not None:
            self.group_done[group][status] += 1
        duration = event.payload.get("duration_sec")
        detail = format_duration(duration) if duration is not None else ""
        if event.type in ("step_skipped", "step_upstream_failed"):
            detail = printable(
                str(event.payload.get("reason") or event.payload.get("detail") or "")
            )
        self.recent.appendleft((status, step_id, detail))
        if event.type in FAILURE_EVENTS or event.type == "step_cancelled":
            self._print_failure(event, retrying=False)

    def _group(self, step_id: str) -> str | None:
        """The matrix or fan-out whose instance `step_id` is."""
        instance = instance_of(step_id)
        return instance[0] if instance is not None else self.matrix_of.get(step_id)

    def _started(self, step_id: str, event: Event) -> None:
        running = _Running(event.attempt or 1, self.clock())
        if self.verbose:
            for key, marker in (("stdout_log", "|"), ("stderr_log", "!")):
                path = event.payload.get(key)
                if path:
                    running.tails.append((marker, LogTail(str(path))))
            command = f" $ {printable(command_text(event.payload))}"
            head = (f"{symbol('running')} {step_id}", RICH_STYLES["running"])
            line = Text.assemble(head, (command, "dim"))
            self.console.print(line, highlight=False)
        self.running[step_id] = running

    # --- printing above the region ----------------------------------------------------------

    def _print_failure(self, event: Event, *, retrying: bool) -> None:
        payload = event.payload
        status = "retrying" if retrying else EVENT_STATUS[event.type]
        mark = symbol(EVENT_STATUS[event.type])
        line = Text.assemble((f"{mark} {printable(event.step_id or '')}", RICH_STYLES[status]))
        line.append(f" {printable(str(payload.get('reason') or ''))}")
        if retrying:
            line.append(f"; retrying in {payload.get('delay_sec', 0):g}s", "dim")
        elif payload.get("duration_sec") is not None:
            line.append(f" ({format_duration(payload['duration_sec'])})", "dim")
        self.console.print(line, highlight=False)
        if self.verbose or retrying:
            return
        tail = payload.get("output_tail")
        if isinstance(tail, dict):
            title, lines = tail_block(str(event.step_id), tail, event.run_id)
            block = Text(f"    {title}", "dim")  # one print: the region is redrawn once
            for text in lines:
                block.append("\n    " + text)
            self.console.print(block, highlight=False)
        elif payload.get("stderr_tail"):  # an event of an older planrun: stderr only
            for text in str(payload["stderr_tail"]).splitlines():
                self.console.print(Text("    │ ", "dim") + Text(printable(text)), highlight=False)

    def _print_output(self, step_id: str, running: _Running, *, final: bool) -> None:
        for marker, tail in running.tails:
            for line in tail.rest() if final else tail.lines():
                text = Text(f"{step_id} {marker} ", "dim") + Text(printable(line))
                self.console.print(text, highlight=False)

    def _poll(self) -> None:
        while not self._stop.wait(0.2):
            with self._lock:
                for step_id, running in list(self.running.items()):
                    self._print_output(step_id, running, final=False)

    # --- the region -------------------------------------------------------------------------

    def render(self) -> RenderableType:
        with self._lock:
            bar = ProgressBar(total=max(self.total, 1), completed=self.done, width=30)
            head = Table.grid(padding=(0, 1))
            head.add_row(bar, self._progress_line())
            return Group(head, self._running_table(), *self._recent_lines())

    def _progress_line(self) -> Text:
        line = Text(f"[{self.done}/{self.total}]", "bold")
        for status in FINAL_STATUSES:
            if self.counts[status]:
                line.append(f"  {symbol(status)} {self.counts[status]}", RICH_STYLES[status])
        active = sum(1 for r in self.running.values() if not r.waiting)
        if active:
            line.append(f"  {symbol('running')} {active} running", RICH_STYLES["running"])
        line.append(f"  {format_duration(self.clock() - self.started)}", "dim")
        return line

    def _running_table(self) -> RenderableType:
        table = Table.grid(padding=(0, 2))
        now = self.clock()
        rows: dict[str, list[tuple[str, _Running]]] = {}  # a step, or a group's running members
        for step_id, running in sorted(self.running.items(), key=lambda item: item[1].started):
            group = self._group(step_id)
            rows.setdefault(step_id if group is None else f"{group}[*]", []).append(
                (step_id, running)
            )
        shown = list(rows.items())
        for key, members in shown[: self.max_running]:
            step_id, running = members[0]
            if key == step_id:
                status = "retrying" if running.waiting else "running"
                text = "waiting to retry" if running.waiting else f"attempt {running.attempt}"
                what = Text(text, "dim")
            else:
                status, what = self._group_cells(key[:-3], [r for _, r in members])
            table.add_row(
                Text(f"{symbol(status)} {key}", RICH_STYLES[status]),
                what,
                Text(format_duration(now - running.started)),
            )
        hidden = len(shown) - self.max_running
        if hidden > 0:
            table.add_row(Text(f"  … and {hidden} more running", "dim"), "", "")
        return table

    def _group_cells(self, group: str, running: list[_Running]) -> tuple[str, Text]:
        """`3 running, 1 waiting to retry of 6  ✓ 2`: a group's running members and its counts."""
        active = sum(1 for r in running if not r.waiting)
        waiting = len(running) - active
        text = Text(f"{active} running" if active else "", "dim")
        if waiting:
            text.append(f"{', ' if active else ''}{waiting} waiting to retry", "dim")
        text.append(f" of {self.group_size[group]}", "dim")
        done = self.group_done[group]
        for status in FINAL_STATUSES:
            if done[status]:
                text.append(f"  {symbol(status)} {done[status]}", RICH_STYLES[status])
        return ("running" if active else "retrying"), text

    def _recent_lines(self) -> list[Text]:
        return [
            Text.assemble((f"{symbol(status)} {step_id}", RICH_STYLES[status]), f" {detail}")
            for status, step_id, detail in self.recent
        ]
