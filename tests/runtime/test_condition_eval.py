"""The runtime condition evaluator: semantics.md §2 and docs/conditions.md, on JSON ASTs."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planrun.core.conditions import MAX_DEPTH, ConditionError, StepFacts, evaluate, validate


def step(sid: str, attr: str = "status") -> dict[str, Any]:
    return {"kind": "step", "step": sid, "attr": attr}


def env(name: str) -> dict[str, Any]:
    return {"kind": "env", "name": name}


def lit(value: object) -> dict[str, Any]:
    return {"kind": "literal", "value": value}


def cmp(left: dict[str, Any], op: str, right: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "compare", "op": op, "left": left, "right": right}


def lst(*values: object) -> dict[str, Any]:
    return {"kind": "list", "items": [lit(v) for v in values]}


def and_(*operands: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "and", "operands": list(operands)}


def or_(*operands: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "or", "operands": list(operands)}


def not_(operand: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "not", "operand": operand}


T, F = lit(True), lit(False)
FACTS = {
    "ok": StepFacts("success", exit_code=0, attempts=1, duration_sec=12.5),
    "bad": StepFacts("failed", exit_code=3, attempts=2, duration_sec=0.5),
    "slow": StepFacts("timed_out", exit_code=None, attempts=1, duration_sec=None),
    "skip": StepFacts("skipped"),
}
ENV = {"CI": "true", "STAGE": "prod", "EMPTY": ""}

TABLE: list[tuple[str, dict[str, Any], bool]] = [
    # the seed
    ("seed", cmp(step("ok"), "==", lit("success")), True),
    ("seed, failed", cmp(step("bad"), "==", lit("success")), False),
    # equality and types
    ("status !=", cmp(step("bad"), "!=", lit("success")), True),
    ("exit code", cmp(step("bad", "exit_code"), "==", lit(3)), True),
    ("int equals float", cmp(step("bad", "exit_code"), "==", lit(3.0)), True),
    ("null exit code", cmp(step("slow", "exit_code"), "==", lit(None)), True),
    ("null != 0", cmp(step("slow", "exit_code"), "!=", lit(0)), True),
    ("string vs number", cmp(step("bad", "exit_code"), "==", lit("3")), False),
    ("string vs number !=", cmp(step("bad", "exit_code"), "!=", lit("3")), True),
    ("bool is not 1", cmp(T, "==", lit(1)), False),
    ("bool is not 0", cmp(F, "==", lit(0)), False),
    ("bool != 1", cmp(T, "!=", lit(1)), True),
    ("bool expression as a value", cmp(cmp(step("ok"), "==", lit("success")), "==", T), True),
    ("env", cmp(env("CI"), "==", lit("true")), True),
    ("empty env is not null", cmp(env("EMPTY"), "==", lit(None)), False),
    ("unset env is null", cmp(env("NOPE"), "==", lit(None)), True),
    ("unset env != string", cmp(env("NOPE"), "!=", lit("x")), True),
    # missing steps read as null
    ("missing step status", cmp(step("ghost"), "==", lit(None)), True),
    ("missing step attempts", cmp(step("ghost", "attempts"), "==", lit(0)), False),
    ("missing step !=", cmp(step("ghost"), "!=", lit("success")), True),
    # ordering
    ("attempts >", cmp(step("bad", "attempts"), ">", lit(1)), True),
    ("attempts >=", cmp(step("bad", "attempts"), ">=", lit(2)), True),
    ("duration <", cmp(step("ok", "duration_sec"), "<", lit(60)), True),
    ("duration <=", cmp(step("ok", "duration_sec"), "<=", lit(12.5)), True),
    ("ordering with null", cmp(step("slow", "duration_sec"), "<", lit(60)), False),
    ("ordering with null, >=", cmp(step("slow", "exit_code"), ">=", lit(0)), False),
    ("null < null", cmp(lit(None), "<", lit(None)), False),
    ("ordering strings", cmp(lit("a"), "<", lit("b")), False),
    ("ordering status", cmp(step("bad"), ">", lit("a")), False),
    ("ordering bools", cmp(F, "<", T), False),
    ("ordering bool vs number", cmp(T, ">", lit(0)), False),
    # membership
    ("in", cmp(step("slow"), "in", lst("failed", "timed_out")), True),
    ("in, absent", cmp(step("ok"), "in", lst("failed", "timed_out")), False),
    ("not in", cmp(step("ok"), "not in", lst("failed", "timed_out")), True),
    ("in []", cmp(step("ok"), "in", lst()), False),
    ("not in []", cmp(step("ok"), "not in", lst()), True),
    ("in is typed", cmp(step("bad", "exit_code"), "in", lst("3", True)), False),
    ("true in [1]", cmp(T, "in", lst(1)), False),
    ("number in list", cmp(step("bad", "exit_code"), "in", lst(1, 2, 3)), True),
    ("null in list", cmp(step("slow", "exit_code"), "in", lst(None)), True),
    ("env in list", cmp(env("STAGE"), "in", lst("staging", "prod")), True),
    # boolean operators
    ("literal true", T, True),
    ("literal false", F, False),
    ("and", and_(T, T, T), True),
    ("and, one false", and_(T, F, T), False),
    ("or", or_(F, F, T), True),
    ("or, all false", or_(F, F), False),
    ("not", not_(F), True),
    (
        "nested",
        and_(
            not_(cmp(step("ok"), "!=", lit("success"))), or_(F, cmp(env("CI"), "==", lit("true")))
        ),
        True,
    ),
]


@pytest.mark.parametrize(
    ("ast", "expected"), [(ast, want) for _, ast, want in TABLE], ids=[n for n, _, _ in TABLE]
)
def test_table(ast: dict[str, Any], expected: bool) -> None:
    assert evaluate(ast, FACTS, ENV) is expected


class CountingFacts(Mapping[str, StepFacts]):
    """Records which steps were read, to observe short-circuiting."""

    def __init__(self, facts: Mapping[str, StepFacts]) -> None:
        self.facts = facts
        self.read: list[str] = []

    def __getitem__(self, key: str) -> StepFacts:
        self.read.append(key)
        return self.facts[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.facts)

    def __len__(self) -> int:
        return len(self.facts)


def test_and_or_short_circuit() -> None:
    facts = CountingFacts(FACTS)
    assert evaluate(and_(F, cmp(step("ok"), "==", lit("success"))), facts, ENV) is False
    assert evaluate(or_(T, cmp(step("bad"), "==", lit("success"))), facts, ENV) is True
    assert facts.read == []
    assert evaluate(or_(F, cmp(step("bad"), "==", lit("failed"))), facts, ENV) is True
    assert facts.read == ["bad"]


def test_statuses_outside_the_condition_vocabulary_compare_as_strings() -> None:
    # A hand-edited IR may reach a step that has not finished; evaluation still does not raise.
    facts = {"p": StepFacts("pending")}
    assert evaluate(cmp(step("p"), "==", lit("success")), facts, {}) is False


MALFORMED: list[tuple[str, Any]] = [
    ("not an object", ["kind", "and"]),
    ("no kind", {"op": "=="}),
    ("unknown kind", {"kind": "xor", "operands": [T, T]}),
    ("one operand", and_(T)),
    ("operands not a list", {"kind": "or", "operands": "TT"}),
    ("not without operand", {"kind": "not"}),
    ("bad operator", cmp(lit(1), "===", lit(1))),
    ("in without list", cmp(step("ok"), "in", lit("success"))),
    ("list outside in", cmp(lst(1), "==", lst(1))),
    ("list item not literal", cmp(step("ok"), "in", {"kind": "list", "items": [env("X")]})),
    ("list items not a list", cmp(step("ok"), "in", {"kind": "list", "items": None})),
    ("unknown attribute", cmp(step("ok", "stauts"), "==", lit("x"))),
    ("step id not a string", cmp({"kind": "step", "step": 1, "attr": "status"}, "==", lit(1))),
    ("env name not a string", cmp({"kind": "env", "name": None}, "==", lit(1))),
    ("literal without value", cmp({"kind": "literal"}, "==", lit(1))),
    ("literal of a list", cmp(lit([1]), "==", lit(1))),
    ("value as condition", step("ok")),
    ("string literal as condition", lit("true")),
    ("env as operand of and", and_(T, env("CI"))),
    ("value under not", not_(lit(None))),
    ("missing left", {"kind": "compare", "op": "==", "right": lit(1)}),
]


@pytest.mark.parametrize("ast", [ast for _, ast in MALFORMED], ids=[n for n, _ in MALFORMED])
def test_malformed_asts_raise_condition_error(ast: Any) -> None:
    with pytest.raises(ConditionError, match="condition"):
        evaluate(ast, FACTS, ENV)
    assert issubclass(ConditionError, ValueError)


def test_malformed_subtrees_are_found_even_when_short_circuited() -> None:
    with pytest.raises(ConditionError, match="/operands/1"):
        evaluate(or_(T, {"kind": "bogus"}), FACTS, ENV)


def deep(levels: int) -> dict[str, Any]:
    node: dict[str, Any] = T
    for _ in range(levels):
        node = not_(node)
    return node


def test_depth_limit() -> None:
    assert evaluate(deep(MAX_DEPTH - 1), {}, {}) is ((MAX_DEPTH - 1) % 2 == 0)
    with pytest.raises(ConditionError, match="deeper"):
        validate(deep(MAX_DEPTH))


def test_a_very_deep_hand_edited_ast_does_not_crash() -> None:
    with pytest.raises(ConditionError):
        evaluate(deep(100_000), {}, {})


# --- property tests ------------------------------------------------------------------------------

STEP_IDS = st.sampled_from(["ok", "bad", "slow", "skip", "ghost"])
ATTRS = st.sampled_from(["status", "exit_code", "attempts", "duration_sec"])
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["success", "failed", "timed_out", "skipped", "cancelled", "", "true"]),
)
OPERANDS = st.one_of(
    st.builds(step, STEP_IDS, ATTRS),
    st.builds(env, st.sampled_from(["CI", "STAGE", "NOPE"])),
    st.builds(lit, VALUES),
)
COMPARISONS = st.one_of(
    st.builds(cmp, OPERANDS, st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), OPERANDS),
    st.builds(
        cmp,
        OPERANDS,
        st.sampled_from(["in", "not in"]),
        st.lists(VALUES, max_size=4).map(lambda vs: lst(*vs)),
    ),
)
CONDITIONS = st.recursive(
    st.one_of(COMPARISONS, st.builds(lit, st.booleans())),
    lambda inner: st.one_of(
        st.lists(inner, min_size=2, max_size=4).map(lambda ops: and_(*ops)),
        st.lists(inner, min_size=2, max_size=4).map(lambda ops: or_(*ops)),
        st.builds(not_, inner),
        st.builds(cmp, inner, st.sampled_from(["==", "!="]), inner),
    ),
    max_leaves=30,
)
FACTS_STRATEGY = st.dictionaries(
    STEP_IDS,
    st.builds(
        StepFacts,
        st.sampled_from(["success", "failed", "timed_out", "skipped", "cancelled", "pending"]),
        st.one_of(st.none(), st.integers(-300, 300)),
        st.integers(0, 10),
        st.one_of(st.none(), st.floats(0, 1e6)),
    ),
)


@settings(max_examples=300, deadline=None)
@given(
    CONDITIONS,
    FACTS_STRATEGY,
    st.dictionaries(st.sampled_from(["CI", "STAGE"]), st.text(max_size=5)),
)
def test_random_well_formed_asts_evaluate_to_a_bool(
    ast: dict[str, Any], facts: dict[str, StepFacts], environ: dict[str, str]
) -> None:
    assert isinstance(evaluate(ast, facts, environ), bool)


@settings(max_examples=300, deadline=None)
@given(CONDITIONS)
def test_not_negates(ast: dict[str, Any]) -> None:
    assert evaluate(not_(ast), FACTS, ENV) is not evaluate(ast, FACTS, ENV)


JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.sampled_from(
                [
                    "kind",
                    "op",
                    "left",
                    "right",
                    "operands",
                    "operand",
                    "items",
                    "value",
                    "step",
                    "attr",
                    "name",
                ]
            ),
            inner,
            max_size=4,
        ),
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(JSON)
def test_arbitrary_json_gives_a_bool_or_condition_error(ast: Any) -> None:
    try:
        result = evaluate(ast, FACTS, ENV)
    except ConditionError:
        return
    assert isinstance(result, bool)


def test_the_evaluator_needs_nothing_of_the_compiler() -> None:
    import ast as python_ast

    import planrun.core.conditions

    tree = python_ast.parse(Path(planrun.core.conditions.__file__).read_text(encoding="utf-8"))
    imported = {
        alias.name.split(".")[0]
        for node in python_ast.walk(tree)
        if isinstance(node, python_ast.Import)
        for alias in node.names
    } | {
        (node.module or "").split(".")[0]
        for node in python_ast.walk(tree)
        if isinstance(node, python_ast.ImportFrom)
    }
    assert not imported & {"planc", "lark", "ruamel", "plan_grammar"}
