"""`--only` / `--from`: run a subset of the plan; the steps it needs come from earlier runs when
their fingerprint still matches (docs/fingerprints.md), else they run too. A name may also be a
matrix (every instance) or a fan-out's instance (its fan-out step: instances exist only once
the list is read; docs/composition.md)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from planrun.core.byvalue import ByValue
from planrun.core.ir_types import IRStep
from planrun.core.semantics import setup_scopes
from planrun.groups import instance_of


class SelectionError(Exception):
    """The subset cannot run; the message says why."""


@dataclass(frozen=True, eq=False, repr=False)
class Selection(ByValue):
    # upstream steps the selected ones need: a recorded success with the same fingerprint
    # stands in for each, else it runs
    needed: frozenset[str] = frozenset()
    excluded: frozenset[str] = frozenset()  # neither selected nor needed: recorded not_selected


def select(
    steps: Sequence[IRStep],
    only: Iterable[str],
    from_: Iterable[str],
    groups: Mapping[str, Mapping[str, Any]] | None = None,
) -> Selection:
    """With the IR's `groups`, a name may also be a matrix or a fan-out instance; without, only
    a plan step (what `--force STEP` checks)."""
    by_id = {s.id: s for s in steps}
    matrices = {n: list(g["members"]) for n, g in (groups or {}).items() if g["kind"] == "matrix"}
    grouped = groups is not None
    only = [s for name in only for s in _steps_named(name, by_id, matrices, grouped)]
    from_ = [s for name in from_ for s in _steps_named(name, by_id, matrices, grouped)]
    selected = set(only) | _closure(from_, lambda s: by_id[s].dependents)
    selected |= _closure(selected, lambda s: [by_id[s].fallback] if by_id[s].fallback else [])
    # Work inside a setup/teardown scope brings its setup and teardown (semantics.md §5b).
    for teardown, (setup, between) in setup_scopes(steps).items():
        if selected & (between | {setup}):
            selected |= {setup, teardown}
    needed = _closure(selected, lambda s: by_id[s].depends_on) - selected
    return Selection(frozenset(needed), frozenset(by_id) - selected - needed)


def _steps_named(
    name: str, by_id: Mapping[str, Any], matrices: Mapping[str, list[str]], grouped: bool
) -> list[str]:
    """The plan steps `name` stands for: itself, a matrix's instances, or a fan-out instance's
    fan-out step (`build[2]` -> `build`)."""
    if name in by_id:
        return [name]
    if name in matrices:
        return matrices[name]
    instance = instance_of(name) if grouped else None
    if instance is not None and instance[0] in by_id:
        return [instance[0]]
    import difflib  # only for a misspelt name

    close = difflib.get_close_matches(name, [*by_id, *matrices], n=1)
    hint = f"; did you mean `{close[0]}`?" if close else ""
    raise SelectionError(f"no step `{name}` in this plan{hint}")


def _closure(start: Iterable[str], neighbours: Any) -> set[str]:
    seen: set[str] = set()
    stack = list(start)
    while stack:
        current = stack.pop()
        if current not in seen:
            seen.add(current)
            stack.extend(neighbours(current))
    return seen
