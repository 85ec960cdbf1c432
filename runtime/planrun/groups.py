"""Groups of steps that run as one: a matrix's or a fan-out's instances (docs/composition.md).
The IR's `groups` says which steps belong together, how many may run at once (`max_parallel`)
and whether one failing cancels the others (`fail_fast`, as GitHub Actions' strategy does)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from planrun.ir_types import OnFailure
from planrun.status import Reason

FAIL_FAST = Reason.FAIL_FAST.value  # the reason of a step cancelled because a sibling failed


class GroupControl:
    def __init__(self, groups: Mapping[str, Mapping[str, Any]]) -> None:
        self._group_of: dict[str, str] = {}
        self._members: dict[str, list[str]] = {}
        self._limit: dict[str, int | None] = {}
        self._fail_fast: dict[str, bool] = {}
        for name, group in groups.items():
            self._members[name] = list(group["members"])
            self._limit[name] = group["max_parallel"]
            self._fail_fast[name] = bool(group["fail_fast"])
            for member in group["members"]:
                self._group_of[member] = name
        self.cancelled: set[str] = set()  # steps stopped by fail_fast: their reason

    def add_members(self, name: str, members: list[str]) -> None:
        """A fan-out's instances, made at run time, join its group."""
        self._members[name] = list(members)
        for member in members:
            self._group_of[member] = name

    def held(self, step_id: str, is_running: Callable[[str], bool]) -> bool:
        """Whether `step_id` must wait: its group already runs `max_parallel` processes."""
        name = self._group_of.get(step_id)
        limit = None if name is None else self._limit[name]
        if name is None or limit is None:
            return False
        running = sum(1 for m in self._members[name] if m != step_id and is_running(m))
        return running >= limit

    def to_cancel(self, step_id: str, on_failure: OnFailure) -> list[str]:
        """The siblings that a final failure of `step_id` cancels. A failure its policy
        tolerates (`continue`) or may recover (`fallback_step`) cancels nothing, as a job with
        `continue-on-error` does not trigger GitHub Actions' fail-fast."""
        name = self._group_of.get(step_id)
        if name is None or not self._fail_fast[name] or on_failure.may_recover:
            return []
        return [m for m in self._members[name] if m != step_id]
