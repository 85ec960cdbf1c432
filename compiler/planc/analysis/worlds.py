"""The pieces of the invariant proof's world search (planc.analysis.prover): what a world
holds, how the trigger rules read an outcome, and the small pure helpers the search and its
counterexamples use."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from planrun.core import trigger_rules as tr
from planrun.core.ir_types import IRStep, OnFailure
from planrun.core.status import FAILURES

# An outcome: (status, tolerated, cancel reason or "", the mode its dependents are decided in
# at the earliest, the mode it started in or -1 when it never started).
Outcome = tuple[str, bool, str, int, int]
# A world: sorted (step, outcome) pairs of the live steps, sorted (fallback, result) pairs,
# need_abort (a step was decided in an aborting mode nobody caused yet), have_abort.
World = tuple[tuple[tuple[str, Outcome], ...], tuple[tuple[str, str], ...], bool, bool]
Path = tuple[int, tuple[str, ...]]  # the cost of the choices that reach a world, and them
# One outcome of a step in a world: outcome, the fallback result it fixes, the choices, their
# cost, whether it assumes an abort caused elsewhere, whether it causes one.
Choice = tuple[Outcome, tuple[str, str] | None, tuple[str, ...], int, bool, bool]


def guard_text(invariant: Mapping[str, Any]) -> str:
    source = str(invariant["source"])
    if invariant["kind"] == "never":
        return "when " + source.split(" when ", 1)[1].strip()
    keyword = " requires " if invariant["kind"] == "requires" else " after "
    return "without " + source.split(keyword, 1)[1].strip()


def event_cancel(sid: str, reason: str) -> str:
    if reason == "aborted":
        return f"an abort (a critical failure elsewhere) cancels {sid} before it starts"
    return f"an interrupt cancels {sid} before it starts"


def is_cleanup(step: IRStep) -> bool:
    return step.teardown_for is not None or step.trigger_rule.is_cleanup


def aborts_plan(step: IRStep) -> bool:
    return bool(step.on_failure is OnFailure.ABORT and step.critical)


def fires_early(step: IRStep) -> bool:
    return bool(
        step.trigger_rule.fires_early
        and step.condition is None
        and step.teardown_for is None
        and step.depends_on
    )


KIND_MARK = "kind:"  # an outcome kept only as its kind


def kind_of(outcome: Outcome) -> str:
    """How the trigger rules read an outcome (planrun.core.semantics.PlanState.kind)."""
    status, tolerated, reason, _, _ = outcome
    if status.startswith(KIND_MARK):
        return status[len(KIND_MARK) :]
    if status == "success":
        return tr.OK
    if status in FAILURES:
        return tr.TOLERATED if tolerated else tr.FAILED
    if status == "skipped":
        return tr.SKIPPED
    if status == "cancelled" and reason == "interrupted":
        return tr.INTERRUPTED
    return tr.FAILED


def project(worlds: dict[World, Path], dead: frozenset[str]) -> dict[World, Path]:
    out: dict[World, Path] = {}
    for (live, fallbacks, need, have), path in worlds.items():
        world: World = (tuple(p for p in live if p[0] not in dead), fallbacks, need, have)
        known = out.get(world)
        if known is None or path[0] < known[0]:
            out[world] = path
    return out


def cost_of(trace: tuple[str, ...]) -> int:
    """A counterexample's size: each choice counts, an abort or an interrupt (a matter of
    timing, the least telling cause) more than a step's own outcome."""
    return sum(3 if event.startswith(("an interrupt", "an abort")) else 1 for event in trace)


def product(choices: list[list[str]]) -> Iterator[tuple[str, ...]]:
    if not choices:
        yield ()
        return
    for head in choices[0]:
        for tail in product(choices[1:]):
            yield (head, *tail)


def steps_of_guard(guard: dict[str, Any]) -> list[str]:
    if guard["kind"] == "status":
        return [str(guard["step"])]
    if guard["kind"] == "not":
        return steps_of_guard(guard["operand"])
    return [s for operand in guard["operands"] for s in steps_of_guard(operand)]


def condition_reads(ast: Any) -> tuple[str, ...]:
    from planrun.core.conditions import StepRef, walk

    return tuple(dict.fromkeys(n.step for n in walk(ast) if isinstance(n, StepRef)))
