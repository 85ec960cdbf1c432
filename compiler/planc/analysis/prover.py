"""The proof of the plan's invariants (docs/invariants.md, "The proof"); the pass that reports
it is planc.analysis.invariants.

For each invariant `A requires G` (`after` is the same; `never A when G` is `A requires not G`)
the question is: is there a run in which A starts while G is false over the statuses recorded
at that moment? A run is fixed by choices: each started step succeeds, fails or (with a limit)
times out; a shared fallback's result; a condition that the statuses do not decide; and when
each step is decided relative to an abort or a first interrupt (the plan *mode* then: normal,
aborting, interrupted). Everything else follows from docs/semantics.md.

The search is symbolic over the DAG: the steps that can matter (A, the steps G reads, their
ancestors and the fallbacks those name) are visited once in topological order, carrying a set
of *worlds*: the outcomes of the steps still read later (projected out after their last
reader), the shared fallback results, and two flags. Worlds that agree on what is still read
are one world (the one reached with the fewest choices, which gives the smallest
counterexample). The cost is steps × worlds; worlds are bounded by the outcomes of the steps
alive together (the DAG's cut width over the relevant steps), not by 2^steps.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from planc.analysis.worlds import (
    KIND_MARK,
    Choice,
    Outcome,
    Path,
    World,
    aborts_plan,
    condition_reads,
    cost_of,
    event_cancel,
    fires_early,
    guard_text,
    is_cleanup,
    kind_of,
    product,
    project,
    steps_of_guard,
)
from planc.condition_verdict import constant_value
from planrun.core import trigger_rules as tr
from planrun.core.byvalue import ByValue
from planrun.core.conditions import from_json
from planrun.core.invariants import allows
from planrun.core.ir_types import IRStep, OnFailure
from planrun.core.status import FAILURES
from planrun.core.trigger_rules import TriggerRule

# Past this many worlds at one step the relevant steps are too intertwined to decide exactly in
# the time `planc check` has: the invariant is reported undecided (a warning) and left to
# planrun's check at run time.
MAX_WORLDS = 4000
NORMAL, ABORTING, INTERRUPTED = 0, 1, 2  # the plan's mode when a step is decided
PENDING = "pending"  # not finished when the guarded step starts


@dataclass(frozen=True, eq=False, repr=False)
class Undecided(ByValue):
    at: str  # the step where the worlds outgrew MAX_WORLDS
    worlds: int


@dataclass(frozen=True, eq=False, repr=False)
class Counterexample(ByValue):
    invariant: Mapping[str, Any]
    trace: tuple[str, ...]  # the choices, in the order the steps are decided
    through: str | None  # the step whose policy or rule lets the failure through
    through_key: str | None  # its plan key to point at


class Prover:
    """The steps of one IR, prepared once for every invariant of the plan."""

    def __init__(
        self, steps: Sequence[IRStep | Mapping[str, Any]], interrupts: bool = True
    ) -> None:
        """`interrupts=False` leaves first interrupts out (the agreement test's model, whose
        reference has none); `planc check` always considers them. Steps given as IR JSON are
        read with `IRStep.from_json`."""
        self.steps = [s if isinstance(s, IRStep) else IRStep.from_json(s) for s in steps]
        steps = self.steps
        self.interrupts = interrupts
        self.by_id = {s.id: s for s in steps}
        self.index = {s.id: i for i, s in enumerate(steps)}
        self.can_abort = any(aborts_plan(s) for s in steps)
        self.conditions = {
            s.id: from_json(s.condition["ast"]) for s in steps if s.condition is not None
        }
        self.reads = {sid: condition_reads(ast) for sid, ast in self.conditions.items()}
        self.detailed: set[str] = set()
        self.memo: dict[tuple[Any, ...], list[Choice]] = {}

    # --- the search ------------------------------------------------------------------------

    def counterexample(self, invariant: Mapping[str, Any]) -> Counterexample | Undecided | None:
        subject = str(invariant["step"])
        if subject not in self.by_id or self.by_id[subject].is_fallback:
            return None  # a fallback starts as a recovery: planrun's check still applies
        guard_steps = sorted(set(steps_of_guard(invariant["guard"])) & set(self.by_id))
        relevant = self._relevant([subject, *guard_steps])
        order = [s.id for s in self.steps if s.id in relevant and not s.is_fallback]
        keep = {subject, *guard_steps}
        # Steps read only by trigger rules are kept as their kind: fewer distinct worlds.
        self.detailed = keep | {r for sid in order for r in self.reads.get(sid, ())}
        self.detailed |= {str(s.teardown_for) for s in self.steps if s.teardown_for}
        if fires_early(self.by_id[subject]):  # which dependency fired it matters (_violation)
            self.detailed |= set(self.by_id[subject].depends_on)
            keep |= set(self.by_id[subject].depends_on)
        last = self._last_readers(order, keep)
        outside_abort = any(
            aborts_plan(s) for s in self.steps if s.id not in relevant and not s.is_fallback
        )
        worlds: dict[World, Path] = {((), (), False, False): (0, ())}
        for position, sid in enumerate(order):
            worlds = self._visit(sid, worlds)
            if len(worlds) > MAX_WORLDS:
                return Undecided(sid, len(worlds))
            dead = last.get(position, ())
            if dead:
                worlds = project(worlds, frozenset(dead))
        must = self._must(subject)
        below = self._descendants(subject)
        best: tuple[int, tuple[str, ...], tuple[str, ...]] | None = None
        for (live, fallbacks, need_abort, have_abort), (cost, trace) in worlds.items():
            if need_abort and not (have_abort or outside_abort):
                continue
            outcomes = dict(live)
            if outcomes[subject][4] < 0:
                continue  # the guarded step never started in this world
            late = self._violation(invariant, guard_steps, outcomes, dict(fallbacks), must, below)
            if late is None:
                continue
            # A step still running is a matter of timing too: it weighs as an interrupt.
            if best is None or cost + 3 * len(late) < best[0]:
                best = (cost + 3 * len(late), trace, late)
        if best is None:
            return None
        return self._explain(invariant, subject, best[1], best[2])

    def _violation(
        self,
        invariant: Mapping[str, Any],
        guard_steps: list[str],
        outcomes: dict[str, Outcome],
        fallbacks: dict[str, str],
        must: frozenset[str],
        below: frozenset[str],
    ) -> tuple[str, ...] | None:
        """The steps that must still be unfinished when the subject starts for the guard to
        be false (empty: false as finished), or None when it holds at every such moment."""
        choices: list[list[str]] = []
        started_in = outcomes[invariant["step"]][4]
        for sid in guard_steps:
            final = self._final_status(sid, outcomes, fallbacks)
            if sid in below or sid == invariant["step"]:
                choices.append([PENDING])
            elif sid in must:
                choices.append([final])
            elif sid in outcomes and outcomes[sid][3] > started_in:
                # Finished before the subject started, it would have stopped the plan first.
                choices.append([PENDING])
            else:
                choices.append([final, PENDING])
        subject = self.by_id[invariant["step"]]
        firing: list[str] = []
        if fires_early(subject):  # it started when one dependency of a kind that meets it settled
            early = subject.trigger_rule.spec.early
            firing = [
                d for d in subject.depends_on
                if kind_of(outcomes[d]) in early and outcomes[d][3] <= started_in
            ]  # fmt: skip
        best: tuple[str, ...] | None = None
        for combo in product(choices):
            status = {sid: value for sid, value in zip(guard_steps, combo, strict=True)}
            if firing and all(status.get(d) == PENDING for d in firing):
                continue  # the one that fired it has finished
            if allows(invariant, status):
                continue
            late = tuple(s for s, v in status.items() if v == PENDING)
            if best is None or len(late) < len(best):
                best = late
        return best

    def _final_status(self, sid: str, outcomes: dict[str, Outcome], fb: dict[str, str]) -> str:
        if self.by_id[sid].is_fallback:
            return fb.get(sid, "skipped")
        return outcomes[sid][0]

    def _visit(self, sid: str, worlds: dict[World, Path]) -> dict[World, Path]:
        step = self.by_id[sid]
        reads = self._inputs(step)
        fb_name = step.fallback if step.on_failure is OnFailure.FALLBACK_STEP else None
        detailed = sid in self.detailed
        out: dict[World, Path] = {}
        for (live, fallbacks, need_abort, have_abort), (cost, trace) in worlds.items():
            outcomes = dict(live)
            fb_now = dict(fallbacks).get(fb_name) if fb_name is not None else None
            # Shared by every invariant: a step's choices depend only on what it reads.
            key = (sid, detailed, tuple(outcomes[r] for r in reads), fb_now)
            choices = self.memo.get(key)
            if choices is None:
                choices = self.memo[key] = self._choices_of(step, outcomes, fb_name, fb_now)
            for outcome, fb_set, events, extra, needs, aborts in choices:
                # Every world visits the steps in the same order and drops the same ones, so
                # appending keeps one canonical order without sorting.
                new_fallbacks = fallbacks
                if fb_set is not None and fb_now is None:
                    new_fallbacks = tuple(sorted((*fallbacks, fb_set)))
                world: World = (
                    (*live, (sid, outcome)),
                    new_fallbacks,
                    need_abort or needs,
                    have_abort or aborts,
                )
                new_cost = cost + extra
                known = out.get(world)
                if known is None or new_cost < known[0]:
                    out[world] = (new_cost, trace + events)
        return out

    def _inputs(self, step: IRStep) -> tuple[str, ...]:
        """What `_choices` reads of the world for this step."""
        sid = step.id
        reads = [*step.depends_on, *self.reads.get(sid, ())]
        if step.teardown_for:
            reads.append(str(step.teardown_for))
        return tuple(dict.fromkeys(reads))

    def _choices_of(
        self, step: IRStep, outcomes: dict[str, Outcome], fb_name: str | None,
        fb_now: str | None,
    ) -> list[Choice]:  # fmt: skip
        sid = step.id
        given = {} if fb_name is None or fb_now is None else {fb_name: fb_now}
        found: list[Choice] = []
        for outcome, fb, events, needs, aborts in self._choices(step, outcomes, given):
            if sid not in self.detailed:
                outcome = (KIND_MARK + kind_of(outcome), False, "", outcome[3], -1)
            fb_set = (fb_name, fb[fb_name]) if fb_name is not None and fb_name in fb else None
            found.append((outcome, fb_set, events, cost_of(events), needs, aborts))
        return found

    def _choices(
        self, step: IRStep, outcomes: dict[str, Outcome], fallbacks: dict[str, str]
    ) -> Iterator[tuple[Outcome, dict[str, str], tuple[str, ...], bool, bool]]:
        """Every outcome `step` can have given its dependencies' outcomes in one world: the
        outcome, the fallback results after it, the choices made (for the trace), whether it
        assumes an abort caused elsewhere, whether it causes one."""
        sid = step.id
        rule = step.trigger_rule
        cleanup = step.is_fallback or step.teardown_for is not None
        cleanup = cleanup or rule.is_cleanup
        floor = self._floor(step, outcomes)
        modes = [floor] if cleanup else [m for m in (NORMAL, ABORTING, INTERRUPTED) if m >= floor]
        if not self.interrupts:
            modes = [m for m in modes if m != INTERRUPTED]
        for mode in modes:
            if mode == ABORTING and floor < ABORTING and not self.can_abort:
                continue
            needs = mode == ABORTING and floor < ABORTING
            if not cleanup and mode != NORMAL:
                reason = "aborted" if mode == ABORTING else "interrupted"
                event = () if floor == mode else (event_cancel(sid, reason),)
                yield ("cancelled", False, reason, mode, -1), fallbacks, event, needs, False
                continue
            verdict = self._verdict(step, outcomes)
            if verdict != "run":
                yield (verdict, False, "", mode, -1), fallbacks, (), needs, False
                continue
            condition = self._condition(sid, outcomes)
            if condition is not True:
                event = (f"the condition of {sid} is false",) if condition is None else ()
                yield ("skipped", False, "", mode, -1), fallbacks, event, needs, False
                if condition is False:
                    continue
            yield from self._ran(step, mode, cleanup, fallbacks, needs)

    def _ran(
        self, step: IRStep, mode: int, cleanup: bool, fallbacks: dict[str, str], needs: bool
    ) -> Iterator[tuple[Outcome, dict[str, str], tuple[str, ...], bool, bool]]:
        sid = step.id
        yield ("success", False, "", mode, mode), fallbacks, (), needs, False
        if not cleanup and self.interrupts:  # a first interrupt terminates a running step
            event = (f"an interrupt stops {sid} while it runs",)
            yield (
                ("cancelled", False, "interrupted", INTERRUPTED, mode),
                fallbacks,
                event,
                needs,
                False,
            )
        limited = step.timeout_sec is not None or step.heartbeat_timeout_sec is not None
        for status in ("failed", "timed_out") if limited else ("failed",):
            verb = "fails" if status == "failed" else "times out"
            policy = step.on_failure
            if policy is OnFailure.FALLBACK_STEP and step.fallback is not None:
                yield from self._recovery(step, status, verb, mode, fallbacks, needs)
                continue
            tolerated = policy is OnFailure.CONTINUE
            aborts = aborts_plan(step)
            after = max(mode, ABORTING) if aborts else mode
            told = f"{sid} {verb}"
            if tolerated:
                told += " -> tolerated by `on_failure: continue`"
            elif aborts and mode == NORMAL:
                told += " -> the plan aborts"
            outcome: Outcome = (status, tolerated, "", after, mode)
            yield outcome, fallbacks, (told,), needs, aborts and mode == NORMAL

    def _recovery(
        self, step: IRStep, status: str, verb: str, mode: int, fallbacks: dict[str, str],
        needs: bool,
    ) -> Iterator[tuple[Outcome, dict[str, str], tuple[str, ...], bool, bool]]:  # fmt: skip
        """A failure with `fallback_step`: the fallback runs once per run and every step that
        names it shares its result."""
        sid, fb = step.id, str(step.fallback)
        fb_step = self.by_id[fb]
        shared = fallbacks.get(fb)
        results = [shared] if shared is not None else self._fallback_results(fb_step)
        for result in results:
            recovered = result == "success"
            aborts = result in FAILURES and aborts_plan(fb_step)
            after = max(mode, ABORTING) if aborts else mode
            if recovered:
                event = f"{sid} {verb} -> recovered by fallback `{fb}`"
            else:
                shown = {"skipped": "is skipped by its condition"}.get(result, result)
                event = f"{sid} {verb} -> fallback `{fb}` {shown}, not recovered"
            outcome = (status, recovered, "", after, mode)
            yield outcome, {**fallbacks, fb: result}, (event,), needs, aborts and mode == NORMAL

    def _fallback_results(self, fb: IRStep) -> list[str]:
        limited = fb.timeout_sec is not None or fb.heartbeat_timeout_sec is not None
        results = ["success", "failed", *(["timed_out"] if limited else [])]
        return results + (["skipped"] if fb.condition is not None else [])

    def _floor(self, step: IRStep, outcomes: dict[str, Outcome]) -> int:
        """The earliest mode the step can be decided in: after every dependency settled, or for
        a rule that fires early, after the first one that meets it."""
        deps = step.depends_on
        if not deps:
            return NORMAL
        floors = [outcomes[d][3] for d in deps]
        if fires_early(step):
            early = step.trigger_rule.spec.early
            firing = [outcomes[d][3] for d in deps if kind_of(outcomes[d]) in early]
            if firing:
                return min(firing)
        return max(floors)

    def _verdict(self, step: IRStep, outcomes: dict[str, Outcome]) -> str:
        setup = step.teardown_for
        if setup is not None:
            if outcomes[setup][0] == "success":
                return "run"
            return "upstream_failed" if kind_of(outcomes[setup]) == tr.FAILED else "skipped"
        kinds = frozenset(kind_of(outcomes[d]) for d in step.depends_on)
        return tr.verdict(step.trigger_rule, kinds)

    def _condition(self, sid: str, outcomes: dict[str, Outcome]) -> bool | None:
        ast = self.conditions.get(sid)
        if ast is None:
            return True
        known = {r: frozenset({outcomes[r][0]}) for r in self.reads[sid] if r in outcomes}
        return constant_value(ast, known)

    # --- the graph -------------------------------------------------------------------------

    def _relevant(self, start: list[str]) -> set[str]:
        """The steps whose outcomes can change whether the subject starts or what the guard
        reads: the named steps and their ancestors, and the fallbacks (and their chains)."""
        seen: set[str] = set()
        stack = list(start)
        while stack:
            sid = stack.pop()
            if sid in seen or sid not in self.by_id:
                continue
            seen.add(sid)
            step = self.by_id[sid]
            stack.extend(step.depends_on)
            if step.on_failure is OnFailure.FALLBACK_STEP and step.fallback is not None:
                stack.append(step.fallback)
        return seen

    def _last_readers(self, order: list[str], keep: set[str]) -> dict[int, list[str]]:
        """position -> the steps whose outcome nothing after that position reads."""
        position = {sid: i for i, sid in enumerate(order)}
        last: dict[str, int] = {sid: position[sid] for sid in order}
        for sid in order:
            step = self.by_id[sid]
            for read in [*step.depends_on, *self.reads.get(sid, ())]:
                if read in last:
                    last[read] = max(last[read], position[sid])
        dead: dict[int, list[str]] = {}
        for sid, at in last.items():
            if sid not in keep:
                dead.setdefault(at, []).append(sid)
        return dead

    def _must(self, sid: str) -> frozenset[str]:
        """Steps certainly finished when `sid` starts: the dependencies it waits for, and theirs.
        A rule that fires early waits for none; a cleanup step does not inherit what an
        ordinary dependency waits for (an abort or interrupt cancels that one while pending)."""
        stoppable = self.interrupts or self.can_abort  # else nothing cancels a pending step
        found: set[str] = set()
        expanded: set[str] = set()
        stack = [sid]
        while stack:
            current = stack.pop()
            if current in expanded:
                continue
            expanded.add(current)
            step = self.by_id[current]
            if fires_early(step):
                continue
            cleanup = is_cleanup(step)
            for dep in step.depends_on:
                found.add(dep)
                if not cleanup or is_cleanup(self.by_id[dep]) or not stoppable:
                    stack.append(dep)
        return frozenset(found)

    def _descendants(self, sid: str) -> frozenset[str]:
        seen: set[str] = set()
        stack = list(self.by_id[sid].dependents)
        while stack:
            current = stack.pop()
            if current not in seen:
                seen.add(current)
                stack.extend(self.by_id[current].dependents)
        return frozenset(seen)

    # --- the counterexample ----------------------------------------------------------------

    def _explain(
        self,
        invariant: Mapping[str, Any],
        subject: str,
        trace: tuple[str, ...],
        late: tuple[str, ...],
    ) -> Counterexample:
        step = self.by_id[subject]
        rule = step.trigger_rule
        setup = step.teardown_for
        steps = list(trace)
        for sid in late:
            steps.append(f"{sid} has not finished when {subject} starts ({subject} does not wait"
                         f" for it)")  # fmt: skip
        if setup is not None:
            steps.append(f"{subject} is the teardown of {setup}, which succeeded")
        elif step.depends_on:
            steps.append(f"{subject}'s rule {rule} is met")
        what = guard_text(invariant)
        steps.append(f"{subject} runs {what}")
        through, key = self._through(subject, trace, late)
        return Counterexample(invariant, tuple(steps), through, key)

    def _through(
        self, subject: str, trace: tuple[str, ...], late: tuple[str, ...]
    ) -> tuple[str | None, str | None]:
        """The step to blame: a tolerated failure's policy, else the subject's dependencies or
        trigger rule."""
        for event in trace:
            sid = event.split(" ", 1)[0]
            if "tolerated by" in event or "recovered by" in event:
                return sid, "on_failure"
        step = self.by_id[subject]
        if late:
            return subject, "depends_on"
        return (
            subject,
            "trigger_rule" if step.trigger_rule is not TriggerRule.ALL_SUCCESS else "depends_on",
        )
