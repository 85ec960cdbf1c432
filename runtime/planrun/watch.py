"""`planrun watch`: run a plan, then again whenever watched files change or a timer fires.

One loop on the main thread; a daemon thread (watch_paths.ChangeSource) only collects changed
paths. Runs never overlap: changes seen while a run is going are coalesced, and cause exactly
one more run once it is over. Each run is an ordinary recorded run (runner.run), whose
run_started event carries the watch session and what triggered it. Consecutive failures back
off; an interrupt (Ctrl-C, SIGTERM, SIGHUP) stops the run in progress as `planrun` does, then the
watcher, with exit 130. docs/cli.md (`planrun watch`).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TextIO

from planrun import runner, watch_state
from planrun.core.byvalue import ByValue
from planrun.core.interpolate import Reference, substitute
from planrun.core.ir import IR
from planrun.events import utc_now
from planrun.executor import EXIT_INTERRUPTED, RunOptions
from planrun.interrupts import Interrupts
from planrun.launch import format_param
from planrun.watch_paths import (
    ChangeSource,
    WatchPathError,
    build_matcher,
    inotify_limit_hint,
    network_filesystems,
)

MAX_PENDING_PATHS = 1000  # changed paths kept between two runs; more are only counted
MAX_EVENT_PATHS = 100  # of those, how many the run_started event lists
DEBOUNCE_CAP = 10  # a stream of changes that never pauses still runs after 10 x debounce
MAX_WAIT_SEC = 3600.0  # one wait of the loop; it looks again after
MAX_BACKOFF_DOUBLINGS = 30  # 2**30 x backoff_sec is beyond any max_backoff_sec worth setting

TriggerKind = Literal["start", "change", "interval"]


@dataclass
class WatchSettings:
    """The plan's `watch:` section (IR), overridden by the command line."""

    paths: list[str] = field(default_factory=lambda: ["."])
    ignore: list[str] = field(default_factory=list)
    debounce_sec: float = 0.2
    interval_sec: float | None = None
    backoff_sec: float = 5.0
    max_backoff_sec: float = 300.0
    exit_on_failure: bool = False
    max_runs: int | None = None
    poll: bool = False

    @classmethod
    def from_ir(cls, ir: IR) -> WatchSettings:
        section = ir.model.watch
        if section is None:
            return cls()
        return cls(
            paths=list(section["paths"]),
            ignore=list(section["ignore"]),
            debounce_sec=float(section["debounce_sec"]),
            interval_sec=section["interval_sec"],
            backoff_sec=float(section["backoff_sec"]),
            max_backoff_sec=float(section["max_backoff_sec"]),
        )


def bind_paths(patterns: list[str], params: dict[str, Any]) -> list[str]:
    """`watch.paths`/`ignore` with `${{ params.NAME }}` and `${{ env.NAME }}` filled in (a
    watched repository given as a param); a step output cannot be watched (runs have none yet)."""

    def resolve(ref: Reference) -> str:
        if ref.kind == "param" and ref.name in params:
            return format_param(params[ref.name])
        if ref.kind == "env":
            return os.environ.get(ref.name, "")
        raise runner.UsageError(
            f"watch paths can use params and env, not `{ref.kind} {ref.name}` of {patterns}"
        )

    try:
        return [substitute(pattern, resolve) for pattern in patterns]
    except ValueError as exc:
        raise runner.UsageError(f"watch path: {exc}") from None


def backoff_delay(failures: int, settings: WatchSettings) -> float:
    """The wait before the next run after `failures` consecutive failed runs (0: none):
    backoff_sec, then doubled per further failure, capped at max_backoff_sec."""
    if failures <= 0:
        return 0.0
    doubled = settings.backoff_sec * 2 ** min(failures - 1, MAX_BACKOFF_DOUBLINGS)
    return float(min(doubled, settings.max_backoff_sec))


@dataclass(frozen=True, eq=False, repr=False)
class Trigger(ByValue):
    kind: TriggerKind
    paths: tuple[str, ...] = ()
    dropped: int = 0  # changed paths beyond those listed

    def describe(self) -> str:
        if self.kind != "change":
            return self.kind
        total = len(self.paths) + self.dropped
        shown = ", ".join(self.paths[:3]) + (", …" if total > 3 else "")
        return f"{total} change{'s' if total != 1 else ''}: {shown}"


class Pending:
    """Changed paths between two runs (bounded), and when they were seen; thread-safe."""

    def __init__(self) -> None:
        self.cond = threading.Condition()  # an RLock: Watcher._publish takes it again
        self.paths: dict[str, None] = {}  # insertion-ordered set
        self.dropped = 0
        self.first_at: float | None = None
        self.last_at: float | None = None
        self.error: BaseException | None = None

    def add(self, paths: list[str]) -> None:
        with self.cond:
            now = time.monotonic()
            self.first_at = self.first_at or now
            self.last_at = now
            for path in paths:
                if path in self.paths:
                    continue
                if len(self.paths) < MAX_PENDING_PATHS:
                    self.paths[path] = None
                else:
                    self.dropped += 1
            self.cond.notify_all()

    def fail(self, exc: BaseException) -> None:
        with self.cond:
            self.error = exc
            self.cond.notify_all()

    def due_at(self, debounce: float) -> float | None:
        """When the changes seen so far should run (None: no changes); call holding cond."""
        if self.first_at is None or self.last_at is None:
            return None
        return min(self.last_at + debounce, self.first_at + debounce * DEBOUNCE_CAP)

    def take(self, kind: TriggerKind) -> Trigger:
        """The trigger for the next run, with every change seen so far; call holding cond."""
        listed = tuple(self.paths)[:MAX_EVENT_PATHS]
        trigger = Trigger(kind, listed, len(self.paths) - len(listed) + self.dropped)
        self.paths = {}
        self.dropped = 0
        self.first_at = self.last_at = None
        return trigger


@dataclass
class RunRequest:
    """What every run of the watcher is started with (runner.run's arguments)."""

    ir: IR
    state_dir: str
    sync: str
    output: runner.Output
    make_options: Callable[[], RunOptions]


class WatchError(Exception):
    """The watcher cannot go on (its file watching failed): one line, exit 2."""


class Watcher:
    def __init__(self, request: RunRequest, settings: WatchSettings, base: str) -> None:
        self.request = request
        self.settings = settings
        self.base = base
        self.err: TextIO = request.output.err
        self.session = runner.new_run_id()
        self.pending = Pending()
        self.source: ChangeSource | None = None
        self.runs = 0
        self.failures = 0
        self.state: dict[str, Any] = {}
        self._publish_failed = False

    # --- the loop ------------------------------------------------------------------------

    def run(self) -> int:
        try:
            with contextlib.suppress(OSError):  # leftovers of earlier watchers: cosmetic
                watch_state.prune(self.request.state_dir)
            self._publish(state="starting", runs=0, failures=0)
            self._start_source()
            return self._loop()
        except KeyboardInterrupt:
            self._say(f"interrupted after {self.runs} run(s)")
            return EXIT_INTERRUPTED
        finally:
            if self.source is not None:
                self.source.stop()
            self._publish(state="stopped", next_run_at=None, next_run_reason=None)

    def _loop(self) -> int:
        trigger = Trigger("start")
        next_tick: float | None = None
        while True:
            started = time.monotonic()
            if self.settings.interval_sec is not None:
                next_tick = started + self.settings.interval_sec
            code = self._run_once(trigger)
            if code == EXIT_INTERRUPTED:
                self._say(f"stopped after {self.runs} run(s)")
                return code
            if self.failures and self.settings.exit_on_failure:
                self._say(f"run {self.runs} failed (exit {code}); --exit-on-failure: stopping")
                return code
            if self.settings.max_runs is not None and self.runs >= self.settings.max_runs:
                return code
            delay = backoff_delay(self.failures, self.settings)
            earliest = time.monotonic() + delay
            if self.failures:
                self._say(
                    f"{self.failures} failed run(s) in a row: the next run waits at least"
                    f" {delay:g}s"
                )
            trigger = self._next_trigger(earliest, next_tick)

    def _run_once(self, trigger: Trigger) -> int:
        self.runs += 1
        run_id = runner.new_run_id()
        info = {
            "session": self.session,
            "run": self.runs,
            "trigger": trigger.kind,
            "paths": list(trigger.paths),
            "paths_dropped": trigger.dropped,
        }
        self._say(f"run {self.runs} ({trigger.describe()})")
        self._publish(
            state="running",
            last_trigger={"kind": trigger.kind, "at": utc_now(), "paths": list(trigger.paths[:10])},
            last_run={"run_id": run_id, "status": "running", "exit_code": None},
            next_run_at=None,
            next_run_reason=None,
        )
        request = self.request
        interrupts = Interrupts()
        code = runner.run(
            request.ir,
            request.state_dir,
            request.make_options(),
            request.sync,
            request.output,
            watch=info,
            run_id=run_id,
            interrupts=interrupts,
        )
        if code != EXIT_INTERRUPTED:
            self.failures = 0 if code == 0 else self.failures + 1
        status = {0: "success", EXIT_INTERRUPTED: "cancelled"}.get(code, "failed")
        self._publish(
            state="idle",
            runs=self.runs,
            failures=self.failures,
            last_run={"run_id": run_id, "status": status, "exit_code": code},
        )
        if interrupts.count and code != EXIT_INTERRUPTED:
            # It came as the run was ending (its steps were done): the run stands, we stop.
            raise KeyboardInterrupt
        return code

    def _next_trigger(self, earliest: float, next_tick: float | None) -> Trigger:
        """Wait for the next run's reason: changes (once quiet for debounce_sec) or the timer,
        never before `earliest` (the failure backoff)."""
        pending = self.pending
        with pending.cond:
            while True:
                if pending.error is not None:
                    raise WatchError(f"watching files failed: {pending.error}")
                now = time.monotonic()
                candidates: list[tuple[float, TriggerKind]] = []
                changes_due = pending.due_at(self.settings.debounce_sec)
                if changes_due is not None:
                    candidates.append((max(changes_due, earliest), "change"))
                if next_tick is not None:
                    candidates.append((max(next_tick, earliest), "interval"))
                due: float | None = None
                kind: TriggerKind = "change"
                if candidates:
                    due, kind = min(candidates)
                    if due <= now:
                        return pending.take(kind)
                self._publish_waiting(now, earliest, due, kind, changes_due)
                # Bounded: threading refuses timeouts past TIMEOUT_MAX (an interval of 1e300 s).
                pending.cond.wait(None if due is None else min(due - now, MAX_WAIT_SEC))

    # --- file watching -------------------------------------------------------------------

    def _start_source(self) -> None:
        settings = self.settings
        if not settings.paths:
            return
        try:
            matcher = build_matcher(
                self.base, settings.paths, settings.ignore, self.request.state_dir
            )
        except WatchPathError as exc:
            raise runner.UsageError(str(exc)) from None
        poll = settings.poll
        for root, kind in network_filesystems(matcher.roots):
            self._say(f"{root} is on a network file system ({kind}): polling it instead")
            poll = True
        source = ChangeSource(matcher, self._changed, self.pending.fail, poll)
        try:
            source.start()
        except (FileNotFoundError, PermissionError) as exc:
            raise runner.UsageError(f"cannot watch files: {exc}") from None
        except (OSError, RuntimeError) as exc:  # RuntimeError: watchfiles' internal errors
            if poll:
                raise WatchError(f"cannot watch files: {exc}") from None
            self._say(inotify_limit_hint(exc))
            source = ChangeSource(matcher, self._changed, self.pending.fail, True)
            source.start()
        self.source = source
        roots = ", ".join(str(r) for r in matcher.roots)
        self._say(f"watching {roots}{' (polling)' if source.poll else ''}")

    # --- state for the views -------------------------------------------------------------

    def _changed(self, paths: list[str]) -> None:
        """(The file watching thread.) Changes for the next run, shown while they wait."""
        self.pending.add(paths)
        self._publish()

    def _publish_waiting(
        self,
        now: float,
        earliest: float,
        due: float | None,
        kind: TriggerKind,
        changes_due: float | None,
    ) -> None:
        backing_off = now < earliest and self.failures > 0
        if backing_off and due is None:
            due = earliest  # no run before then, whatever changes
        reason: str | None = None
        if due is not None:
            reason = "backoff" if backing_off else "debounce" if changes_due is not None else kind
        self._publish(
            state="backing_off" if backing_off else "idle",
            next_run_at=None if due is None else _wall_time(due - now),
            next_run_reason=reason,
        )

    def _publish(self, **changes: Any) -> None:
        """Update the state file when something a reader sees has changed. Under the pending
        changes' lock (reentrant): the file watching thread publishes too."""
        with self.pending.cond:
            changes["pending_changes"] = len(self.pending.paths) + self.pending.dropped
            self._write_state(changes)

    def _write_state(self, changes: dict[str, Any]) -> None:
        if not self.state:
            self.state = {
                "session": self.session,
                "plan_id": self.request.ir.plan_id,
                **watch_state.this_process(),
                "started_at": utc_now(),
                "runs": 0,
                "failures": 0,
                "last_trigger": None,
                "last_run": None,
                "next_run_at": None,
                "next_run_reason": None,
                "paths": list(self.settings.paths),
                "interval_sec": self.settings.interval_sec,
                "pending_changes": 0,
            }
        updated = {**self.state, **changes}
        if updated == self.state and "updated_at" in self.state:
            return
        updated["updated_at"] = utc_now()
        self.state = updated
        try:
            watch_state.publish(self.request.state_dir, updated)
        except OSError as exc:
            if not self._publish_failed:  # the runs go on; say it once
                self._publish_failed = True
                self._say(f"warning: cannot write the watcher's state for the views: {exc}")

    def _say(self, text: str) -> None:
        self.err.write(f"planrun: watch: {text}\n")
        self.err.flush()


def _wall_time(seconds_from_now: float) -> str:
    # A century at most: datetime ends at year 9999, a plan's interval_sec need not.
    at = datetime.now(UTC) + timedelta(seconds=min(max(seconds_from_now, 0), 100 * 365 * 86400))
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # utc_now's format


def watch(request: RunRequest, settings: WatchSettings, base: str) -> int:
    """Run the watcher until interrupted (130), --max-runs, or --exit-on-failure."""
    try:
        return Watcher(request, settings, base).run()
    except WatchError as exc:
        raise runner.UsageError(str(exc)) from None
