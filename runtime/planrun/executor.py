"""The run loop: start ready steps while there is capacity, wait for one to finish, record it.

Decisions come from `semantics.PlanState`, process control from a `launcher.Launcher` (local:
`process.ProcessSet`), records go to `store.RunStore`; this module only wires them together
(ninja's Builder).
"""

from __future__ import annotations

import heapq
import os
import signal
import time
from collections import ChainMap
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Protocol

from planrun import semantics as sem
from planrun.events import Event
from planrun.failure import output_tail
from planrun.fanout import FanOut
from planrun.groups import FAIL_FAST, GroupControl
from planrun.ir import IR
from planrun.ir_types import IRStep
from planrun.launch import AttemptFiles, LaunchError, RunContext, launch_spec
from planrun.launcher import Launcher
from planrun.outputs import OutputError, read_outputs
from planrun.params import ParamValue
from planrun.process import Finished, ProcessSet, SpawnError, kill_leftover
from planrun.reuse import Candidate, Decider, secret_outputs_of
from planrun.safefs import create_private
from planrun.scheduler import ReadyQueue
from planrun.store import AttemptInfo, RunStore

if TYPE_CHECKING:  # imported where used: most runs have no conditions, selection or secrets
    from planrun.conditions import StepFacts
    from planrun.masking import Masker
    from planrun.selection import Selection

EXIT_SUCCESS = 0
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130

_OUTCOME_EXIT = {"success": EXIT_SUCCESS, "failed": EXIT_FAILED, "cancelled": EXIT_INTERRUPTED}


class Observer(Protocol):
    """Receives every recorded event (terminal views, --json stream)."""

    def __call__(self, event: Event) -> None: ...


@dataclass
class RunOptions:
    workdir: str = field(default_factory=os.getcwd)
    max_concurrency: int | None = None
    kill_grace_sec: float | None = None
    argv: list[str] = field(default_factory=list)
    params: dict[str, ParamValue] = field(default_factory=dict)  # bound and checked by runner
    echo_fds: tuple[int, int] | None = None  # steps' output also to these fds (planrun exec)
    force: frozenset[str] = frozenset()  # --force STEP: never up to date
    force_all: bool = False  # --force: no step is up to date
    launcher: Launcher | None = None  # where attempts run [default: here, a ProcessSet]


@dataclass
class StepRecord:
    """What conditions may read about a step (semantics.md §2)."""

    status: str = sem.PENDING  # only read on resume; PlanState owns the live status
    attempts: int = 0  # numbered across resumes, like the store's attempt rows
    tries: int = 0  # attempts in this session: what the retry budget counts
    exit_code: int | None = None
    duration_sec: float | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    reason: str | None = None  # only read on resume: `reused`/`not_selected` keep a selection
    # Names of outputs holding a secret. Their raw values live in `outputs` only in the process
    # that read them; restored from the store they are masked, so no consumer may get them.
    secret_outputs: set[str] = field(default_factory=set)
    fingerprint: str | None = None  # only read on resume: what a kept success was started with
    fingerprint_parts: dict[str, Any] = field(default_factory=dict)


# What interrupts a run: Ctrl-C, `kill`, and the terminal or SSH session going away (SIGHUP, as
# in make; `nohup planrun …` has it ignored and runs on).
INTERRUPTS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupts:
    """SIGINT/SIGTERM/SIGHUP handlers that only count; the executor's loop acts on the count.

    The runner installs them before it records the run, so an interrupt from then on cancels
    the run cleanly instead of leaving it `interrupted`. A signal planrun was started with
    ignored stays ignored (docs/cli.md)."""

    def __init__(self) -> None:
        self.count = 0
        self.wake: Callable[[], None] = _no_wake  # the executor's, once it exists
        self.installed = False
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        if self.installed:
            return
        self.installed = True
        for signum in INTERRUPTS:
            if signal.getsignal(signum) is not signal.SIG_IGN:
                self._previous[signum] = signal.signal(signum, self._handle)

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
        self.installed = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1
        self.wake()


def _no_wake() -> None:
    """Before the executor's loop exists there is nothing to wake: it reads the count first."""


class Executor:
    def __init__(
        self,
        ir: IR,
        store: RunStore,
        run_id: str,
        options: RunOptions,
        observer: Observer | None = None,
        interrupts: Interrupts | None = None,
    ) -> None:
        self.ir = ir
        self.store = store
        self.run_id = run_id
        self.options = options
        self.observer = observer
        self.steps = dict(ir.steps_by_id)  # a fan-out adds its instances (fanout.py)
        rules = sem.rules_from_ir(ir.steps)
        self.plan = sem.PlanState.create(rules, self._condition_holds)
        self.ready = ReadyQueue(rules)
        self.procs: Launcher = options.launcher or ProcessSet()
        self.groups = GroupControl(ir.model.groups or {})
        self.fanout = FanOut(self)
        self.interrupts = interrupts or Interrupts()
        self.interrupts.wake = self.procs.wakeup
        self.records = {sid: StepRecord() for sid in self.steps}
        self.invariants = _invariants_by_step(ir.model.invariants)
        self._facts = _Facts(self.plan.status, self.records)
        self.retry_timers: list[tuple[float, int, str]] = []
        self.capacity = options.max_concurrency or int(ir.globals.max_concurrency)
        grace = options.kill_grace_sec
        self.kill_grace = float(ir.globals.kill_grace_sec if grace is None else grace)
        self.handled_interrupts = 0
        self._unobserved: list[Event] = []  # recorded, not committed yet: the observer waits
        self.started_at = time.monotonic()
        # planrun's environment as the run starts: steps, `${{ env.X }}` and conditions read
        # this copy (os.environ decodes every name and value at each access).
        self.environ = dict(os.environ)
        self._log_dir = str(store.log_dir(run_id))
        self._log_fd = store.log_dir_fd(run_id)
        all_secrets = secret_names(ir)
        self.masker = run_masker(ir, all_secrets, self.environ, options.params)
        # step id -> its secret outputs recorded by an earlier process (none for most steps)
        self.unavailable: dict[str, set[str]] = {}
        self.context = RunContext(
            run_id=run_id,
            workdir=options.workdir,
            params=options.params,
            outputs={sid: record.outputs for sid, record in self.records.items()},
            environ=self.environ,
            all_secrets=all_secrets,
            masker=self.masker,
            unavailable=self.unavailable,
            kill_grace_sec=self.kill_grace,
            echo_fds=options.echo_fds,
        )
        secret_params = ir.model.secret_params
        self.reuse = Decider(store.state_dir, self.steps, self.context, secret_params)

    # --- entry points ----------------------------------------------------------------------

    def run(
        self,
        previous: dict[str, StepRecord] | None = None,
        selection: Selection | None = None,
        ir_changed: bool = False,
    ) -> int:
        """Run the plan; `previous` (resume) holds what earlier sessions recorded per step
        (`ir_changed`: with another IR than theirs), `selection` (--only/--from) the steps
        needed from earlier runs or left out."""
        installed_here = not self.interrupts.installed
        self.interrupts.install()
        try:
            # Events are committed once per loop iteration (docs/state.md, "Batching"): what
            # happened since the last wait, e.g. A succeeded, B and C started, in one transaction.
            with self.store.batch():
                if previous:
                    self._restore(previous, ir_changed)
                if selection:
                    self._select(selection)
                self._offer_up_to_date()
                self._apply(self.plan.begin())
                self._loop()
                return self._finish()
        finally:
            if installed_here:  # else the runner's, which keeps them until it has reported
                self.interrupts.restore()
            self.procs.close()
            self.reuse.close()

    # --- the loop ---------------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            self._react_to_interrupts()
            self._fire_due_retries()
            self._start_ready()
            if not self.procs.running and not self.retry_timers and not len(self.ready):
                settled = self.plan.settle()
                if not settled:
                    return
                self._apply(settled)
                continue
            self._commit()  # before blocking: every step_started is on disk while its step runs
            ended = self.procs.wait(self._next_timer_delay())
            self._record_placements()  # where an attempt ran is recorded before how it ended
            for finished in ended:
                self._attempt_finished(finished)

    def _start_ready(self) -> None:
        held: list[str] = []  # a group's max_parallel reached: they wait for a sibling to end
        while self.procs.running < self.capacity:
            step_id = self.ready.pop()
            if step_id is None:
                break
            if self.plan.status[step_id] not in (sem.PENDING, sem.RUNNING):
                continue
            if self.plan.status[step_id] == sem.PENDING and step_id in self.invariants:
                refused = self._refusal(step_id)
                if refused:
                    self._apply(refused)
                    continue
            if self.groups.held(step_id, self.procs.__contains__):
                held.append(step_id)
            elif self.fanout.owns(step_id):
                self.fanout.start(step_id)
            elif self.records[step_id].tries:  # a retry: decided at its first attempt
                self._start_attempt(step_id)
            else:
                decision = self.reuse.decide(step_id)
                if decision.reuse is not None:
                    self._stand_in(step_id, decision.reuse)
                else:
                    self._start_attempt(step_id, decision.payload())
        for step_id in held:
            self.ready.push(step_id)

    def _refusal(self, step_id: str) -> list[sem.Action]:
        """The one runtime check of the plan's invariants (docs/invariants.md): before a step's
        first attempt, against the statuses recorded so far: this run's, a resume's restored
        successes and an --only/--from selection's reused ones (both recorded as success)."""
        from planrun.invariants import refusal, why

        invariant = refusal(self.invariants[step_id], self.plan.status)
        if invariant is None:
            return []
        return self.plan.refuse(step_id, why(invariant, self.plan.status))

    def _next_timer_delay(self) -> float | None:
        if not self.retry_timers:
            return None
        return max(0.0, self.retry_timers[0][0] - time.monotonic())

    def _fire_due_retries(self) -> None:
        now = time.monotonic()
        while self.retry_timers and self.retry_timers[0][0] <= now:
            _, _, step_id = heapq.heappop(self.retry_timers)
            if self.plan.status[step_id] == sem.RUNNING:
                self.ready.push(step_id, urgent=True)

    # --- attempts ---------------------------------------------------------------------------

    def _start_attempt(self, step_id: str, decided: dict[str, Any] | None = None) -> None:
        """Start the step's next attempt; `decided` (its first attempt in this run) goes into
        step_started: the fingerprint and why it runs."""
        decided = decided or {}
        step = self.steps[step_id]
        record = self.records[step_id]
        record.attempts += 1
        record.tries += 1
        attempt = record.attempts
        self.plan.started(step_id)
        base = self._attempt_base(step_id, attempt)
        files = AttemptFiles(base + ".stdout", base + ".stderr", base + ".outputs", self._log_fd)
        output_file = files.outputs
        try:
            spec = launch_spec(step, attempt, self.fanout.context(step_id, self.context), files)
            if step.provides:  # fresh and empty for every attempt of a step with outputs
                os.close(create_private(os.path.basename(output_file), dir_fd=self._log_fd))
        except (LaunchError, OSError) as exc:
            extra = {"argv": exc.argv} if isinstance(exc, LaunchError) and exc.argv else {}
            self._emit("step_started", step_id, attempt, pid=None, pgid=None, **extra, **decided)
            reason = str(exc) if isinstance(exc, LaunchError) else f"cannot create {output_file}"
            self._attempt_ended(step_id, sem.FAILED, reason, {"exit_code": None})
            return
        common = {
            "argv": spec.argv,
            "cwd": spec.cwd,
            "stdout_log": spec.stdout_path,
            "stderr_log": spec.stderr_path,
            **decided,
        }
        try:
            started = self.procs.start(step_id, spec)
        except SpawnError as exc:
            self._emit("step_started", step_id, attempt, pid=None, pgid=None, **common)
            self._attempt_ended(step_id, sem.FAILED, exc.reason, {"exit_code": None})
            return
        self._emit(
            "step_started",
            step_id,
            attempt,
            pid=started.pid,
            pgid=started.pgid,
            proc_start_time=started.proc_start_time,
            tag=started.tag,
            **common,
        )

    def _stand_in(self, step_id: str, candidate: Candidate) -> None:
        """A recorded success stands in for the step (its fingerprint matches): it counts as a
        success for its dependents, with the outputs it set then."""
        if candidate.kind != "kept":  # a kept step keeps its record of this run as it is
            record = self.records[step_id]
            record.outputs.clear()
            record.outputs.update(candidate.outputs)
            extra: dict[str, Any] = {}
            if candidate.outputs:
                extra["outputs"] = dict(candidate.outputs)
            secret = set()
            if candidate.outputs and self.masker is not None:  # else nothing can be a secret
                secret = secret_outputs_of(self.store.state_dir, candidate.run_id, step_id)
            self.unavailable[step_id] = secret
            if secret:
                extra["secret_outputs"] = sorted(secret)
            self._emit(
                "step_skipped", step_id, None, reason=candidate.kind,
                detail=f"fingerprint matches run {candidate.run_id}",
                fingerprint=candidate.fingerprint, from_run=candidate.run_id, **extra,
            )  # fmt: skip
        self._apply(self.plan.finished(step_id, sem.SUCCESS))

    def _record_placements(self) -> None:
        for placed in self.procs.placements():
            attempt = self.records[placed.key].attempts
            self._emit(
                "step_placed", placed.key, attempt, worker=placed.worker, host=placed.host,
                pid=placed.pid,
            )  # fmt: skip

    def _attempt_finished(self, finished: Finished) -> None:
        step_id = finished.key
        if finished.outcome == "spawn_error":  # a remote launcher's: as when start() raises
            self._attempt_ended(step_id, sem.FAILED, finished.reason, {"exit_code": None})
            return
        record = self.records[step_id]
        record.duration_sec = round(finished.duration_sec, 6)
        record.exit_code = finished.exit_code
        details: dict[str, Any] = {
            "exit_code": finished.exit_code,
            "signal": finished.signal,
            "stderr_tail": finished.stderr_tail,
            "duration_sec": record.duration_sec,
        }
        output_error = self._collect_outputs(step_id, record)
        if record.outputs:
            details["outputs"] = dict(record.outputs)
            if record.secret_outputs:
                details["secret_outputs"] = sorted(record.secret_outputs)
        succeeded = finished.outcome == "exited" and finished.exit_code == 0
        if finished.outcome != "cancelled" and (not succeeded or output_error is not None):
            base = self._attempt_base(step_id, record.attempts)
            details["output_tail"] = output_tail(base + ".stdout", base + ".stderr", finished.order)
        if succeeded and output_error is not None:
            self._attempt_ended(step_id, sem.FAILED, output_error, details)
        elif succeeded:
            extra = {k: details[k] for k in ("outputs", "secret_outputs") if k in details}
            self._emit(
                "step_succeeded", step_id, exit_code=0, duration_sec=record.duration_sec, **extra
            )
            self._apply(self.plan.finished(step_id, sem.SUCCESS))
        elif finished.outcome == "cancelled":
            reason = FAIL_FAST if step_id in self.groups.cancelled else self._cancel_reason()
            self._emit("step_cancelled", step_id, reason=reason, **details)
            self._apply(self.plan.finished(step_id, sem.CANCELLED))
        elif finished.outcome in ("timeout", "stalled"):
            details["limit_sec"] = self._limit(step_id, finished.outcome)
            details["detail"] = finished.reason
            self._attempt_ended(step_id, sem.TIMED_OUT, finished.outcome, details)
        else:
            self._attempt_ended(step_id, sem.FAILED, finished.reason, details)

    def _collect_outputs(self, step_id: str, record: StepRecord) -> str | None:
        """Read the attempt's $PLAN_OUTPUT into `record.outputs`; the error text, if any."""
        provides = frozenset(self.steps[step_id].provides)
        output_file = self._attempt_base(step_id, record.attempts) + ".outputs"
        try:
            values = read_outputs(os.path.basename(output_file), provides, self._log_fd)
        except OutputError as exc:
            return str(exc) if self.masker is None else exc.bare
        finally:
            if self.masker is not None:
                from planrun.secrecy import scrub_file

                scrub_file(output_file, self.masker)
        record.outputs.clear()  # the latest attempt's values, not a mix of attempts
        record.outputs.update(values)
        holds = self.masker.holds_secret if self.masker is not None else None
        record.secret_outputs = {n for n, v in values.items() if holds and holds(v)}
        self.unavailable.pop(step_id, None)  # raw values of this process from now on
        return None

    def _attempt_ended(
        self, step_id: str, status: str, reason: str, details: dict[str, Any]
    ) -> None:
        """A failed or timed-out attempt: retry it, or make the failure final."""
        step = self.steps[step_id]
        tries = self.records[step_id].tries
        rules = self.plan.steps[step_id]
        if sem.should_retry(status, tries, step.retries, self.plan.mode, rules.is_cleanup):
            delay = sem.retry_delay(
                step.retry_delay_sec, step.retry_backoff, step.max_retry_delay_sec,
                tries + 1,
            )  # fmt: skip
            self._emit(
                "step_retrying", step_id, delay_sec=delay, previous_status=status, reason=reason,
                **details,
            )  # fmt: skip
            heapq.heappush(self.retry_timers, (time.monotonic() + delay, tries, step_id))
            return
        event = "step_timed_out" if status == sem.TIMED_OUT else "step_failed"
        self._emit(event, step_id, reason=reason, **details)
        self._apply(self.plan.finished(step_id, status))
        self._fail_fast(self.groups.to_cancel(step_id, step.on_failure))

    def _fail_fast(self, siblings: list[str]) -> None:
        """Cancel the other instances of a group whose member failed (docs/composition.md)."""
        for step_id in siblings:
            status = self.plan.status[step_id]
            if status in sem.TERMINAL:
                continue
            self.groups.cancelled.add(step_id)
            if step_id in self.procs:
                self.procs.cancel(step_id)
            elif status == sem.RUNNING:  # waiting for its retry delay, or queued for one
                self.retry_timers = [t for t in self.retry_timers if t[2] != step_id]
                heapq.heapify(self.retry_timers)
                self._emit("step_cancelled", step_id, reason=FAIL_FAST, duration_sec=None)
                self._apply(self.plan.finished(step_id, sem.CANCELLED))
            else:
                self._emit("step_cancelled", step_id, None, reason=FAIL_FAST, duration_sec=None)
                self._apply(self.plan.finished(step_id, sem.CANCELLED))

    def scrub_outputs(self, attempts: Iterable[tuple[str, int]]) -> None:
        """Mask the $PLAN_OUTPUT files of attempts a dead planrun never read (resume)."""
        if self.masker is None:
            return
        from planrun.secrecy import scrub_file

        for step_id, attempt in attempts:
            scrub_file(self._attempt_base(step_id, attempt) + ".outputs", self.masker)

    def _attempt_base(self, step_id: str, attempt: int) -> str:
        """The attempt's log path without its suffix (store.log_paths, as plain strings)."""
        return f"{self._log_dir}/{step_id}.{attempt}"

    def _limit(self, step_id: str, outcome: str) -> float | None:
        step = self.steps[step_id]
        value = step.timeout_sec if outcome == "timeout" else step.heartbeat_timeout_sec
        return None if value is None else float(value)

    def _cancel_reason(self) -> str:
        return "interrupted" if self.plan.mode == "interrupted" else "aborted"

    # --- decisions --------------------------------------------------------------------------

    def _apply(self, actions: list[sem.Action]) -> None:
        for action in actions:
            if isinstance(action, sem.Start):
                self.ready.push(action.step_id, action.urgent)
            elif isinstance(action, sem.Skip):
                detail = action.detail
                condition = self.steps[action.step_id].condition
                if action.reason == "condition" and condition is not None:
                    detail = f"`{condition['source']}` is false"  # as `planc simulate` says it
                self._emit(
                    "step_skipped", action.step_id, None, reason=action.reason, detail=detail
                )
            elif isinstance(action, sem.UpstreamFailed):
                self._emit(
                    "step_upstream_failed", action.step_id, None, reason=action.reason,
                    detail=action.detail,
                )  # fmt: skip
            elif isinstance(action, sem.Cancel):
                self._cancel_unstarted_or_waiting(action)
            elif isinstance(action, sem.Recovered):
                self._emit("step_recovered", action.step_id, fallback=action.fallback)

    def _cancel_unstarted_or_waiting(self, action: sem.Cancel) -> None:
        """A Cancel for a step that never started, or that is waiting for its retry delay."""
        step_id = action.step_id
        attempt = self.records[step_id].attempts or None
        self._emit("step_cancelled", step_id, attempt, reason=action.reason, duration_sec=None)

    def _react_to_interrupts(self) -> None:
        count = self.interrupts.count
        if count == self.handled_interrupts:
            return
        self.handled_interrupts = count
        self._record_ui_requests()
        if count == 1:
            self._apply(self.plan.stop_ordinary("interrupted"))
            self._cancel_waiting_retries(cleanup_too=False)
            for step_id in list(self.plan.status):
                if self.plan.status[step_id] != sem.RUNNING or self.plan.steps[step_id].is_cleanup:
                    continue
                if step_id in self.procs:
                    self.procs.cancel(step_id)
                else:  # a retry whose delay is over, queued until a slot frees up
                    self._cancel_unstarted_retry(step_id)
        else:
            self.procs.kill_all()
            self._cancel_waiting_retries(cleanup_too=True)
            while self.procs.running:
                self._commit()
                for finished in self.procs.wait(None):
                    self._attempt_finished(finished)
            self._apply(self.plan.kill_everything())

    def _record_ui_requests(self) -> None:
        """`planrun ui` left who asked for this interrupt (planrun.uiactions) before sending it."""
        from planrun.uiactions import take_requests

        for action in take_requests(Path(self._log_dir).parent):
            self._emit("ui_action", None, None, **action)

    def _cancel_waiting_retries(self, cleanup_too: bool) -> None:
        keep: list[tuple[float, int, str]] = []
        for timer in self.retry_timers:
            step_id = timer[2]
            if cleanup_too or not self.plan.steps[step_id].is_cleanup:
                self._cancel_unstarted_retry(step_id)
            else:
                keep.append(timer)
        heapq.heapify(keep)
        self.retry_timers = keep

    def _cancel_unstarted_retry(self, step_id: str) -> None:
        self._emit("step_cancelled", step_id, reason="interrupted", duration_sec=None)
        self._apply(self.plan.finished(step_id, sem.CANCELLED))

    # --- conditions, resume, end ------------------------------------------------------------

    def _condition_holds(self, step_id: str) -> bool:
        condition = self.steps[step_id].condition
        if condition is None:
            return True
        from planrun.conditions import evaluate

        env = ChainMap(dict(self.steps[step_id].env), self.environ)
        return evaluate(condition["ast"], self._facts, env, self.options.params)

    def _restore(self, previous: dict[str, StepRecord], ir_changed: bool) -> None:
        known = {sid: r for sid, r in previous.items() if sid in self.records}
        kept = kept_on_resume(known, self.ir.steps)
        legacy: set[str] = set()  # successes recorded before fingerprints: kept as before
        for step_id, record in previous.items():
            if step_id not in self.records:  # a fan-out's instance: made again if needed
                self.fanout.previous[step_id] = record
                continue
            # In place: the run context reads each record's outputs dict.
            current = self.records[step_id]
            current.attempts, current.exit_code = record.attempts, record.exit_code
            current.duration_sec, current.status = record.duration_sec, record.status
            current.outputs.update(record.outputs)
            self.unavailable[step_id] = set(record.secret_outputs)
            if record.fingerprint is not None:
                # What its dependents saw of it, until it is decided again: a step an interrupt
                # cancels before it starts must not look changed to them.
                self.reuse.fingerprints[step_id] = record.fingerprint
            if step_id not in kept:
                self.reuse.why_no_candidate[step_id] = (
                    f"no success in this run yet ({record.status})"
                )
                continue
            if record.fingerprint is not None:
                parts = record.fingerprint_parts
                self.reuse.offer(step_id, Candidate("kept", record.fingerprint, parts, self.run_id))
            elif not ir_changed:
                legacy.add(step_id)
        self.plan.restore(legacy)
        self.plan.exclude(left_out_on_resume(known))

    def _select(self, selection: Selection) -> None:
        if selection.needed:
            records = self.store.fingerprints(self.ir.plan_id)
            self.reuse.offer_latest(records, set(selection.needed), "reused")
        for step_id in sorted(selection.excluded, key=lambda s: self.steps[s].index):
            self._emit("step_skipped", step_id, reason="not_selected", detail="not selected")
        self.plan.exclude(set(selection.excluded))

    def _offer_up_to_date(self) -> None:
        if self.options.force_all:
            return
        steps = self.reuse.up_to_date_steps(self.options.force)
        steps -= set(self.reuse.candidates)  # a resume's own successes come first
        if steps:
            self.reuse.offer_latest(self.store.fingerprints(self.ir.plan_id), steps, "up_to_date")

    def _finish(self) -> int:
        self.reuse.save()
        outcome = self.plan.outcome()
        exit_code = _OUTCOME_EXIT[outcome]
        duration = round(time.monotonic() - self.started_at, 6)
        self._emit(
            "run_finished", None, None, status=outcome, exit_code=exit_code, duration_sec=duration
        )
        self._commit()
        self.store.write_summary(self.run_id)
        return exit_code

    def _emit(
        self, type_: str, step_id: str | None, attempt: int | None = None, **payload: Any
    ) -> None:
        if self.masker is not None:  # the one place every reason, message and value passes
            payload = self.masker.payload(payload)
        event = self.store.emit(self.run_id, type_, step_id, attempt, **payload)
        self._unobserved.append(event)

    def _commit(self) -> None:
        """Commit the events recorded since the last call, then show them to the observer
        (never an event that is not on disk yet)."""
        self.store.flush()
        events, self._unobserved = self._unobserved, []
        if self.observer is not None:
            for event in events:
                self.observer(event)


def _invariants_by_step(
    invariants: Sequence[Mapping[str, Any]] | None,
) -> dict[str, list[Mapping[str, Any]]]:
    """step -> its invariants; empty (and nothing imported) for a plan without any."""
    if not invariants:
        return {}
    from planrun.invariants import by_step

    return by_step(invariants)


def secret_names(ir: IR) -> frozenset[str]:
    """Every secret of the plan, declared at plan level or on any step."""
    return frozenset(ir.model.secrets).union(*(s.secrets for s in ir.steps))


def run_masker(
    ir: IR, secrets: frozenset[str], environ: Mapping[str, str], params: Mapping[str, ParamValue]
) -> Masker | None:
    """The run's masker (planrun.secrecy), None when there is nothing to mask: a plan without
    secrets or secret params does not even import the masking code."""
    if not secrets and not ir.model.secret_params:
        return None
    from planrun.secrecy import run_masker as build

    return build(sorted(secrets), ir.model.params, environ, params)


class _Facts(Mapping[str, "StepFacts"]):
    """What conditions read about the steps, made on access: a condition reads a few steps, and
    building facts for every step at each evaluation was quadratic in the plan size."""

    def __init__(self, status: Mapping[str, str], records: Mapping[str, StepRecord]) -> None:
        self._status = status
        self._records = records

    def __getitem__(self, step_id: str) -> StepFacts:
        from planrun.conditions import StepFacts

        status = self._status[step_id]
        record = self._records[step_id]
        return StepFacts(
            status=status,
            exit_code=record.exit_code,
            attempts=record.attempts,
            duration_sec=record.duration_sec,
            outputs=record.outputs,
        )

    def __iter__(self) -> Iterator[str]:
        return iter(self._status)

    def __len__(self) -> int:
        return len(self._status)


def kept_on_resume(previous: Mapping[str, StepRecord], steps: Iterable[IRStep]) -> set[str]:
    """The steps a resumed run does not run again: those that succeeded, except fallbacks (a
    fallback answers a failure of its own session, so it runs again if that failure recurs),
    and those an --only/--from run reused from an earlier run (its selection holds)."""
    steps = list(steps)
    fallbacks = {step.id for step in steps if step.is_fallback}
    reused = _skipped_as(previous, "reused")
    succeeded = {sid for sid, record in previous.items() if record.status == sem.SUCCESS}
    kept = (succeeded | reused) - fallbacks
    # Work between a setup and its teardown runs again only inside the scope: setup first,
    # teardown after, once each (semantics.md §5b).
    for teardown, (setup, between) in sem.setup_scopes(steps).items():
        if not between <= kept or setup not in kept:
            kept -= {setup, teardown}
    return kept


def left_out_on_resume(previous: Mapping[str, StepRecord]) -> set[str]:
    """The steps an --only/--from run left out of its selection: its resume leaves them out."""
    return _skipped_as(previous, "not_selected")


def _skipped_as(previous: Mapping[str, StepRecord], reason: str) -> set[str]:
    return {
        sid
        for sid, record in previous.items()
        if record.status == sem.SKIPPED and record.reason == reason
    }


def kill_leftovers(
    attempts: list[AttemptInfo], grace: float, tags: dict[tuple[str, int], str]
) -> int:
    """Kill what a dead planrun left running: the recorded process group and pid (if it is still
    the same process: same start time), and daemons carrying the attempt's tag."""
    killed = 0
    for attempt in attempts:
        if attempt.pgid is not None and attempt.pid is not None:
            start = attempt.proc_start_time or 0.0
            tag = tags.get((attempt.step_id, attempt.attempt))
            killed += kill_leftover(attempt.pgid, attempt.pid, start, grace, tag)
    return killed
