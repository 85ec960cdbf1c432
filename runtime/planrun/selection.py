"""`--only` / `--from`: run a subset of the plan; the steps it needs come from earlier runs when
their fingerprint still matches (docs/fingerprints.md), else they run too."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from planrun.ir_types import IRStep
from planrun.semantics import setup_scopes


class SelectionError(Exception):
    """The subset cannot run; the message says why."""


@dataclass(frozen=True)
class Selection:
    # upstream steps the selected ones need: a recorded success with the same fingerprint
    # stands in for each, else it runs
    needed: frozenset[str] = frozenset()
    excluded: frozenset[str] = frozenset()  # neither selected nor needed: recorded not_selected


def select(steps: Sequence[IRStep], only: Iterable[str], from_: Iterable[str]) -> Selection:
    by_id = {s.id: s for s in steps}
    only, from_ = list(only), list(from_)
    for step_id in [*only, *from_]:
        if step_id not in by_id:
            close = difflib.get_close_matches(step_id, by_id, n=1)
            hint = f"; did you mean `{close[0]}`?" if close else ""
            raise SelectionError(f"no step `{step_id}` in this plan{hint}")
    selected = set(only) | _closure(from_, lambda s: by_id[s].dependents)
    selected |= _closure(selected, lambda s: [by_id[s].fallback] if by_id[s].fallback else [])
    # Work inside a setup/teardown scope brings its setup and teardown (semantics.md §5b).
    for teardown, (setup, between) in setup_scopes(steps).items():
        if selected & (between | {setup}):
            selected |= {setup, teardown}
    needed = _closure(selected, lambda s: by_id[s].depends_on) - selected
    return Selection(frozenset(needed), frozenset(by_id) - selected - needed)


def _closure(start: Iterable[str], neighbours: Any) -> set[str]:
    seen: set[str] = set()
    stack = list(start)
    while stack:
        current = stack.pop()
        if current not in seen:
            seen.add(current)
            stack.extend(neighbours(current))
    return seen
