"""What a condition can evaluate to, knowing only which statuses its step's dependencies can end
with: always true, always false, or it depends.

Used by the `condition-never-true` / `condition-always-true` rule (`planc.rules.conditions`)
and by the reachability analysis of `planc check` (`planc.analysis.reachability`).
"""

from __future__ import annotations

from functools import cache
from typing import TypeGuard

from planc.model import SourceStep
from planrun.core import trigger_rules as tr
from planrun.core.conditions import (
    MEMBERSHIP_OPS,
    STATUSES,
    And,
    Compare,
    Expr,
    ListLit,
    Literal,
    Not,
    Or,
    StepRef,
)

ALL_STATUSES = frozenset(STATUSES)
FAILED = frozenset({"failed", "timed_out"})

# Step id -> the statuses it can have when the step whose condition is judged gets to run.
Outcomes = dict[str, frozenset[str]]


def possible_statuses(rule: str, dep: SourceStep, dep_count: int) -> frozenset[str]:
    """The statuses a direct dependency can have when a step with `rule` gets to run: those
    whose kind (planrun.core.trigger_rules) meets the rule alongside some kinds of the other
    dependencies (none when it is the only one)."""
    return _possible_statuses(rule, _tolerance(dep.get("on_failure")), dep_count > 1)


@cache  # a few dozen combinations, asked for every dependency of every condition
def _possible_statuses(rule: str, tolerance: tuple[str, ...], several: bool) -> frozenset[str]:
    others = KIND_SETS if several else (frozenset(),)
    # A cancelled dependency means an abort or an interrupt, which cancels ordinary steps too.
    cleanup = tr.RULES[rule].cleanup
    return frozenset(
        status
        for status in STATUSES
        if (cleanup or status != "cancelled")
        and any(
            tr.RULES[rule].met(other | {kind})
            for kind in _kinds(status, tolerance)
            for other in others
        )
    )


# Every combination of kinds the other dependencies can have.
KIND_SETS = tuple(
    frozenset(k for i, k in enumerate(tr.KINDS) if mask >> i & 1)
    for mask in range(1 << len(tr.KINDS))
)


def _tolerance(on_failure: object) -> tuple[str, ...]:
    """The kinds a failure of a step with this policy can be read as."""
    if on_failure == "continue":
        return (tr.TOLERATED,)
    if on_failure == "fallback_step":
        return (tr.TOLERATED, tr.FAILED)
    return (tr.FAILED,)


def _kinds(status: str, tolerance: tuple[str, ...]) -> tuple[str, ...]:
    if status == "success":
        return (tr.OK,)
    if status in FAILED:
        return tolerance
    if status == "skipped":
        return (tr.SKIPPED,)
    if status == "cancelled":
        return (tr.FAILED, tr.INTERRUPTED)
    return (tr.FAILED,)  # upstream_failed


def constant_value(node: Expr, outcomes: Outcomes) -> bool | None:
    """True / False when the condition has that value for every possible outcome, else None.

    Only `status` tests on direct dependencies are known; everything else (including a literal
    `true`/`false`, written on purpose) is unknown. Recursion is bounded by the nesting limit.
    """
    if isinstance(node, Or | And):
        values = [constant_value(operand, outcomes) for operand in node.operands]
        decisive = isinstance(node, Or)  # the operand value that decides the whole
        if decisive in values:
            return decisive
        return (not decisive) if all(v is not None for v in values) else None
    if isinstance(node, Not):
        value = constant_value(node.operand, outcomes)
        return None if value is None else not value
    if isinstance(node, Compare):
        return _status_test(node, outcomes)
    return None


def _status_test(node: Compare, outcomes: Outcomes) -> bool | None:
    if node.op in MEMBERSHIP_OPS:
        if not is_status_of(node.left, outcomes) or not isinstance(node.right, ListLit):
            return None
        found = _contains(outcomes[node.left.step], {item.value for item in node.right.items})
        return found if node.op == "in" or found is None else not found
    if node.op not in ("==", "!="):
        return None
    for ref, other in ((node.left, node.right), (node.right, node.left)):
        if is_status_of(ref, outcomes) and isinstance(other, Literal):
            equal = _contains(outcomes[ref.step], {other.value})
            return equal if node.op == "==" or equal is None else not equal
    return None


def is_status_of(node: Expr, outcomes: Outcomes) -> TypeGuard[StepRef]:
    return isinstance(node, StepRef) and node.attr == "status" and node.step in outcomes


def _contains(statuses: frozenset[str], values: set[object]) -> bool | None:
    """Whether the dependency's status is among `values`: always, never, or it depends."""
    if statuses <= values:
        return True
    if not statuses & values:
        return False
    return None
