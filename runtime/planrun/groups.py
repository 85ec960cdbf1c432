"""Groups of steps that run as one: a matrix's or a fan-out's instances (docs/composition.md).
The IR's `groups` says which steps belong together, how many may run at once (`max_parallel`)
and whether one failing cancels the others (`fail_fast`, as GitHub Actions' strategy does)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from planrun.core.ir_types import OnFailure
from planrun.core.status import Reason

FAIL_FAST = Reason.FAIL_FAST.value  # the reason of a step cancelled because a sibling failed

_INSTANCE = re.compile(r"(.+)\[(0|[1-9][0-9]*)\]")


def instance_of(step_id: str) -> tuple[str, int] | None:
    """`build[3]` -> (`build`, 3): a fan-out's instance (fanout.instance_id), else None."""
    match = _INSTANCE.fullmatch(step_id)
    return None if match is None else (match[1], int(match[2]))


def matrix_of(groups: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """Each matrix instance's matrix, from the IR's `groups`."""
    return {m: n for n, g in groups.items() if g["kind"] == "matrix" for m in g["members"]}


def view_groups(
    groups: Mapping[str, Mapping[str, Any]], step_ids: list[str]
) -> list[dict[str, Any]]:
    """The groups the views fold, in the order of their first member among `step_ids`: each
    matrix of the IR, and the instances of each fan-out (and of its fallback step) that
    `step_ids`, the run's steps, hold."""
    members: dict[str, list[str]] = {}
    kinds: dict[str, str] = {}
    matrices = matrix_of(groups)
    for step_id in step_ids:
        instance = instance_of(step_id)
        name = matrices.get(step_id) if instance is None else instance[0]
        if name is not None:
            members.setdefault(name, []).append(step_id)
            kinds[name] = "matrix" if instance is None else "for_each"
    return [{"name": n, "kind": kinds[n], "members": m} for n, m in members.items()]


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
