"""Random mutations of valid plans never make planc crash: a diagnostic or an IR, never exit 3."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planc.pipeline import compile_bytes

REPO = Path(__file__).resolve().parents[2]
BASES = [
    json.loads((REPO / "plans" / "seed" / "checkin.json").read_text()),
    json.loads((REPO / "plans" / "seed" / "safe-merge.json").read_text()),
]

GARBAGE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)
CONDITION_GARBAGE = st.one_of(
    st.text(alphabet="steps.prev.env()[]'\"=!<>andornotin 0123456789_abc", max_size=60),
    st.sampled_from(["(" * 500 + "true" + ")" * 500, "steps." * 300, "'" + "x" * 5000]),
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


def _apply(plan: Any, path: tuple[Any, ...], action: str, garbage: Any) -> Any:
    if not path:
        return garbage if action == "replace" else plan
    parent = plan
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if action == "delete":
        del parent[last]
    else:
        parent[last] = garbage
    return plan


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_plans_never_crash(data: st.DataObject) -> None:
    plan = copy.deepcopy(data.draw(st.sampled_from(BASES)))
    for _ in range(data.draw(st.integers(1, 3))):
        paths = _paths(plan)
        path = data.draw(st.sampled_from(paths))
        action = data.draw(st.sampled_from(["delete", "replace"]))
        garbage = data.draw(CONDITION_GARBAGE if path and path[-1] == "condition" else GARBAGE)
        plan = _apply(plan, path, action, garbage)
    text = json.dumps(plan)
    as_yaml = data.draw(st.booleans())
    result = compile_bytes("mutant.yaml" if as_yaml else "mutant.json", text.encode())
    assert result.ir is not None or result.has_errors


@settings(max_examples=200, deadline=None)
@given(condition=CONDITION_GARBAGE)
def test_garbage_conditions_give_diagnostics(condition: str) -> None:
    plan = copy.deepcopy(BASES[0])
    plan["steps"][2]["condition"] = condition
    result = compile_bytes("plan.json", json.dumps(plan).encode())
    assert result.ir is not None or result.has_errors


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=300))
def test_arbitrary_bytes_never_crash(raw: bytes) -> None:
    for name in ("x.yaml", "x.json"):
        result = compile_bytes(name, raw)
        assert result.ir is not None or result.has_errors
