"""The invariant language: text → positioned AST → the IR's JSON AST (docs/invariants.md).

An invariant is `<step> requires <guard>`, `<step> after <guard>` or `never <step> when
<guard>`; the guard is a condition expression (`and`, `or`, `not`, parentheses) over terms
`<step>.<status>`. The grammar is grammar/invariant.lark, which imports the condition grammar's
expression rules, so the two languages cannot drift apart. Pure: plans and graphs are the
business of `planc.rules.invariants`. Never raises on any input text.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedInput

from planc.condition_syntax import ConditionError
from planrun.core.invariants import MATCHES

MAX_INVARIANT_LENGTH = 4096
MAX_NESTING_DEPTH = 100


@dataclass(frozen=True)
class Term:
    """`<step>.<status>`: the step ended with that status."""

    step: str
    status: str
    offset: int  # of the term in the text
    length: int


@dataclass(frozen=True)
class Not:
    operand: Guard


@dataclass(frozen=True)
class Junction:
    op: str  # "and" | "or"
    operands: tuple[Guard, ...]


Guard = Term | Not | Junction


@dataclass(frozen=True)
class Invariant:
    source: str
    kind: str  # requires | after | never
    step: str
    step_offset: int
    guard: Guard


@dataclass(frozen=True)
class Parsed:
    invariant: Invariant | None
    errors: tuple[ConditionError, ...] = ()


@cache
def _parser() -> Lark:
    return Lark.open_from_package(
        "plan_grammar", "invariant.lark", parser="lalr", lexer="basic", propagate_positions=True
    )


@cache
def parse_invariant(text: str) -> Parsed:
    if len(text) > MAX_INVARIANT_LENGTH:
        return _fail(0, 1, f"invariant is {len(text)} characters long; the limit is"
                     f" {MAX_INVARIANT_LENGTH}", "split it into several invariants")  # fmt: skip
    depth = max_depth = 0
    for char in text:
        depth += (char == "(") - (char == ")")
        max_depth = max(max_depth, depth)
    if max_depth > MAX_NESTING_DEPTH:
        return _fail(0, 1, "invariant is nested too deeply", "split it into several invariants")
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as exc:
        return _syntax_error(text, exc)
    head = [c for c in tree.children if isinstance(c, Token)]
    subject = next(t for t in head if t.type == "PATH")
    guard_tree = next(c for c in tree.children if isinstance(c, Tree))
    errors: list[ConditionError] = []
    guard = _guard(guard_tree.children[0], errors)
    if errors or guard is None:
        return Parsed(None, tuple(errors))
    start = subject.start_pos or 0
    return Parsed(Invariant(text, str(tree.data), str(subject), start, guard))


def _guard(node: Tree[Token] | Token, errors: list[ConditionError]) -> Guard | None:
    if isinstance(node, Token):  # never: every term is a tree; kept total for any grammar
        errors.append(_bad(node.start_pos or 0, len(node)))
        return None
    name = str(node.data).removeprefix("condition__")
    trees = [c for c in node.children if isinstance(c, Tree)]
    if name == "paren":
        return _guard(trees[0], errors)
    if name == "not_":
        operand = _guard(trees[0], errors)
        return None if operand is None else Not(operand)
    if name in ("and_", "or_"):
        op = name.rstrip("_")
        parts: list[Guard] = []
        for child in trees:
            part = _guard(child, errors)
            if isinstance(part, Junction) and part.op == op:
                parts.extend(part.operands)  # `a and b and c` is one node, as in conditions
            elif part is not None:
                parts.append(part)
        return Junction(op, tuple(parts)) if len(parts) == len(trees) else None
    start = node.meta.start_pos if not node.meta.empty else 0
    end = node.meta.end_pos if not node.meta.empty else start + 1
    if name == "reference":
        token = node.children[0]
        assert isinstance(token, Token)
        step, _, word = str(token).rpartition(".")
        if step and word in MATCHES:
            return Term(step, word, start, end - start)
        words = ", ".join(MATCHES)
        errors.append(
            ConditionError(
                start, end - start, "invariant-bad-term",
                f"`{token}` is not a term of an invariant: write `<step>.<status>`",
                f"the status is one of {words}",
            )
        )  # fmt: skip
        return None
    errors.append(_bad(start, end - start))
    return None


def _bad(offset: int, length: int) -> ConditionError:
    return ConditionError(
        offset, max(length, 1), "invariant-bad-term",
        "an invariant's guard is made of `<step>.<status>` terms with `and`, `or`, `not` and"
        " parentheses; comparisons and literals belong in a step's `condition`",
        "e.g. `push requires validate.success and not lint.failed`",
    )  # fmt: skip


def _syntax_error(text: str, exc: UnexpectedInput) -> Parsed:
    offset = min(exc.pos_in_stream if exc.pos_in_stream is not None else len(text), len(text))
    token = getattr(exc, "token", None)
    if isinstance(token, Token) and token.type == "$END":
        offset = len(text.rstrip())
    expected = sorted(getattr(exc, "expected", None) or ())
    words = {
        "PATH": "a step or a `<step>.<status>` term", "REQUIRES": "`requires`",
        "AFTER": "`after`", "WHEN": "`when`", "NEVER": "`never`", "RPAR": "`)`", "LPAR": "`(`",
        "AND": "`and`", "OR": "`or`", "NOT": "`not`", "$END": "the end of the invariant",
    }  # fmt: skip
    wanted = [words[e] for e in (x.removeprefix("condition__") for x in expected) if e in words]
    shown = " or ".join(dict.fromkeys(wanted))
    found = "the end of the invariant" if offset >= len(text.rstrip()) else f"`{text[offset]}`"
    message = f"invariant syntax error: expected {shown}, found {found}"
    if not shown:
        message = "invariant syntax error: the invariant ends too early (an unclosed `(`?)"
    hint = "write `<step> requires <guard>`, `<step> after <guard>` or `never <step> when <guard>`"
    return _fail(offset, 1, message, hint, "invariant-syntax")


def _fail(
    offset: int, length: int, message: str, hint: str, code: str = "invariant-too-complex"
) -> Parsed:
    return Parsed(None, (ConditionError(offset, length, code, message, hint),))


def to_ir(invariant: Invariant) -> dict[str, Any]:
    return {
        "source": invariant.source,
        "kind": invariant.kind,
        "step": invariant.step,
        "guard": guard_ir(invariant.guard),
    }


def guard_ir(guard: Guard) -> dict[str, Any]:
    if isinstance(guard, Term):
        return {"kind": "status", "step": guard.step, "status": guard.status}
    if isinstance(guard, Not):
        return {"kind": "not", "operand": guard_ir(guard.operand)}
    return {"kind": guard.op, "operands": [guard_ir(o) for o in guard.operands]}


def terms(guard: Guard) -> list[Term]:
    if isinstance(guard, Term):
        return [guard]
    if isinstance(guard, Not):
        return terms(guard.operand)
    return [t for operand in guard.operands for t in terms(operand)]
