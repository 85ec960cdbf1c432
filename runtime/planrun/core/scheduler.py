"""The ready queue: which ready step starts next (fallbacks and retries, then critical path)."""

from __future__ import annotations

import heapq
from collections.abc import Sequence

from planrun.core.semantics import StepRules


def critical_path_lengths(steps: Sequence[StepRules]) -> dict[str, int]:
    """Steps on the longest remaining chain to the end of the plan; `steps` in topological order."""
    length: dict[str, int] = {}
    for step in reversed(steps):
        length[step.id] = 1 + max((length[d] for d in step.dependents), default=0)
    return length


class ReadyQueue:
    """O(log n) push/pop; ties broken by source order so runs are reproducible."""

    def __init__(self, steps: Sequence[StepRules]) -> None:
        self._path = critical_path_lengths(steps)
        self._index = {s.id: s.index for s in steps}
        self._heap: list[tuple[int, int, int, str]] = []
        self._queued: set[str] = set()

    def push(self, step_id: str, urgent: bool = False) -> None:
        if step_id in self._queued:
            return
        self._queued.add(step_id)
        entry = (0 if urgent else 1, -self._path[step_id], self._index[step_id], step_id)
        heapq.heappush(self._heap, entry)

    def add(self, step_id: str, like: str) -> None:
        """A step made at run time (a fan-out's instance) ranks as the step it was made from."""
        self._path[step_id] = self._path[like]
        self._index[step_id] = self._index[like]

    def pop(self) -> str | None:
        if not self._heap:
            return None
        step_id = heapq.heappop(self._heap)[3]
        self._queued.discard(step_id)
        return step_id

    def __len__(self) -> int:
        return len(self._heap)
