"""What `semantics.PlanState` answers with: the actions its drivers carry out (semantics.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from planrun.core.byvalue import ByValue


@dataclass(frozen=True, eq=False, repr=False)
class Start(ByValue):
    step_id: str
    urgent: bool = False  # fallbacks jump the queue (semantics.md §6)


@dataclass(frozen=True, eq=False, repr=False)
class Skip(ByValue):
    step_id: str
    reason: Literal["upstream", "condition", "not_needed"]
    detail: str


@dataclass(frozen=True, eq=False, repr=False)
class UpstreamFailed(ByValue):
    step_id: str
    detail: str
    # `invariant`: about to start, refused by one of the plan's invariants (docs/invariants.md).
    reason: Literal["upstream", "invariant"] = "upstream"


@dataclass(frozen=True, eq=False, repr=False)
class Cancel(ByValue):
    step_id: str
    reason: Literal["aborted", "interrupted"]


@dataclass(frozen=True, eq=False, repr=False)
class Recovered(ByValue):
    step_id: str
    fallback: str


@dataclass(frozen=True, eq=False, repr=False)
class Abort(ByValue):
    """The plan starts aborting because of this step (semantics.md §4)."""

    step_id: str


@dataclass(frozen=True, eq=False, repr=False)
class Retry(ByValue):
    """A failed or timed-out attempt is tried again after `delay` seconds (semantics.md §3)."""

    step_id: str
    delay: float


Action = Start | Skip | UpstreamFailed | Cancel | Recovered | Abort
# Decisions that settle a step without starting it: its dependents are decided next.
NotStarted = (Skip, UpstreamFailed, Cancel)
