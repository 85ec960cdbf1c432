"""A real run: the one loop (`loop.Loop`) with every decision recorded as an event.

Decisions come from `semantics.PlanState`, attempts from a `launcher.Launcher` (local:
`process.ProcessSet`), records go to `store.RunStore`; this module turns what the loop decides
into events, launch specs, outputs and reuse decisions (ninja's Builder).
"""

from __future__ import annotations

import heapq
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from planrun import events as ev
from planrun.core import actions as act
from planrun.core import semantics as sem
from planrun.core.failure import output_tail
from planrun.core.ir import IR
from planrun.core.launcher import Finished, Launcher, SpawnError
from planrun.core.loop import Loop, StepRecord
from planrun.core.params import ParamValue
from planrun.events import Event
from planrun.fanout import FanOut
from planrun.groups import FAIL_FAST, GroupControl
from planrun.interrupts import Interrupts
from planrun.launch import AttemptFiles, LaunchError, RunContext, launch_spec
from planrun.outputs import OutputError, read_outputs
from planrun.process import ProcessSet
from planrun.reuse import Candidate, Decider, secret_outputs_of, stood_in_detail
from planrun.run_secrets import run_masker, secret_names
from planrun.safefs import create_private
from planrun.store import RunStore

if TYPE_CHECKING:  # imported where used: most runs have no selection
    from planrun.selection import Selection

EXIT_INTERRUPTED = sem.EXIT_CODES["cancelled"]


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


class Executor(Loop):
    """A run of `ir` recorded in `store` as `run_id`, its attempts on `options.launcher`."""

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
        # planrun's environment as the run starts: steps, `${{ env.X }}` and conditions read
        # this copy (os.environ decodes every name and value at each access).
        self.environ: dict[str, str] = dict(os.environ)
        super().__init__(
            dict(ir.steps_by_id),
            sem.rules_from_ir(ir.steps),
            options.launcher or ProcessSet(),
            options.max_concurrency or int(ir.globals.max_concurrency),
            self.environ,
            options.params,
            _invariants_by_step(ir.model.invariants),
        )
        self.groups = GroupControl(ir.model.groups or {})
        self.fanout = FanOut(self)
        self.interrupts = interrupts or Interrupts()
        self.interrupts.wake = self.procs.wakeup
        grace = options.kill_grace_sec
        self.kill_grace = float(ir.globals.kill_grace_sec if grace is None else grace)
        self.handled_interrupts = 0
        self._unobserved: list[Event] = []  # recorded, not committed yet: the observer waits
        self.started_at = time.monotonic()
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
                    from planrun.resume import restore  # only a resumed run

                    restore(self, previous, ir_changed)
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

    # --- the loop's hooks ------------------------------------------------------------------

    def _held(self, step_id: str) -> bool:
        return self.groups.held(step_id, self.procs.__contains__)

    def _start_step(self, step_id: str) -> None:
        if self.fanout.owns(step_id):
            self.fanout.start(step_id)
        elif self.records[step_id].tries:  # a retry: decided at its first attempt
            self._start_attempt(step_id)
        else:
            decision = self.reuse.decide(step_id)
            if decision.reuse is not None:
                self._stand_in(step_id, decision.reuse)
            else:
                self._start_attempt(step_id, decision.payload())

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
            argv = exc.argv if isinstance(exc, LaunchError) and exc.argv else ev.ABSENT
            self._emit(ev.StepStarted(pid=None, pgid=None, argv=argv, **decided), step_id, attempt)
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
            self._emit(ev.StepStarted(pid=None, pgid=None, **common), step_id, attempt)
            self._attempt_ended(step_id, sem.FAILED, exc.reason, {"exit_code": None})
            return
        self._emit(
            ev.StepStarted(
                pid=started.pid,
                pgid=started.pgid,
                proc_start_time=started.proc_start_time,
                tag=started.tag,
                **common,
            ),
            step_id,
            attempt,
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
            skipped = ev.StepSkipped(
                reason=candidate.kind,
                detail=stood_in_detail(candidate.run_id),
                fingerprint=candidate.fingerprint,
                from_run=candidate.run_id,
                **extra,
            )
            self._emit(skipped, step_id, None)
        self._apply(self.plan.finished(step_id, sem.SUCCESS))

    def _after_wait(self) -> None:
        """Where an attempt ran is recorded before how it ended."""
        for placed in self.procs.placements():
            attempt = self.records[placed.key].attempts
            placement = ev.StepPlaced(worker=placed.worker, host=placed.host, pid=placed.pid)
            self._emit(placement, placed.key, attempt)

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
                ev.StepSucceeded(exit_code=0, duration_sec=record.duration_sec, **extra), step_id
            )
            self._apply(self.plan.finished(step_id, sem.SUCCESS))
        elif finished.outcome == "cancelled":
            reason = FAIL_FAST if step_id in self.groups.cancelled else self._cancel_reason()
            self._emit(ev.StepCancelled(reason=reason, **details), step_id)
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

    def _retrying(
        self, step_id: str, delay: float, status: str, reason: str, details: dict[str, Any]
    ) -> None:
        retrying = ev.StepRetrying(
            delay_sec=delay, previous_status=status, reason=reason, **details
        )
        self._emit(retrying, step_id)

    def _failed(self, step_id: str, status: str, reason: str, details: dict[str, Any]) -> None:
        event = ev.StepTimedOut if status == sem.TIMED_OUT else ev.StepFailed
        self._emit(event(reason=reason, **details), step_id)

    def _after_failure(self, step_id: str) -> None:
        self._fail_fast(self.groups.to_cancel(step_id, self.steps[step_id].on_failure))

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
                self._emit(ev.StepCancelled(reason=FAIL_FAST, duration_sec=None), step_id)
                self._apply(self.plan.finished(step_id, sem.CANCELLED))
            else:
                self._emit(ev.StepCancelled(reason=FAIL_FAST, duration_sec=None), step_id, None)
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

    def _record(self, action: act.Action) -> None:
        if isinstance(action, act.Skip):
            detail = action.detail
            condition = self.steps[action.step_id].condition
            if action.reason == "condition" and condition is not None:
                detail = f"`{condition['source']}` is false"  # as `planc simulate` says it
            self._emit(ev.StepSkipped(reason=action.reason, detail=detail), action.step_id, None)
        elif isinstance(action, act.UpstreamFailed):
            upstream = ev.StepUpstreamFailed(reason=action.reason, detail=action.detail)
            self._emit(upstream, action.step_id, None)
        elif isinstance(action, act.Cancel):
            self._cancel_unstarted_or_waiting(action)
        elif isinstance(action, act.Recovered):
            self._emit(ev.StepRecovered(fallback=action.fallback), action.step_id)

    def _cancel_unstarted_or_waiting(self, action: act.Cancel) -> None:
        """A Cancel for a step that never started, or that is waiting for its retry delay."""
        step_id = action.step_id
        attempt = self.records[step_id].attempts or None
        self._emit(ev.StepCancelled(reason=action.reason, duration_sec=None), step_id, attempt)

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
            self._emit(ev.UiAction(**action), None, None)

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
        self._emit(ev.StepCancelled(reason="interrupted", duration_sec=None), step_id)
        self._apply(self.plan.finished(step_id, sem.CANCELLED))

    # --- resume, selection, end ------------------------------------------------------------

    def _select(self, selection: Selection) -> None:
        if selection.needed:
            records = self.store.fingerprints(self.ir.plan_id)
            self.reuse.offer_latest(records, set(selection.needed), "reused")
        for step_id in sorted(selection.excluded, key=lambda s: self.steps[s].index):
            self._emit(ev.StepSkipped(reason="not_selected", detail="not selected"), step_id)
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
        exit_code = sem.EXIT_CODES[outcome]
        duration = round(time.monotonic() - self.started_at, 6)
        self._emit(ev.RunFinished(status=outcome, exit_code=exit_code, duration_sec=duration), None)
        self._commit()
        self.store.write_summary(self.run_id)
        return exit_code

    def _emit(
        self, typed: ev.EventPayload, step_id: str | None, attempt: int | None = None
    ) -> None:
        payload = typed.payload()
        if self.masker is not None:  # the one place every reason, message and value passes
            payload = self.masker.payload(payload)
        event = self.store.emit(self.run_id, typed.TYPE, step_id, attempt, **payload)
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
    from planrun.core.invariants import by_step

    return by_step(invariants)
