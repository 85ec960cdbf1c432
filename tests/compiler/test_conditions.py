"""The condition language in the compiler: parsing, local checks, lowering, and the graph rule."""

from __future__ import annotations

import itertools
import re
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planc import condition_syntax, condition_tokens, conditions_fast, conditions_lark
from planc import conditions as conditions_module
from planc.codes_conditions import CODES
from planc.condition_syntax import ConditionError, TreeBuilder
from planc.conditions import (
    MAX_CONDITION_LENGTH,
    MAX_NESTING_DEPTH,
    MAX_PAREN_DEPTH,
    parse_condition,
)
from planc.diagnostics import Diagnostic, Severity, Span
from planc.graph import build_graph
from planc.model import build_model
from planc.nodes import Document, MapNode, Node, ScalarNode, SeqNode
from planc.rules import conditions as rule
from planc.rules.base import RuleContext
from planrun.core.conditions import Compare, Invalid, to_json

SEED = "prev.run_tests.status == 'success'"


def ir(text: str) -> dict[str, Any]:
    parsed = parse_condition(text)
    assert parsed.errors == []
    assert parsed.ast is not None
    return to_json(parsed.ast)


def errors(text: str) -> list[tuple[str, int, int, str]]:
    parsed = parse_condition(text)
    assert parsed.ast is None
    return [(e.code, e.offset, e.length, e.message) for e in parsed.errors]


def step(sid: str, attr: str = "status") -> dict[str, Any]:
    return {"kind": "step", "step": sid, "attr": attr}


def lit(value: object) -> dict[str, Any]:
    return {"kind": "literal", "value": value}


# --- to_ir -----------------------------------------------------------------------------------


def test_seed_expression() -> None:
    assert ir(SEED) == {
        "kind": "compare",
        "op": "==",
        "left": step("run_tests"),
        "right": lit("success"),
    }


def test_prev_is_an_alias_of_steps() -> None:
    assert ir(SEED) == ir("steps.run_tests.status == 'success'")


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("steps.build.linux.status", step("build.linux")),
        ("steps.build-2.x.exit_code", step("build-2.x", "exit_code")),
        ("steps._a.attempts", step("_a", "attempts")),
        ("prev.a.b.duration_sec", step("a.b", "duration_sec")),
        ("steps.build.status.status", step("build.status")),
    ],
)
def test_step_ids_may_contain_dots_and_dashes(ref: str, expected: dict[str, Any]) -> None:
    assert ir(f"{ref} in []")["left"] == expected


def test_and_or_are_flattened() -> None:
    a, b, c = (f"steps.{x}.status == 'success'" for x in "abc")
    assert ir(f"{a} and {b} and {c}") == {
        "kind": "and",
        "operands": [ir(a), ir(b), ir(c)],
    }
    assert ir(f"{a} or ({b} or {c})")["operands"] == [ir(a), ir(b), ir(c)]
    assert ir(f"({a} and {b}) and {c}")["operands"] == [ir(a), ir(b), ir(c)]


def test_precedence_not_and_or() -> None:
    a, b, c = (f"steps.{x}.status == 'success'" for x in "abc")
    assert ir(f"{a} or {b} and not {c}") == {
        "kind": "or",
        "operands": [
            ir(a),
            {"kind": "and", "operands": [ir(b), {"kind": "not", "operand": ir(c)}]},
        ],
    }
    assert ir(f"({a} or {b}) and {c}")["kind"] == "and"
    assert ir(f"not {a}") == ir(f"not ({a})")


def test_every_comparison_and_literal() -> None:
    assert ir("steps.a.exit_code != -3")["right"] == lit(-3)
    assert ir("steps.a.duration_sec >= 1.5")["op"] == ">="
    assert ir("steps.a.duration_sec < 1e3")["right"] == lit(1000.0)
    assert ir("steps.a.attempts <= .5")["right"] == lit(0.5)
    assert ir("steps.a.attempts > 2")["op"] == ">"
    assert ir("steps.a.exit_code == null")["right"] == lit(None)
    assert ir("(steps.a.exit_code == 0) == true")["right"] == lit(True)
    assert ir("(steps.a.exit_code == 0) != false")["right"] == lit(False)
    assert ir("true") == lit(True)
    assert ir('env.GREETING == "it\'s \\"x\\"\\n\\t\\r\\\\"')["right"] == lit('it\'s "x"\n\t\r\\')
    assert ir("env.X == 'a\\'b'")["right"] == lit("a'b")


def test_in_and_not_in_take_lists() -> None:
    assert ir("steps.a.status not in ['failed', \"timed_out\",]") == {
        "kind": "compare",
        "op": "not in",
        "left": step("a"),
        "right": {"kind": "list", "items": [lit("failed"), lit("timed_out")]},
    }
    assert ir("env.STAGE in []")["right"] == {"kind": "list", "items": []}
    assert ir("env.STAGE in ['a', null]")["left"] == {"kind": "env", "name": "STAGE"}


def test_keywords_have_word_boundaries() -> None:
    assert ir("env.notes == 'x'")["left"] == {"kind": "env", "name": "notes"}
    assert ir("steps.android.status == 'success'")["left"] == step("android")


def test_positions_cover_parentheses() -> None:
    parsed = parse_condition("  (steps.a.status == 'success')  and true")
    assert parsed.ast is not None
    assert (parsed.ast.offset, parsed.ast.length) == (2, 39)
    first = parsed.ast.operands[0]  # type: ignore[union-attr]
    assert (first.offset, first.length) == (2, 29)


def test_to_ir_refuses_an_ast_with_errors() -> None:
    with pytest.raises(ValueError, match="errors"):
        to_json(Invalid(offset=0, length=1))


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # syntax
        ("", [("condition-syntax", 0, 1, "unexpected end of condition, expected a value")]),
        (
            "steps.a.exit_code ==",
            [("condition-syntax", 20, 1, "unexpected end of condition, expected a value")],
        ),
        (
            "(steps.a.attempts > 1",
            [
                (
                    "condition-syntax",
                    21,
                    1,
                    "unexpected end of condition, expected `and`, `or` or `)`",
                )
            ],
        ),
        (
            "steps.a.attempts > 1)",
            [
                (
                    "condition-syntax",
                    20,
                    1,
                    "unexpected `)`, expected `and`, `or` or end of condition",
                )
            ],
        ),
        (
            "steps.a.attempts > (",
            [("condition-syntax", 20, 1, "unexpected end of condition, expected a value")],
        ),
        ("( )", [("condition-syntax", 2, 1, "unexpected `)`, expected a value")]),
        (
            "steps.a.attempts > 1 and )",
            [("condition-syntax", 25, 1, "unexpected `)`, expected a value")],
        ),
        (
            "0 < steps.a.attempts < 3",
            [
                (
                    "condition-syntax",
                    21,
                    1,
                    "unexpected `<`, expected `and`, `or` or end of condition",
                )
            ],
        ),
        (
            "steps.a.exit_code = 0",
            [
                (
                    "condition-syntax",
                    18,
                    1,
                    "unexpected character `=`, expected a comparison operator, `in`, `not in`,"
                    " `and`, `or` or end of condition",
                )
            ],
        ),
        (
            "steps.a.status == 'success",
            [("condition-syntax", 18, 1, "unterminated string")],
        ),
        (
            "steps.a.status in ['success' 'failed']",
            [("condition-syntax", 29, 8, "unexpected `'failed'`, expected `,` or `]`")],
        ),
        (
            "steps.a.status in [steps.b.status]",
            [
                (
                    "condition-syntax",
                    19,
                    14,
                    "unexpected `steps.b.status`, expected a literal or `]`",
                )
            ],
        ),
        (
            "steps.a.status not 'x'",
            [("condition-syntax", 19, 3, "unexpected `'x'`, expected `in`")],
        ),
        (
            "['success'] == steps.a.status",
            [("condition-syntax", 0, 1, "unexpected `[`, expected a value")],
        ),
        (
            "true AND true",
            [
                (
                    "condition-syntax",
                    5,
                    3,
                    "unexpected `AND`, expected a comparison operator, `in`, `not in`, `and`,"
                    " `or` or end of condition",
                )
            ],
        ),
        # references and literals
        (
            "steps.a.stauts == 'failed'",
            [("condition-unknown-attribute", 8, 6, "unknown attribute `stauts` of step `a`")],
        ),
        (
            "steps.build.linux.code == 1",
            [
                (
                    "condition-unknown-attribute",
                    18,
                    4,
                    "unknown attribute `code` of step `build.linux`",
                )
            ],
        ),
        ("steps.a == 1", [("condition-bad-reference", 0, 7, "`steps.a` is missing an attribute")]),
        (
            "steps.status == 'x'",
            [("condition-bad-reference", 0, 12, "`steps.status` is missing the step id")],
        ),
        (
            "steps.-a.status == 'x'",
            [("condition-bad-reference", 0, 15, "`-a` is not a valid step id")],
        ),
        (
            "env.1X == 'x'",
            [("condition-bad-reference", 0, 6, "`1X` is not a valid environment variable name")],
        ),
        (
            "env.X == yes",
            [
                (
                    "condition-bad-reference",
                    9,
                    3,
                    "unknown name `yes`: a value is `steps.<id>.<attr>`, `params.NAME`, `steps.<id>.outputs.NAME`, `env.NAME` or a literal",
                )
            ],
        ),
        (
            "env.X == 'C:\\bin'",
            [("condition-bad-literal", 12, 2, "unknown escape `\\b` in string")],
        ),
        (
            "steps.a.exit_code == 99999999999999999999",
            [("condition-bad-literal", 21, 20, "number `99999999999999999999` is out of range")],
        ),
        (
            "steps.a.duration_sec > 1e999",
            [("condition-bad-literal", 23, 5, "number `1e999` is out of range")],
        ),
        # types
        (
            "steps.a.status == 'succes'",
            [("condition-unknown-status", 18, 8, "'succes' is not a step status")],
        ),
        (
            "'Success' != prev.a.status",
            [("condition-unknown-status", 0, 9, "'Success' is not a step status")],
        ),
        (
            "steps.a.status in ['success', 'running']",
            [
                (
                    "condition-unknown-status",
                    30,
                    9,
                    "'running' is never seen by a condition: the steps it reads have all finished",
                )
            ],
        ),
        (
            "steps.a.exit_code == '1'",
            [
                (
                    "condition-type-mismatch",
                    0,
                    24,
                    "type mismatch: `steps.a.exit_code` is an integer or null, `'1'` is a"
                    " string; `==` is always false",
                )
            ],
        ),
        (
            "steps.a.status != 0",
            [
                (
                    "condition-type-mismatch",
                    0,
                    19,
                    "type mismatch: `steps.a.status` is a status, `0` is a number; `!=` is"
                    " always true",
                )
            ],
        ),
        (
            "env.RETRIES == 3",
            [
                (
                    "condition-type-mismatch",
                    0,
                    16,
                    "type mismatch: `env.RETRIES` is a string or null, `3` is a number; `==` is"
                    " always false",
                )
            ],
        ),
        (
            "(steps.a.attempts > 1) == 'true'",
            [
                (
                    "condition-type-mismatch",
                    0,
                    32,
                    "type mismatch: `(steps.a.attempts > 1)` is a boolean, `'true'` is a"
                    " string; `==` is always false",
                )
            ],
        ),
        (
            "steps.a.attempts == null",
            [
                (
                    "condition-type-mismatch",
                    0,
                    24,
                    "type mismatch: `steps.a.attempts` is an integer, `null` is null; `==` is"
                    " always false",
                )
            ],
        ),
        (
            "steps.a.exit_code in [0, '1']",
            [
                (
                    "condition-type-mismatch",
                    25,
                    3,
                    "type mismatch: `steps.a.exit_code` is an integer or null, list item `'1'`"
                    " is a string; it never matches",
                )
            ],
        ),
        (
            "steps.a.status < 'failed'",
            [
                (
                    "condition-invalid-ordering",
                    0,
                    14,
                    "`<` compares numbers, but `steps.a.status` is a status",
                )
            ],
        ),
        (
            "steps.a.exit_code >= null",
            [("condition-invalid-ordering", 21, 4, "`>=` compares numbers, but `null` is null")],
        ),
        (
            "env.N > 2",
            [
                (
                    "condition-invalid-ordering",
                    0,
                    5,
                    "`>` compares numbers, but `env.N` is a string or null",
                )
            ],
        ),
        (
            "steps.a.status in 'failed'",
            [
                (
                    "condition-in-needs-list",
                    18,
                    8,
                    "`in` needs a list on its right, but `'failed'` is a string",
                )
            ],
        ),
        (
            "steps.a.status not in env.OK",
            [
                (
                    "condition-in-needs-list",
                    22,
                    6,
                    "`not in` needs a list on its right, but `env.OK` is a string or null",
                )
            ],
        ),
        (
            "steps.a.status",
            [("condition-not-boolean", 0, 14, "`steps.a.status` is a status, not true or false")],
        ),
        ("null", [("condition-not-boolean", 0, 4, "`null` is null, not true or false")]),
        (
            "steps.a.exit_code == 0 and env.CI",
            [
                (
                    "condition-not-boolean",
                    27,
                    6,
                    "the operand of `and` must be true or false, but `env.CI` is a string or null",
                )
            ],
        ),
        (
            "not 'false'",
            [
                (
                    "condition-not-boolean",
                    4,
                    7,
                    "the operand of `not` must be true or false, but `'false'` is a string",
                )
            ],
        ),
    ],
)
def test_error(text: str, expected: list[tuple[str, int, int, str]]) -> None:
    assert errors(text) == expected


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("steps.a.stauts == 'x'", "did you mean `status`? attributes are status, exit_code,"),
        ("steps.a.status == 'succes'", "did you mean 'success'? statuses are success, failed,"),
        ("steps.a.status == 'FAILED'", "did you mean 'failed'?"),
        ("0 < steps.a.attempts < 3", "comparisons do not chain: join two comparisons with `and`"),
        ("steps.a.exit_code = 0", "use `==` to compare"),
        ("true && true", "write `and`"),
        ("(true or (false)", "every `(` needs a matching `)`"),
        ("true || true", "write `or`"),
        ("true and True", "keywords are lowercase: write `true`"),
        ("true AND true", "keywords are lowercase: write `and`"),
        ("stpes.a.status == 'x'", "did you mean `steps.a.status`?"),
        ("env.X == yes", "strings need quotes: write `'yes'`"),
        ("steps.a.exit_code == '1'", "write the number without quotes: `1`"),
        ("env.RETRIES == 3", "environment values are strings: write `'3'`"),
        ("(steps.a.attempts > 1) == 'true'", "write `true` without quotes"),
        ("steps.a.status < 'failed'", "statuses have no order"),
        ("steps.a.status", "compare it, e.g. `steps.a.status == 'success'`"),
        ("steps.a.exit_code", "compare it, e.g. `steps.a.exit_code == 0`"),
        ("env.CI", "compare it, e.g. `env.CI == 'true'`"),
        ("'true'", "write `true` without quotes"),
        ("steps.a.status in 'failed'", "write a list such as `['success', 'skipped']`"),
    ],
)
def test_hint(text: str, hint: str) -> None:
    parsed = parse_condition(text)
    assert parsed.errors
    assert (parsed.errors[0].hint or "").startswith(hint)


def test_every_mistake_is_reported_in_source_order() -> None:
    text = "steps.a.stauts == 1 or steps.b.status == 'succes' or env.X == 2"
    assert [(e.code, e.offset) for e in parse_condition(text).errors] == [
        ("condition-unknown-attribute", 8),
        ("condition-unknown-status", 41),
        ("condition-type-mismatch", 53),
    ]


def test_parsed_condition_has_an_ast_or_errors() -> None:
    good, bad = parse_condition(SEED), parse_condition("steps.a")
    assert good.ast is not None and good.errors == []
    assert bad.ast is None and bad.errors


# --- limits and hostile input ------------------------------------------------------------------


def too_complex(text: str) -> str:
    parsed = parse_condition(text)
    assert parsed.ast is None
    assert [e.code for e in parsed.errors] == ["condition-too-complex"]
    return parsed.errors[0].message


def test_ten_thousand_nested_parentheses() -> None:
    assert "characters long" in too_complex("(" * 10_000 + "true" + ")" * 10_000)


def test_paren_depth_limit() -> None:
    ok = "(" * MAX_PAREN_DEPTH + "true" + ")" * MAX_PAREN_DEPTH
    assert ir(ok) == lit(True)
    deep = "(" + ok + ")"
    assert too_complex(deep) == f"more than {MAX_PAREN_DEPTH} nested parentheses"
    assert parse_condition(deep).errors[0].offset == MAX_PAREN_DEPTH


def test_parentheses_inside_strings_do_not_count() -> None:
    assert ir("env.X == '" + "(" * 500 + "'")["right"] == lit("(" * 500)


def test_nesting_limit() -> None:
    ok = "not " * MAX_NESTING_DEPTH + "true"
    assert ir(ok)["kind"] == "not"
    assert too_complex("not " + ok) == f"condition nests more than {MAX_NESTING_DEPTH} levels deep"
    # Comparisons count too: each round adds a `not` and a comparison, but one parenthesis.
    nested = "true"
    for _ in range(MAX_NESTING_DEPTH // 2 + 1):
        nested = f"not ({nested}) == true"
    assert "levels deep" in too_complex(nested)


def test_a_megabyte_string() -> None:
    text = "env.X == '" + "x" * 1_000_000 + "'"
    assert too_complex(text) == f"condition is {len(text)} characters long; the limit is 4096"


def test_a_hundred_thousand_and_terms() -> None:
    assert "characters long" in too_complex(" and ".join(["true"] * 100_000))


def test_long_flat_conditions_within_the_limit_parse() -> None:
    terms = ["steps.a.exit_code == 0"] * 150
    text = " and ".join(terms)
    assert len(text) <= MAX_CONDITION_LENGTH
    assert len(ir(text)["operands"]) == 150
    chain = " or ".join(["not true"] * 300)
    assert len(ir(chain)["operands"]) == 300


def test_deep_not_chain_within_the_length_limit() -> None:
    assert "levels deep" in too_complex("not " * 1000 + "true")


_ALPHABET = st.sampled_from(
    [
        "steps.a.status",
        "prev.b.exit_code",
        "env.X",
        "'success'",
        '"x\\n"',
        "1",
        "-2.5",
        "true",
        "null",
        " and ",
        " or ",
        "not ",
        " in ",
        " not in ",
        "==",
        "!=",
        "<",
        ">=",
        "(",
        ")",
        "[",
        "]",
        ",",
        "'",
        "\\",
        "=",
        "&",
        "é",
        " ",
        "\n",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_ALPHABET, max_size=30).map("".join))
def test_token_soup_never_raises(text: str) -> None:
    parsed = parse_condition(text)
    assert (parsed.ast is None) == bool(parsed.errors)
    for e in parsed.errors:
        assert e.code in CODES
        assert 0 <= e.offset <= len(text)
    if parsed.ast is not None:
        to_json(parsed.ast)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_never_raises(text: str) -> None:
    parsed = parse_condition(text)
    assert (parsed.ast is None) == bool(parsed.errors)


# --- the fast parser against Lark's ------------------------------------------------------------

# Every terminal, the spellings where lexing could go two ways, and characters no terminal takes.
_LEXEMES = st.sampled_from(
    [
        "steps.a.status",
        "prev.b-2.x.exit_code",
        "steps.a.outputs.o",
        "steps.a.attempts",
        "steps..status",
        "env.X",
        "env.9",
        "params.p",
        "foo",
        "notes",
        "in_",
        "True",
        "AND",
        "_",
        "'success'",
        "'skipped'",
        "'sucess'",
        '"x\\n"',
        "'\\q'",
        "'",
        '"',
        "0",
        "-1",
        "007",
        "1.",
        ".5",
        "-2.5e3",
        "1e5",
        "1e999",
        "99999999999999999999",
        "-",
        ".",
        "true",
        "false",
        "null",
        "and",
        "or",
        "not",
        "in",
        "==",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "=",
        "!",
        "(",
        ")",
        "[",
        "]",
        ",",
        "\\",
        "&",
        "é",
        " ",
        "\t",
        "\n",
        "\r",
        "\f",
    ]
)


_Outcome = tuple[object, list[ConditionError]]


def _both_parsers(text: str) -> tuple[_Outcome, _Outcome]:
    """(AST or None, errors) from the fast parser; (AST or syntax error, errors) from Lark's."""
    fast_actions, lark_actions = TreeBuilder(), TreeBuilder()
    fast = conditions_fast.parse(text, fast_actions)
    reference = conditions_lark.parse(text, lark_actions)
    return (fast, fast_actions.errors), (reference, lark_actions.errors)


def _assert_parsers_agree(text: str) -> None:
    """The fast parser must build Lark's AST (repr tells 1 from 1.0 and True) and the same
    reference and literal errors. Refusing what Lark accepts would only cost time, but the
    texts tested here are simple enough that it must not do that either."""
    (fast, fast_errors), (reference, reference_errors) = _both_parsers(text)
    if isinstance(reference, ConditionError):
        assert fast is None
    else:
        assert repr(fast) == repr(reference)
        assert fast_errors == reference_errors


@settings(max_examples=1500, deadline=None)
@given(st.lists(_LEXEMES, max_size=24).map("".join))
def test_the_fast_parser_agrees_with_lark_on_token_soup(text: str) -> None:
    _assert_parsers_agree(text)


_SPACE = st.sampled_from(["", " ", "  ", "\n", "\t "])
_OPERAND = st.sampled_from(
    ["steps.a.status", "steps.b.exit_code", "env.X", "params.p", "steps.a.outputs.o", "bad"]
)
_VALUE = st.sampled_from(["'success'", "'x\\q'", "1", "-2", "1.5", "1e999", "true", "null"])


_COMPARISON = st.one_of(
    _OPERAND,
    _VALUE,
    st.tuples(_OPERAND, st.sampled_from(["==", "!=", "<", ">="]), _VALUE).map(" ".join),
    st.tuples(_OPERAND, st.sampled_from(["in", "not in"]), st.lists(_VALUE, max_size=3)).map(
        lambda t: f"{t[0]} {t[1]} [{', '.join(t[2])}]"
    ),
)
_CONDITION = st.recursive(
    _COMPARISON,
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from([" and ", " or ", "and", " or\n"]), inner).map("".join),
        inner.map(lambda c: f"not {c}"),
        st.tuples(_SPACE, inner, _SPACE).map(lambda t: f"({t[0]}{t[1]}{t[2]})"),
    ),
    max_leaves=12,
)


@settings(max_examples=1500, deadline=None)
@given(_CONDITION)
def test_the_fast_parser_agrees_with_lark_on_generated_conditions(text: str) -> None:
    _assert_parsers_agree(text)


def test_the_fast_parsers_token_table_is_generated_from_the_grammar() -> None:
    """planc.condition_tokens is what `python -m planc.conditions_lark` writes: Lark's own
    lexer order and keywords for grammar/condition.lark, never a hand copy."""
    generated = Path(condition_tokens.__file__ or "").read_text(encoding="utf-8")
    assert generated == conditions_lark.token_table(), "run `python -m planc.conditions_lark`"


def test_the_fast_parser_leaves_deep_parentheses_to_lark() -> None:
    text = "(" * 40 + "steps.a.exit_code == 0" + ")" * 40
    (fast, _), (reference, _) = _both_parsers(text)
    assert fast is None
    assert isinstance(reference, Compare)
    assert ir(text)["kind"] == "compare"


def test_the_fast_parser_handles_the_common_forms() -> None:
    for text in (
        SEED,
        "steps.a.status in ['success', 'skipped',] and not (env.X != 'yes' or params.p == 1)",
        "not not steps.a.exit_code >= -1.5e3",
        "steps.a.status not in []",
    ):
        fast, _ = _both_parsers(text)[0]
        assert fast is not None


# --- the rule over hand-built plans --------------------------------------------------------------

CONDITION_COL = 20  # where a condition's characters start on its line, in these fake documents


def to_node(value: Any, lines: itertools.count[int]) -> Node:
    """A dict/list/scalar as positioned nodes: each node on its own fake line."""
    span = Span(next(lines), 5)
    if isinstance(value, dict):
        entries = tuple(
            (ScalarNode.at(key, Span(next(lines), 3)), to_node(item, lines))
            for key, item in value.items()
        )
        return MapNode(entries, span)
    if isinstance(value, list):
        return SeqNode(tuple(to_node(item, lines) for item in value), span)
    return ScalarNode.at(value, span, CONDITION_COL if isinstance(value, str) else None)


def run_rule(*steps: dict[str, Any]) -> list[Diagnostic]:
    plan = {"plan_id": "p", "steps": [{"command": "true", **s} for s in steps]}
    document = Document("plan.yaml", "", to_node(plan, itertools.count(1)))
    model = build_model(document)
    return list(rule.check(RuleContext(model, build_graph(model))))


def codes(*steps: dict[str, Any]) -> list[str]:
    return [d.code for d in run_rule(*steps)]


A = {"id": "a"}


def test_rule_ignores_steps_without_a_condition() -> None:
    assert run_rule(A, {"id": "b", "depends_on": ["a"], "condition": None}, {"id": "c"}) == []


def test_rule_places_language_errors_in_the_file() -> None:
    [d] = run_rule(A, {"id": "b", "depends_on": ["a"], "condition": "steps.a.stauts == 'x'"})
    assert d.code == "condition-unknown-attribute"
    assert d.severity is Severity.ERROR
    assert (d.span.col, d.span.end_col) == (CONDITION_COL + 8, CONDITION_COL + 14)
    assert d.span.line == d.span.end_line
    assert d.hint is not None and d.hint.startswith("did you mean `status`?")


def test_rule_falls_back_to_the_value_span_without_text_col() -> None:
    plan = {
        "plan_id": "p",
        "steps": [
            {"id": "a", "command": "x"},
            {"id": "b", "command": "x", "depends_on": ["a"], "condition": "steps.a"},
        ],
    }
    root = to_node(plan, itertools.count(1))
    assert isinstance(root, MapNode)
    steps_node = root.get("steps")
    assert isinstance(steps_node, SeqNode)
    b = steps_node.items[1]
    assert isinstance(b, MapNode)
    entries = tuple(
        (k, ScalarNode.at(v.value, v.span) if k.value == "condition" else v)  # type: ignore[union-attr]
        for k, v in b.entries
    )
    new_b = MapNode(entries, b.span)
    root = MapNode(
        (
            root.entries[0],
            (root.entries[1][0], SeqNode((steps_node.items[0], new_b), steps_node.span)),
        ),
        root.span,
    )
    model = build_model(Document("plan.yaml", "", root))
    [d] = rule.check(RuleContext(model, build_graph(model)))
    condition = new_b.get("condition")
    assert condition is not None
    assert d.span == condition.span


def test_unknown_step_with_suggestion() -> None:
    [d] = run_rule(
        {"id": "build"},
        {"id": "b", "depends_on": ["build"], "condition": "steps.biuld.status == 'success'"},
    )
    assert d.code == "condition-unknown-step"
    assert d.message == "the condition of `b` reads `biuld`, which is not a step of this plan"
    assert d.hint == "did you mean `build`?"
    # The caret is on the id, past `steps.`.
    assert (d.span.col, d.span.end_col) == (CONDITION_COL + 6, CONDITION_COL + 11)


def test_not_upstream() -> None:
    [d] = run_rule(
        A,
        {"id": "b"},
        {"id": "c", "depends_on": ["a"], "condition": "prev.b.status == 'success'"},
    )
    assert d.code == "condition-not-upstream"
    assert d.message == (
        "the condition of `c` reads `b`, which `c` does not depend on, so `b` may not have finished"
    )
    assert d.hint == "add `b` to depends_on of `c`"
    assert (d.span.col, d.span.end_col) == (CONDITION_COL + 5, CONDITION_COL + 6)


def test_self_reference_is_not_upstream() -> None:
    [d] = run_rule(A, {"id": "b", "depends_on": ["a"], "condition": "steps.b.attempts > 1"})
    assert d.code == "condition-not-upstream"
    assert d.message == "the condition of `b` reads `b` itself, which has not run yet"


def test_transitive_upstream_is_fine() -> None:
    assert (
        codes(
            A,
            {"id": "b", "depends_on": ["a"]},
            {"id": "c", "depends_on": ["b"], "condition": "steps.a.exit_code == 0"},
        )
        == []
    )


def test_never_true_under_all_success() -> None:
    [d] = run_rule(A, {"id": "b", "depends_on": ["a"], "condition": "steps.a.status == 'failed'"})
    assert d.code == "condition-never-true"
    assert d.severity is Severity.ERROR
    assert d.message == (
        "the condition of `b` can never be true under trigger_rule: all_success, so the step"
        " would always be skipped"
    )
    assert d.hint == (
        "under trigger_rule: all_success this step only runs when `a` succeeded; use"
        " trigger_rule: all_done or one_failed to react to failures"
    )


def test_seed_condition_is_always_true() -> None:
    [d] = run_rule(
        {"id": "run_tests"},
        {
            "id": "safe_commit",
            "depends_on": ["run_tests"],
            "on_failure": "continue",
            "condition": SEED,
        },
    )
    assert d.code == "condition-always-true"
    assert d.severity is Severity.WARNING
    assert d.message == (
        "the condition of `safe_commit` is always true under trigger_rule: all_success"
    )
    assert d.hint == (
        "under trigger_rule: all_success this step only runs when `run_tests` succeeded, so the"
        " condition changes nothing; remove it"
    )
    assert (d.span.col, d.span.end_col) == (CONDITION_COL, CONDITION_COL + len(SEED))


@pytest.mark.parametrize("policy", ["continue", "fallback_step"])
def test_tolerated_failures_are_visible_under_all_success(policy: str) -> None:
    a = {"id": "a", "on_failure": policy}
    assert (
        codes(a, {"id": "b", "depends_on": ["a"], "condition": "steps.a.status == 'failed'"}) == []
    )
    [d] = run_rule(a, {"id": "b", "depends_on": ["a"], "condition": "steps.a.status == 'skipped'"})
    assert d.hint is not None
    assert "when `a` ended success, failed or timed_out;" in d.hint


def test_none_failed_adds_skipped() -> None:
    b = {"id": "b", "depends_on": ["a"], "trigger_rule": "none_failed"}
    assert codes(A, {**b, "condition": "steps.a.status == 'skipped'"}) == []
    assert codes(A, {**b, "condition": "steps.a.status in ['success', 'skipped']"}) == [
        "condition-always-true"
    ]
    assert codes(A, {**b, "condition": "steps.a.status == 'cancelled'"}) == ["condition-never-true"]


def test_all_done_sees_everything() -> None:
    b = {"id": "b", "depends_on": ["a"], "trigger_rule": "all_done"}
    for status in ("success", "failed", "timed_out", "skipped", "cancelled"):
        assert codes(A, {**b, "condition": f"steps.a.status == '{status}'"}) == []
    [d] = run_rule(A, {**b, "condition": "steps.a.status in []"})
    assert d.code == "condition-never-true"
    assert d.hint == "no outcome of `a` makes it true"


def test_one_failed_and_one_success_with_a_single_dependency() -> None:
    failed = {"id": "b", "depends_on": ["a"], "trigger_rule": "one_failed"}
    assert codes(A, {**failed, "condition": "steps.a.status == 'timed_out'"}) == []
    # An upstream failure, or an abort it caused, counts as a failure too (semantics.md §1).
    every_failure = "['failed', 'timed_out', 'upstream_failed', 'cancelled']"
    assert codes(A, {**failed, "condition": f"steps.a.status in {every_failure}"}) == [
        "condition-always-true"
    ]
    assert codes(A, {**failed, "condition": "steps.a.status in ['failed', 'timed_out']"}) == []
    [d] = run_rule(A, {**failed, "condition": "steps.a.status == 'success'"})
    assert d.hint == (
        "under trigger_rule: one_failed this step only runs when `a` ended failed, timed_out,"
        " upstream_failed or cancelled; use trigger_rule: all_done to react to any outcome"
    )
    success = {"id": "b", "depends_on": ["a"], "trigger_rule": "one_success"}
    assert codes(A, {**success, "condition": "steps.a.status != 'success'"}) == [
        "condition-never-true"
    ]


def test_one_failed_with_several_dependencies_knows_nothing() -> None:
    b = {"id": "b", "depends_on": ["a", "x"], "trigger_rule": "one_failed"}
    assert codes(A, {"id": "x"}, {**b, "condition": "steps.a.status == 'success'"}) == []


def test_abstract_evaluation_through_and_or_not() -> None:
    b = {"id": "b"}
    c = {"id": "c", "depends_on": ["a", "b"]}
    ok = "steps.a.status == 'success'"
    bad = "steps.b.status == 'failed'"
    unknown = "steps.a.exit_code == 0"
    assert codes(A, b, {**c, "condition": f"{ok} and {bad}"}) == ["condition-never-true"]
    assert codes(A, b, {**c, "condition": f"{ok} or {bad}"}) == ["condition-always-true"]
    assert codes(A, b, {**c, "condition": f"not ({ok})"}) == ["condition-never-true"]
    assert codes(A, b, {**c, "condition": f"{unknown} and {ok}"}) == []
    assert codes(A, b, {**c, "condition": f"{unknown} and {bad}"}) == ["condition-never-true"]
    assert codes(A, b, {**c, "condition": f"{unknown} or {ok}"}) == ["condition-always-true"]
    assert codes(A, b, {**c, "condition": f"{unknown} or {bad}"}) == []
    assert codes(A, b, {**c, "condition": "'success' == steps.a.status"}) == [
        "condition-always-true"
    ]
    assert codes(A, b, {**c, "condition": "steps.a.status not in ['failed']"}) == [
        "condition-always-true"
    ]
    # Literal `true`/`false` are taken as written on purpose.
    assert codes(A, b, {**c, "condition": "false"}) == []


def test_only_direct_dependencies_are_reasoned_about() -> None:
    assert (
        codes(
            A,
            {"id": "b", "depends_on": ["a"]},
            {"id": "c", "depends_on": ["b"], "condition": "steps.a.status == 'failed'"},
        )
        == []
    )


def test_reference_errors_suppress_the_trigger_rule_verdict() -> None:
    assert codes(
        A,
        {
            "id": "b",
            "depends_on": ["a"],
            "condition": "steps.a.status == 'failed' or steps.z.status == 'success'",
        },
    ) == ["condition-unknown-step"]


def test_condition_ir() -> None:
    assert rule.condition_ir(SEED) == {"source": SEED, "ast": ir(SEED)}
    assert rule.condition_ir("steps.a.stauts == 'x'") is None


# --- codes ---------------------------------------------------------------------------------------


def test_every_emitted_code_is_documented() -> None:
    modules = (conditions_module, condition_syntax, conditions_fast, conditions_lark, rule)
    sources = [Path(module.__file__ or "") for module in modules]
    emitted = {
        code
        for source in sources
        for code in re.findall(r'"(condition-[a-z-]+)"', source.read_text(encoding="utf-8"))
    }
    assert emitted == set(CODES)
    for summary, explanation in CODES.values():
        assert summary and "\n" not in summary
        assert "condition" in explanation


def test_docs_show_the_grammar_and_every_code() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "conditions.md").read_text(encoding="utf-8")
    assert files("plan_grammar").joinpath("condition.lark").read_text() in docs
    for code in CODES:
        assert f"### `{code}`" in docs
