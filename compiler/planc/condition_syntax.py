"""The builder both parsers of the condition language share, and its positioned errors.

The tree is `planrun.core.conditions`' (the runtime's): every node the builder makes knows where it
was written (offset and length into the condition text). The two parsers,
`planc.conditions_fast` (hand-written, for speed) and `planc.conditions_lark` (the reference,
Lark's parser of grammar/condition.lark), build the tree through one `TreeBuilder`, which also
reports bad references and literals: the text parses, but a name or a number in it is wrong.
`planc.conditions` drives the parsers and checks the tree.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from planc import condition_tokens
from planrun.core.byvalue import ByValue
from planrun.core.conditions import (
    ATTRIBUTES,
    And,
    Compare,
    EnvRef,
    Expr,
    Invalid,
    ListLit,
    Literal,
    Not,
    Or,
    OutputRef,
    ParamRef,
    StepRef,
)
from planrun.core.ir_types import STEP_ID

ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
OUTPUT_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
KEYWORDS = tuple(condition_tokens.KEYWORDS)

# Signed 64-bit: what every JSON consumer of the IR can hold exactly.
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "t": "\t", "r": "\r"}


@dataclass(frozen=True, eq=False, repr=False)
class ConditionError(ByValue):
    offset: int
    length: int
    code: str
    message: str
    hint: str | None = None


class TreeBuilder:
    """Makes the node of each grammar rule; collects the errors of bad references and literals."""

    def __init__(self) -> None:
        self.errors: list[ConditionError] = []

    def _error(self, offset: int, length: int, code: str, message: str, hint: str | None) -> None:
        self.errors.append(ConditionError(offset, length, code, message, hint))

    def int_(self, written: str, start: int) -> Expr:
        value = int(written)
        if _INT_MIN <= value <= _INT_MAX:
            return Literal(value, offset=start, length=len(written))
        return self._out_of_range(written, start)

    def float_(self, written: str, start: int) -> Expr:
        value = float(written)
        if math.isfinite(value):
            return Literal(value, offset=start, length=len(written))
        return self._out_of_range(written, start)

    def _out_of_range(self, written: str, start: int) -> Expr:
        self._error(
            start,
            len(written),
            "condition-bad-literal",
            f"number `{clip(written)}` is out of range",
            "integers must fit in 64 bits and floats must be finite",
        )
        return Invalid(offset=start, length=len(written))

    def string(self, written: str, start: int) -> Expr:
        """`written` with its quotes."""
        raw = written[1:-1]
        if "\\" not in raw:
            return Literal(
                raw, offset=start, length=len(written)
            )  # no escape: the value is as written
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
                    return Invalid(offset=start, length=len(written))
                chars.append(_ESCAPES[escaped])
                i += 2
            else:
                chars.append(ch)
                i += 1
        return Literal("".join(chars), offset=start, length=len(written))

    def reference(self, path: str, start: int) -> Expr:
        head, dot, rest = path.partition(".")
        if dot and head in ("steps", "prev") and ".outputs." in rest:
            step, _, name = rest.partition(".outputs.")
            if STEP_ID.fullmatch(step) and OUTPUT_NAME_RE.fullmatch(name):
                return OutputRef(step, name, offset=start, length=len(path))
        if dot and head in ("steps", "prev"):
            return self._step_ref(path, start, rest)
        if dot and head == "params" and ENV_NAME_RE.fullmatch(rest):
            return ParamRef(rest, offset=start, length=len(path))
        if dot and head == "env":
            return self._env_ref(path, start, rest)
        self._error(start, len(path), "condition-bad-reference", *_unknown_name(path))
        return Invalid(offset=start, length=len(path))

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
        elif not STEP_ID.fullmatch(step):
            problem = (
                f"`{step}` is not a valid step id",
                "a step id starts with a letter or `_`; then letters, digits, `_`, `.`, `-`",
            )
        if problem is not None:
            self._error(start, len(path), "condition-bad-reference", *problem)
            return Invalid(offset=start, length=len(path))
        if attr not in ATTRIBUTES:
            self._error(
                start + len(path) - len(attr),
                len(attr),
                "condition-unknown-attribute",
                f"unknown attribute `{clip(attr)}` of step `{step}`",
                did_you_mean(attr, ATTRIBUTES, "`") + f"attributes are {', '.join(ATTRIBUTES)}",
            )
            return Invalid(offset=start, length=len(path))
        return StepRef(step, attr, offset=start, length=len(path))

    def _env_ref(self, path: str, start: int, name: str) -> Expr:
        if ENV_NAME_RE.fullmatch(name):
            return EnvRef(name, offset=start, length=len(path))
        self._error(
            start,
            len(path),
            "condition-bad-reference",
            f"`{clip(name)}` is not a valid environment variable name",
            "a name starts with a letter or `_`; then letters, digits and `_`",
        )
        return Invalid(offset=start, length=len(path))


def end_of(node: Expr) -> int:
    return node.offset + node.length


def flatten(kind: type[Or] | type[And], left: Expr, right: Expr) -> Expr:
    """`a and b and c` is one `and` with three operands (the parser pairs them left to right)."""
    operands: list[Expr] = []
    for side in (left, right):
        operands.extend(side.operands if isinstance(side, kind) else (side,))
    return kind(tuple(operands), offset=left.offset, length=end_of(right) - left.offset)


def compare(op: str, left: Expr, right: Expr) -> Expr:
    return Compare(op, left, right, offset=left.offset, length=end_of(right) - left.offset)


def negate(start: int, operand: Expr) -> Expr:
    return Not(operand, offset=start, length=end_of(operand) - start)


def parenthesised(inner: Expr, lpar: int, rpar: int) -> Expr:
    """Widen the inner node to cover its parentheses, so carets underline what was written."""
    return replace(inner, offset=lpar, length=rpar + 1 - lpar)


def list_literal(lsqb: int, rsqb: int, items: Sequence[object]) -> Expr:
    """Items already reported as bad literals (Invalid) are dropped: the AST is discarded."""
    literals = tuple(item for item in items if isinstance(item, Literal))
    return ListLit(literals, offset=lsqb, length=rsqb + 1 - lsqb)


def clip(text: str, width: int = 30) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def did_you_mean(word: str, choices: tuple[str, ...], quote: str) -> str:
    """'did you mean `x`? ' or ''; case differences count as close."""
    lowered = {choice.lower(): choice for choice in choices}
    if word.lower() in lowered:
        return f"did you mean {quote}{lowered[word.lower()]}{quote}? "
    import difflib  # here: only a condition with a mistake needs it

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
    import difflib

    suggestion = difflib.get_close_matches(
        head, ("steps", "prev", "env", "params"), n=1, cutoff=0.6
    )
    if dot and suggestion:
        return message, f"did you mean `{suggestion[0]}.{clip(rest)}`?"
    return message, "strings need quotes: write `'" + clip(path) + "'`"
