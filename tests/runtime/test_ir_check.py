"""The compiled IR check (planrun.core.ir.conforms) agrees with jsonschema on ir.schema.json."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planrun.core.ir import (
    IRError,
    canonical_json,
    compute_digest,
    conforms,
    ir_schema,
    parse_if_ir,
    parse_ir,
)
from planrun.core.schema_pattern import ecma_draft7

GOLDEN = sorted((Path(__file__).parents[1] / "golden" / "valid").glob("*.ir.json"))
HEX = "0123456789abcdef" * 4


@cache
def validator() -> jsonschema.Draft7Validator:
    # jsonschema with `pattern` read as JSON Schema defines it ($ = the end of the string)
    validator: jsonschema.Draft7Validator = ecma_draft7()(ir_schema())
    return validator


def golden(index: int) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(GOLDEN[index % len(GOLDEN)].read_text(encoding="utf-8"))
    return value


def rich_ir() -> dict[str, Any]:
    """A valid IR that uses the optional shapes: params, conditions, timeouts, fallbacks."""
    ir = golden(0)
    ir["params"] = {
        "env": {"type": "string", "required": False, "default": "dev", "description": "",
                "choices": ["dev", "prod", 3, True], "secret": False},
        "n": {"type": "int", "required": True, "default": None, "description": "x",
              "choices": None, "secret": True},
    }  # fmt: skip
    ir["secrets"] = ["TOKEN"]
    ir["watch"] = {"paths": ["src", "*.md"], "ignore": [], "debounce_sec": 0.2,
                   "interval_sec": None, "backoff_sec": 5, "max_backoff_sec": 300.5}  # fmt: skip
    step = ir["steps"][0]
    step.update(
        timeout_sec=1.5, heartbeat_timeout_sec=2, retries=3, retry_delay_sec=0.5,
        retry_backoff=2.0, max_retry_delay_sec=0, fallback=ir["steps"][-1]["id"], is_fallback=True,
        condition={"source": "true", "ast": {"kind": "literal", "value": True}},
        ui_hints={"color": "red"}, env={"A": "b"}, args=["-x", ""], tags=["t"],
    )  # fmt: skip
    return ir


def valid_irs() -> list[dict[str, Any]]:
    return [golden(i) for i in range(len(GOLDEN))] + [rich_ir()]


def test_there_are_golden_irs_to_check() -> None:
    assert len(GOLDEN) >= 3


@pytest.mark.parametrize("ir", valid_irs(), ids=lambda ir: str(ir["plan"]["id"]))
def test_valid_irs_conform(ir: dict[str, Any]) -> None:
    assert validator().is_valid(ir)
    assert conforms(ir)


# --- mutations -------------------------------------------------------------------------------

# Values that sit on the schema's edges: types JSON confuses (bool/int/float), bounds, enum
# members, patterns with a trailing newline (`$` matches before it, in re.search and jsonschema).
EDGE_VALUES: list[Any] = [
    None, True, False, 0, 1, -1, 2, 0.0, 1.0, 0.5, -0.5, 1e300, "", "x", "1x", "_a.b-c",
    "a" * 128, "a" * 129, "abort", "continue", "all_done", "one_success", "string", "int",
    "bool", HEX, HEX + "\n", HEX.upper(), "sha256:" + HEX, "sha256:" + HEX + "\n",
    "sha256:" + HEX[:-1], [], [""], ["a", "b"], ["a", 1], [None], {}, {"a": "b"}, {"a": 1},
    {"source": "x", "ast": {}}, {"source": 1, "ast": {}}, {"source": "x"},
    {"source": "x", "ast": {}, "extra": 1}, {"name": "n", "version": "v"},
    {"type": "int", "required": True, "default": 1, "description": "", "choices": None},
    {"type": "int", "required": True, "default": 1.5, "description": "", "choices": None},
    {"type": "str", "required": True, "default": 1, "description": "", "choices": [1]},
]  # fmt: skip
KEYS = sorted(
    {"id", "index", "name", "extra", "env", "fallback", "ui_hints", "choices", "source", "ast"}
)

# Copied: sampled_from hands out EDGE_VALUES' own lists and dicts, and the mutations below change
# values in place; shared, later examples drew from altered values and hypothesis stopped with
# FlakyStrategyDefinition.
json_values = st.recursive(
    st.sampled_from(EDGE_VALUES)
    | st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.floats(allow_nan=False, allow_infinity=False, width=32)
    | st.text(max_size=4),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
).map(copy.deepcopy)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every position in the document (the root too)."""
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths(item, (*prefix, index))
    return found


def at(document: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        document = document[part]
    return document


@st.composite
def mutated_irs(draw: st.DrawFn) -> dict[str, Any]:
    ir = copy.deepcopy(draw(st.sampled_from(valid_irs())))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths(ir)))
        target = at(ir, path)
        action = draw(st.sampled_from(["replace", "drop", "add", "append"]))
        if action == "replace" and path:
            at(ir, path[:-1])[path[-1]] = draw(json_values)
        elif action == "drop" and isinstance(target, dict | list) and target:
            key = draw(st.sampled_from(list(target) if isinstance(target, dict) else [0]))
            del target[key]
        elif action == "add" and isinstance(target, dict):
            target[draw(st.sampled_from(KEYS) | st.text(max_size=3))] = draw(json_values)
        elif action == "append" and isinstance(target, list):
            target.append(copy.deepcopy(draw(json_values | st.sampled_from(target or [None]))))
    return ir


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_irs())
def test_the_fast_check_agrees_with_jsonschema_on_mutated_irs(ir: dict[str, Any]) -> None:
    assert conforms(ir) == validator().is_valid(ir)


# Every field of every object in the IR (a step, globals, a param…) and the top level itself.
SECTIONS = [
    (),
    ("compiler",),
    ("source",),
    ("plan",),
    ("globals",),
    ("params", "env"),
    ("steps", 0),
    ("watch",),
]


@settings(max_examples=150, deadline=None)
@given(json_values)
def test_the_fast_check_agrees_on_any_value_in_any_field(value: Any) -> None:
    ir = rich_ir()
    for section in SECTIONS:
        for key in sorted(at(ir, section)):
            mutated = copy.deepcopy(ir)
            at(mutated, section)[key] = value
            assert conforms(mutated) == validator().is_valid(mutated), (section, key)


def test_a_refused_ir_is_still_explained_by_jsonschema() -> None:
    ir = golden(0)
    ir["steps"][0]["retries"] = -1
    body = {k: v for k, v in ir.items() if k != "digest"}
    ir["digest"] = compute_digest(body)
    with pytest.raises(IRError) as refused:
        parse_ir(canonical_json(ir), "bad.ir.json")
    assert str(refused.value) == (
        "bad.ir.json: invalid IR at steps/0/retries: -1 is less than the minimum of 0"
    )


# --- loading: one JSON parse, the digest checked on the file's bytes when they are canonical ---


def canonical_file(ir: dict[str, Any]) -> bytes:
    body = {k: v for k, v in ir.items() if k != "digest"}
    return canonical_json({**body, "digest": compute_digest(body)}) + b"\n"


def test_a_canonical_file_and_a_reformatted_copy_load_alike() -> None:
    data = canonical_file(rich_ir())
    loaded = parse_ir(data, "a.ir.json")
    reformatted = json.dumps(json.loads(data), indent=2).encode()
    assert parse_ir(reformatted, "b.ir.json").raw == loaded.raw
    assert parse_if_ir(data, "a.ir.json") == loaded


@pytest.mark.parametrize(
    "tamper",
    [
        lambda d: d.replace(b'"retries":', b'"retries":1', 1),  # content changed
        lambda d: d.replace(b'"index":0', b'"index": 0', 1),  # whitespace only: same content
        lambda d: d[:-1],  # no final newline
        lambda d: d.replace(b',"digest":"', b',"digest" :"', 1),
    ],
)
def test_the_digest_is_checked_on_content_whatever_the_bytes(tamper: Any) -> None:
    ir = rich_ir()
    data = canonical_file(ir)
    changed = tamper(data)
    assert changed != data
    expected_ok = json.loads(changed) == json.loads(data)
    if expected_ok:
        assert parse_ir(changed).raw == json.loads(data)
    else:
        with pytest.raises(IRError, match="digest mismatch"):
            parse_ir(changed)


def test_parse_if_ir_tells_plans_from_irs() -> None:
    assert parse_if_ir(b'{"plan": {"id": "x"}, "steps": []}') is None
    assert parse_if_ir(b"plan:\n  id: x\n") is None
    assert parse_if_ir(b"{not json") is None
    with pytest.raises(IRError, match="NaN is not valid JSON"):
        parse_if_ir(b'{"ir_version": 1, "x": NaN}')
    assert parse_if_ir(b'{"plan": NaN}') is None
    with pytest.raises(IRError, match="unsupported ir_version 2"):
        parse_if_ir(b'{"ir_version": 2}')


def test_a_canonical_file_is_not_serialised_again(monkeypatch: pytest.MonkeyPatch) -> None:
    import planrun.core.ir

    data = canonical_file(rich_ir())

    def refuse(body: object) -> str:
        raise AssertionError("the canonical file should be hashed as it is")

    monkeypatch.setattr(planrun.core.ir, "compute_digest", refuse)
    assert parse_ir(data).digest == json.loads(data)["digest"]


@pytest.mark.parametrize(
    ("where", "value"),
    [(("steps", 0, "id"), "a\n"), (("plan", "id"), "P\n::error::x"), (("digest",), None)],
)
def test_a_final_newline_does_not_pass_a_pattern(where: tuple[str | int, ...], value: Any) -> None:
    ir = golden(0)
    target: Any = ir
    for key in where[:-1]:
        target = target[key]
    body = {k: v for k, v in ir.items() if k != "digest"}
    if value is None:  # the digest itself, with a newline after its 64 hex digits
        ir["digest"] = compute_digest(body) + "\n"
    else:
        target[where[-1]] = value
        body = {k: v for k, v in ir.items() if k != "digest"}
        ir["digest"] = compute_digest(body)
    assert not conforms(ir)
    assert not validator().is_valid(ir)
    with pytest.raises(IRError, match="invalid IR at "):
        parse_ir(canonical_json(ir), "bad.ir.json")


def test_a_guard_nested_too_deeply_is_refused_in_one_line() -> None:
    ir = next(golden(i) for i in range(len(GOLDEN)) if "invariants" in golden(i))
    guard: dict[str, Any] = {"kind": "status", "step": "a", "status": "success"}
    for _ in range(900):
        guard = {"kind": "not", "operand": guard}
    ir["invariants"] = [{**ir["invariants"][0], "guard": guard}]
    body = {k: v for k, v in ir.items() if k != "digest"}
    with pytest.raises(IRError) as refused:
        parse_ir(canonical_file(body), "deep.ir.json")
    assert str(refused.value) == "deep.ir.json: invalid IR: nested too deeply"
