"""The invariant language: text → positioned AST → the IR's JSON AST (docs/invariants.md).

An invariant is `<step> requires <guard>`, `<step> after <guard>` or `never <step> when
<guard>`; the guard is a condition expression (`and`, `or`, `not`, parentheses) over terms
`<step>.<status>`. The grammar is grammar/invariant.lark, which imports the condition grammar's
expression rules, so the two languages cannot drift apart. Pure: plans and graphs are the
business of `planc.rules.invariants`. Never raises on any input text.

Lark is imported and its parser built (~80 ms of a `planc check`) only for the invariants that
the fast path, a recursive descent over the same grammar, leaves to it: those with an error to
word, a literal or a comparison, or deep nesting. The fast path accepts only texts that Lark
accepts, into the same Invariant (tests compare the two).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from planc.condition_syntax import ConditionError
from planrun.core.byvalue import ByValue
from planrun.core.invariants import MATCHES

if TYPE_CHECKING:
    from collections.abc import Callable

    from lark import Lark, Token, Tree
    from lark.exceptions import UnexpectedInput

MAX_INVARIANT_LENGTH = 4096
MAX_NESTING_DEPTH = 100


@dataclass(frozen=True, eq=False, repr=False)
class Term(ByValue):
    """`<step>.<status>`: the step ended with that status."""

    step: str
    status: str
    offset: int  # of the term in the text
    length: int


@dataclass(frozen=True, eq=False, repr=False)
class Not(ByValue):
    operand: Guard


@dataclass(frozen=True, eq=False, repr=False)
class Junction(ByValue):
    op: str  # "and" | "or"
    operands: tuple[Guard, ...]


Guard = Term | Not | Junction


@dataclass(frozen=True, eq=False, repr=False)
class Invariant(ByValue):
    source: str
    kind: str  # requires | after | never
    step: str
    step_offset: int
    guard: Guard


@dataclass(frozen=True, eq=False, repr=False)
class Parsed(ByValue):
    invariant: Invariant | None
    errors: tuple[ConditionError, ...] = ()


@cache
def _parser() -> Lark:
    from lark import Lark

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
    fast = _Fast.parse(text)
    return Parsed(fast) if fast is not None else _parse_with_lark(text)


def _parse_with_lark(text: str) -> Parsed:
    from lark import Token, Tree
    from lark.exceptions import UnexpectedInput

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
    from lark import Token, Tree

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
        operands = [_guard(child, errors) for child in trees]
        if any(operand is None for operand in operands):
            return None  # a term that is not one: its error is in `errors`
        return _junction(name.rstrip("_"), [o for o in operands if o is not None])
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


def _junction(op: str, operands: list[Guard]) -> Guard:
    """`a and b and c` is one node, as in conditions, however the parts are grouped."""
    parts: list[Guard] = []
    for operand in operands:
        if isinstance(operand, Junction) and operand.op == op:
            parts.extend(operand.operands)
        else:
            parts.append(operand)
    return Junction(op, tuple(parts))


# The fast path's tokens: a name (the grammar's PATH), a parenthesis, spaces; any other
# character (a quote, a digit, an operator) is for Lark to read or to word as an error.
_FAST_TOKEN = re.compile(r"([A-Za-z_][A-Za-z0-9_.\-]*)|([()])|[ \t\r\n]+|(.)", re.DOTALL)
# Every keyword of the invariant grammar and of the condition grammar it imports: Lark lexes a
# keyword as a name and re-types it when the whole name is one.
_KEYWORDS = frozenset(("requires", "after", "never", "when", "and", "or", "not", "in", "true",
                       "false", "null"))  # fmt: skip
# Parentheses are the recursion: deeper nesting goes to Lark, whose parser is iterative.
_FAST_MAX_PARENS = 32
_END = ""


class _GiveUp(Exception):
    """The fast path does not accept the text: Lark decides."""


class _Fast:
    """Recursive descent over `start`, `or_expr` … `atom` of the grammars, for guards of terms."""

    def __init__(self, tokens: list[tuple[str, int]]) -> None:
        self.tokens = tokens
        self.next = 0

    @classmethod
    def parse(cls, text: str) -> Invariant | None:
        if text.count("(") > _FAST_MAX_PARENS:
            return None
        tokens: list[tuple[str, int]] = []
        for match in _FAST_TOKEN.finditer(text):
            if match.lastindex == 3:
                return None
            if match.lastindex is not None:
                tokens.append((match.group(), match.start()))
        tokens.append((_END, len(text)))
        try:
            return cls(tokens)._invariant(text)
        except _GiveUp:
            return None

    def _take(self) -> tuple[str, int]:
        token = self.tokens[self.next]
        self.next += 1
        return token

    def _name(self) -> tuple[str, int]:
        word, offset = self._take()
        if word in _KEYWORDS or word in (_END, "(", ")"):
            raise _GiveUp
        return word, offset

    def _invariant(self, text: str) -> Invariant:
        if self.tokens[0][0] == "never":
            self.next = 1
            step, offset = self._name()
            kind = "never" if self._take()[0] == "when" else ""
        else:
            step, offset = self._name()
            kind = self._take()[0]
            if kind == "never":
                raise _GiveUp
        if kind not in ("requires", "after", "never"):
            raise _GiveUp
        guard = self._or()
        if self._take()[0] != _END:
            raise _GiveUp
        return Invariant(text, kind, step, offset, guard)

    def _or(self) -> Guard:
        return self._joined("or", self._and)

    def _and(self) -> Guard:
        return self._joined("and", self._not)

    def _joined(self, word: str, operand: Callable[[], Guard]) -> Guard:
        """`operand (word operand)*`: one operand as it is, several joined by `word`."""
        operands = [operand()]
        while self.tokens[self.next][0] == word:
            self.next += 1
            operands.append(operand())
        return operands[0] if len(operands) == 1 else _junction(word, operands)

    def _not(self) -> Guard:
        negations = 0
        while self.tokens[self.next][0] == "not":
            self.next += 1
            negations += 1
        guard = self._atom()
        for _ in range(negations):
            guard = Not(guard)
        return guard

    def _atom(self) -> Guard:
        if self.tokens[self.next][0] == "(":
            self.next += 1
            inner = self._or()
            if self._take()[0] != ")":
                raise _GiveUp
            return inner
        word, offset = self._name()
        step, _, status = word.rpartition(".")
        if not step or status not in MATCHES:
            raise _GiveUp  # not a term: Lark places the error
        return Term(step, status, offset, len(word))


def _bad(offset: int, length: int) -> ConditionError:
    return ConditionError(
        offset, max(length, 1), "invariant-bad-term",
        "an invariant's guard is made of `<step>.<status>` terms with `and`, `or`, `not` and"
        " parentheses; comparisons and literals belong in a step's `condition`",
        "e.g. `push requires validate.success and not lint.failed`",
    )  # fmt: skip


def _syntax_error(text: str, exc: UnexpectedInput) -> Parsed:
    from lark import Token

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
