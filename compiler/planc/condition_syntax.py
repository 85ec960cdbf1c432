"""The condition language's syntax tree, and the builder both of its parsers share.

Every node knows where it was written (offset and length into the condition text). The two
parsers, `planc.conditions_fast` (hand-written, for speed) and `planc.conditions_lark` (the
reference, Lark's parser of grammar/condition.lark), build the tree through one `TreeBuilder`,
which also reports bad references and literals: the text parses, but a name or a number in it
is wrong. `planc.conditions` drives the parsers and checks the tree.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

STATUSES = ("success", "failed", "timed_out", "skipped", "upstream_failed", "cancelled")
ATTRIBUTES = ("status", "exit_code", "attempts", "duration_sec")
STEP_ID_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,127}")
ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
OUTPUT_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
KEYWORDS = ("and", "or", "not", "in", "true", "false", "null")

# Signed 64-bit: what every JSON consumer of the IR can hold exactly.
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "t": "\t", "r": "\r"}

LiteralValue = str | int | float | bool | None


@dataclass(frozen=True)
class Or:
    offset: int
    length: int
    operands: tuple[Expr, ...]


@dataclass(frozen=True)
class And:
    offset: int
    length: int
    operands: tuple[Expr, ...]


@dataclass(frozen=True)
class Not:
    offset: int
    length: int
    operand: Expr


@dataclass(frozen=True)
class Compare:
    offset: int
    length: int
    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True)
class StepRef:
    """`steps.<id>.<attr>` or its alias `prev.<id>.<attr>`."""

    offset: int
    length: int
    step: str
    attr: str


@dataclass(frozen=True)
class EnvRef:
    offset: int
    length: int
    name: str


@dataclass(frozen=True)
class ParamRef:
    """`params.NAME` (docs/dataflow.md)."""

    offset: int
    length: int
    name: str


@dataclass(frozen=True)
class OutputRef:
    """`steps.<id>.outputs.NAME`: a value the step wrote to $PLAN_OUTPUT, or null."""

    offset: int
    length: int
    step: str
    name: str


@dataclass(frozen=True)
class Literal:
    offset: int
    length: int
    value: LiteralValue


@dataclass(frozen=True)
class ListLit:
    offset: int
    length: int
    items: tuple[Literal, ...]


@dataclass(frozen=True)
class Invalid:
    """Stands in for a reference or literal already reported as an error, so checking can go on
    and report the other mistakes too. Never part of a `ParsedCondition.ast`."""

    offset: int
    length: int


Expr = (
    Or | And | Not | Compare | StepRef | EnvRef | ParamRef | OutputRef | Literal | ListLit | Invalid
)


@dataclass(frozen=True)
class ConditionError:
    offset: int
    length: int
    code: str
    message: str
    hint: str | None = None


def children(node: Expr) -> tuple[Expr, ...]:
    if isinstance(node, Or | And):
        return node.operands
    if isinstance(node, Not):
        return (node.operand,)
    if isinstance(node, Compare):
        return (node.left, node.right)
    if isinstance(node, ListLit):
        return node.items
    return ()


def walk(node: Expr) -> Iterator[Expr]:
    """Every node, pre-order, left to right; iterative so any depth is safe."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(children(current)))


class TreeBuilder:
    """Makes the node of each grammar rule; collects the errors of bad references and literals."""

    def __init__(self) -> None:
        self.errors: list[ConditionError] = []

    def _error(self, offset: int, length: int, code: str, message: str, hint: str | None) -> None:
        self.errors.append(ConditionError(offset, length, code, message, hint))

    def int_(self, written: str, start: int) -> Expr:
        value = int(written)
        if _INT_MIN <= value <= _INT_MAX:
            return Literal(start, len(written), value)
        return self._out_of_range(written, start)

    def float_(self, written: str, start: int) -> Expr:
        value = float(written)
        if math.isfinite(value):
            return Literal(start, len(written), value)
        return self._out_of_range(written, start)

    def _out_of_range(self, written: str, start: int) -> Expr:
        self._error(
            start,
            len(written),
            "condition-bad-literal",
            f"number `{clip(written)}` is out of range",
            "integers must fit in 64 bits and floats must be finite",
        )
        return Invalid(start, len(written))

    def string(self, written: str, start: int) -> Expr:
        """`written` with its quotes."""
        raw = written[1:-1]
        if "\\" not in raw:
            return Literal(start, len(written), raw)  # no escape: the value is as written
        chars: list[str] = []
        i = 0
        while i < len(raw):
            ch = raw[i]
            if ch == "\\":
                escaped = raw[i + 1]
                if escaped not in _ESCAPES:
                    self._error(
                        start + 1 + i,
                        2,
                        "condition-bad-literal",
                        f"unknown escape `\\{escaped}` in string",
                        "the escapes are \\\\ \\' \\\" \\n \\t \\r",
                    )
                    return Invalid(start, len(written))
                chars.append(_ESCAPES[escaped])
                i += 2
            else:
                chars.append(ch)
                i += 1
        return Literal(start, len(written), "".join(chars))

    def reference(self, path: str, start: int) -> Expr:
        head, dot, rest = path.partition(".")
        if dot and head in ("steps", "prev") and ".outputs." in rest:
            step, _, name = rest.partition(".outputs.")
            if STEP_ID_RE.fullmatch(step) and OUTPUT_NAME_RE.fullmatch(name):
                return OutputRef(start, len(path), step, name)
        if dot and head in ("steps", "prev"):
            return self._step_ref(path, start, rest)
        if dot and head == "params" and ENV_NAME_RE.fullmatch(rest):
            return ParamRef(start, len(path), rest)
        if dot and head == "env":
            return self._env_ref(path, start, rest)
        self._error(start, len(path), "condition-bad-reference", *_unknown_name(path))
        return Invalid(start, len(path))

    def _step_ref(self, path: str, start: int, rest: str) -> Expr:
        step, dot, attr = rest.rpartition(".")
        problem: tuple[str, str] | None = None
        if (not dot and rest in ATTRIBUTES) or (dot and not step):
            problem = (f"`{path}` is missing the step id", f"write `steps.<id>.{attr or rest}`")
        elif not dot or not attr:
            problem = (
                f"`{path}` is missing an attribute",
                f"write `{path.rstrip('.')}.status` (attributes: {', '.join(ATTRIBUTES)})",
            )
        elif not STEP_ID_RE.fullmatch(step):
            problem = (
                f"`{step}` is not a valid step id",
                "a step id starts with a letter or `_`; then letters, digits, `_`, `.`, `-`",
            )
        if problem is not None:
            self._error(start, len(path), "condition-bad-reference", *problem)
            return Invalid(start, len(path))
        if attr not in ATTRIBUTES:
            self._error(
                start + len(path) - len(attr),
                len(attr),
                "condition-unknown-attribute",
                f"unknown attribute `{clip(attr)}` of step `{step}`",
                did_you_mean(attr, ATTRIBUTES, "`") + f"attributes are {', '.join(ATTRIBUTES)}",
            )
            return Invalid(start, len(path))
        return StepRef(start, len(path), step, attr)

    def _env_ref(self, path: str, start: int, name: str) -> Expr:
        if ENV_NAME_RE.fullmatch(name):
            return EnvRef(start, len(path), name)
        self._error(
            start,
            len(path),
            "condition-bad-reference",
            f"`{clip(name)}` is not a valid environment variable name",
            "a name starts with a letter or `_`; then letters, digits and `_`",
        )
        return Invalid(start, len(path))


def end_of(node: Expr) -> int:
    return node.offset + node.length


def flatten(kind: type[Or] | type[And], left: Expr, right: Expr) -> Expr:
    """`a and b and c` is one `and` with three operands (the parser pairs them left to right)."""
    operands: list[Expr] = []
    for side in (left, right):
        operands.extend(side.operands if isinstance(side, kind) else (side,))
    return kind(left.offset, end_of(right) - left.offset, tuple(operands))


def compare(op: str, left: Expr, right: Expr) -> Expr:
    return Compare(left.offset, end_of(right) - left.offset, op, left, right)


def negate(start: int, operand: Expr) -> Expr:
    return Not(start, end_of(operand) - start, operand)


def parenthesised(inner: Expr, lpar: int, rpar: int) -> Expr:
    """Widen the inner node to cover its parentheses, so carets underline what was written."""
    return replace(inner, offset=lpar, length=rpar + 1 - lpar)


def list_literal(lsqb: int, rsqb: int, items: Sequence[object]) -> Expr:
    """Items already reported as bad literals (Invalid) are dropped: the AST is discarded."""
    literals = tuple(item for item in items if isinstance(item, Literal))
    return ListLit(lsqb, rsqb + 1 - lsqb, literals)


def clip(text: str, width: int = 30) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def did_you_mean(word: str, choices: tuple[str, ...], quote: str) -> str:
    """'did you mean `x`? ' or ''; case differences count as close."""
    lowered = {choice.lower(): choice for choice in choices}
    if word.lower() in lowered:
        return f"did you mean {quote}{lowered[word.lower()]}{quote}? "
    matches = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"did you mean {quote}{matches[0]}{quote}? " if matches else ""


def _unknown_name(path: str) -> tuple[str, str]:
    message = (
        f"unknown name `{clip(path)}`: a value is `steps.<id>.<attr>`, `params.NAME`,"
        " `steps.<id>.outputs.NAME`, `env.NAME` or a literal"
    )
    if path.lower() in KEYWORDS:
        return message, f"keywords are lowercase: write `{path.lower()}`"
    head, dot, rest = path.partition(".")
    suggestion = difflib.get_close_matches(
        head, ("steps", "prev", "env", "params"), n=1, cutoff=0.6
    )
    if dot and suggestion:
        return message, f"did you mean `{suggestion[0]}.{clip(rest)}`?"
    return message, "strings need quotes: write `'" + clip(path) + "'`"
