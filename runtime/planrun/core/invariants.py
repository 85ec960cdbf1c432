"""Invariants at run time: may a step start, given what is recorded (docs/invariants.md).

The IR carries each invariant of the plan's `invariants:` list as a JSON AST (docs/ir.md); this
module evaluates it against the statuses the run has recorded so far. planrun's executor asks
before starting a step's first attempt; `planc simulate` replays the same check. The compiler's
proof (planc.analysis.invariants) reads `MATCHES` too, so a term means one thing everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# Which recorded statuses a term `<step>.<word>` is true for. `failed` counts a timeout too (a
# timeout is a failure, docs/semantics.md); a step not finished yet makes every term false. A
# step reused from an earlier run (`--only`/`--from`, a resume) is recorded as succeeded.
MATCHES: dict[str, frozenset[str]] = {
    "success": frozenset({"success"}),
    "failed": frozenset({"failed", "timed_out"}),
    "timed_out": frozenset({"timed_out"}),
    "skipped": frozenset({"skipped"}),
    "upstream_failed": frozenset({"upstream_failed"}),
    "cancelled": frozenset({"cancelled"}),
}
KINDS = ("requires", "after", "never")


def holds(guard: Mapping[str, Any], status: Mapping[str, str]) -> bool:
    """The guard's value when each step has `status` (absent: not finished). planc bounds the
    nesting, so the recursion is shallow."""
    kind = guard["kind"]
    if kind == "status":
        return status.get(guard["step"], "pending") in MATCHES[guard["status"]]
    if kind == "not":
        return not holds(guard["operand"], status)
    values = (holds(operand, status) for operand in guard["operands"])
    return all(values) if kind == "and" else any(values)


def allows(invariant: Mapping[str, Any], status: Mapping[str, str]) -> bool:
    """Whether the invariant lets its step start now: `requires`/`after` need the guard true,
    `never … when` needs it false."""
    value = holds(invariant["guard"], status)
    return not value if invariant["kind"] == "never" else value


def by_step(invariants: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    found: dict[str, list[Mapping[str, Any]]] = {}
    for invariant in invariants:
        found.setdefault(str(invariant["step"]), []).append(invariant)
    return found


def refusal(
    invariants: Sequence[Mapping[str, Any]], status: Mapping[str, str]
) -> Mapping[str, Any] | None:
    """The first of a step's invariants that does not let it start now, if any."""
    for invariant in invariants:
        if not allows(invariant, status):
            return invariant
    return None


def why(invariant: Mapping[str, Any], status: Mapping[str, str]) -> str:
    """The event's detail: the invariant, and what the steps it reads had ended with."""
    read = list(dict.fromkeys(_steps(invariant["guard"])))
    shown = ", ".join(f"{s} {status.get(s, 'not finished')}" for s in read)
    return f"`{invariant['source']}` does not hold ({shown})"


def _steps(guard: Mapping[str, Any]) -> list[str]:
    if guard["kind"] == "status":
        return [str(guard["step"])]
    if guard["kind"] == "not":
        return _steps(guard["operand"])
    return [s for operand in guard["operands"] for s in _steps(operand)]
