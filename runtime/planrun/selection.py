"""`--only` / `--from`: run a subset of the plan, its upstream satisfied by an earlier run."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from planrun.semantics import setup_scopes
from planrun.store import Reader


class SelectionError(Exception):
    """The subset cannot run; the message says what is missing."""


@dataclass(frozen=True)
class Selection:
    reused: dict[str, str] = field(default_factory=dict)  # upstream step -> run it succeeded in
    excluded: frozenset[str] = frozenset()  # neither selected nor needed: recorded not_selected
    # reused step -> the outputs it set in that run: the selected steps read them
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    # reused step -> its outputs that held a secret: recorded masked, so not there to hand on
    secret_outputs: dict[str, set[str]] = field(default_factory=dict)


def select(
    steps: list[dict[str, Any]], digest: str, reader: Reader | None, only: Iterable[str],
    from_: Iterable[str],
) -> Selection:  # fmt: skip
    by_id = {s["id"]: s for s in steps}
    only, from_ = list(only), list(from_)
    for step_id in [*only, *from_]:
        if step_id not in by_id:
            close = difflib.get_close_matches(step_id, by_id, n=1)
            hint = f"; did you mean `{close[0]}`?" if close else ""
            raise SelectionError(f"no step `{step_id}` in this plan{hint}")
    selected = set(only) | _closure(from_, lambda s: by_id[s]["dependents"])
    selected |= _closure(selected, lambda s: [by_id[s]["fallback"]] if by_id[s]["fallback"] else [])
    # Work inside a setup/teardown scope brings its setup and teardown (semantics.md §5b).
    for teardown, (setup, between) in setup_scopes(steps).items():
        if selected & (between | {setup}):
            selected |= {setup, teardown}
    needed = _closure(selected, lambda s: by_id[s]["depends_on"]) - selected
    reused, outputs = _reused(sorted(needed, key=lambda s: by_id[s]["index"]), digest, reader)
    secret = _secret_outputs(reused, reader) if reader is not None else {}
    return Selection(reused, frozenset(by_id) - selected - needed, outputs, secret)


def _secret_outputs(reused: dict[str, str], reader: Reader) -> dict[str, set[str]]:
    """The secret outputs of each reused step, from the events of the run it comes from."""
    from planrun.secrecy import secret_outputs_in

    found: dict[str, set[str]] = {}
    for run_id in sorted(set(reused.values())):
        in_run = secret_outputs_in(reader.events(run_id))
        found.update({s: in_run[s] for s, r in reused.items() if r == run_id and in_run.get(s)})
    return found


def _closure(start: Iterable[str], neighbours: Any) -> set[str]:
    seen: set[str] = set()
    stack = list(start)
    while stack:
        current = stack.pop()
        if current not in seen:
            seen.add(current)
            stack.extend(neighbours(current))
    return seen


def _reused(
    needed: list[str], digest: str, reader: Reader | None
) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """For each needed step, the newest earlier run of the same IR in which it succeeded, and
    the outputs it set there."""
    found: dict[str, str] = {}
    outputs: dict[str, dict[str, str]] = {}
    latest_status: dict[str, str] = {}
    runs = [r.run_id for r in reader.runs(limit=1000) if r.ir_digest == digest] if reader else []
    for run_id in runs:
        if len(found) == len(needed):
            break
        assert reader is not None
        for step in reader.steps(run_id):
            if step.step_id in needed and step.step_id not in found:
                latest_status.setdefault(step.step_id, step.status)
                if step.status == "success":
                    found[step.step_id] = run_id
                    outputs[step.step_id] = dict(step.outputs)
    missing = [s for s in needed if s not in found]
    if not missing:
        return {s: found[s] for s in needed}, outputs
    names = ", ".join(f"`{s}` ({latest_status.get(s, 'never run')})" for s in missing)
    raise SelectionError(
        f"the selected steps need {names} to have succeeded in an earlier run of this same plan"
        f" (same IR digest); run them first, e.g. with --from {missing[0]}"
    )
