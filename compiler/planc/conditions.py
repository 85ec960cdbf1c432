"""The condition language: text → positioned AST → local checks → the IR's JSON AST.

Pure: nothing here knows about plans or graphs (`planc.rules.conditions` adds those checks).
Never raises on any input text: every problem becomes a `ConditionError` with an offset into
the text, so callers can put a caret under it. See docs/conditions.md.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

# Limits. The text limit bounds everything else (tokens, terms, list items); the nesting limits
# keep every later pass, which may recurse over the AST, far from Python's recursion limit.
MAX_CONDITION_LENGTH = 4096
MAX_PAREN_DEPTH = 100
MAX_NESTING_DEPTH = 100

STATUSES = ("success", "failed", "timed_out", "skipped", "cancelled")
ATTRIBUTES = ("status", "exit_code", "attempts", "duration_sec")
STEP_ID_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,127}")
ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
OUTPUT_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
KEYWORDS = ("and", "or", "not", "in", "true", "false", "null")

# Signed 64-bit: what every JSON consumer of the IR can hold exactly.
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "t": "\t", "r": "\r"}

LiteralValue = str | int | float | bool | None


# ---------------------------------------------------------------------------------------------
# AST: every node knows where it was written (offset and length into the condition text).


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


@dataclass(frozen=True)
class ParsedCondition:
    """Either `ast` (no errors) or `errors` (then `ast` is None)."""

    ast: Expr | None
    errors: list[ConditionError] = field(default_factory=list)


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


# ---------------------------------------------------------------------------------------------
# Parsing


@lru_cache(maxsize=1 << 16)  # rules and lowering read each condition; plans repeat them
def parse_condition(text: str) -> ParsedCondition:
    if len(text) > MAX_CONDITION_LENGTH:
        return _fail(
            ConditionError(
                0,
                1,
                "condition-too-complex",
                f"condition is {len(text)} characters long; the limit is {MAX_CONDITION_LENGTH}",
                "split the logic over several steps, or move it into the step's command",
            )
        )
    too_deep = _paren_depth_error(text)
    if too_deep is not None:
        return _fail(too_deep)
    actions = _Actions()
    ast = _FastParser.parse(text, actions)
    if ast is None:
        # The reference parser (and its import) only for the texts the fast one leaves to it.
        from planc import conditions_lark

        actions = _Actions()
        parsed = conditions_lark.parse(text, actions)
        if isinstance(parsed, ConditionError):
            return _fail(parsed)
        ast = parsed
    # Each level of nesting takes an operator of at least one character, so a text this short
    # cannot nest too deep: the walk is skipped for nearly every condition.
    nesting = _nesting_error(ast) if len(text) > MAX_NESTING_DEPTH else None
    if nesting is not None:
        return _fail(nesting)
    checker = _Checker(text)
    checker.condition(ast)
    errors = sorted(actions.errors + checker.errors, key=lambda e: (e.offset, e.code))
    return ParsedCondition(None, errors) if errors else ParsedCondition(ast)


def _fail(error: ConditionError) -> ParsedCondition:
    return ParsedCondition(None, [error])


def _paren_depth_error(text: str) -> ConditionError | None:
    """Checked before parsing so absurd nesting never reaches a parser."""
    if text.count("(") <= MAX_PAREN_DEPTH:
        return None  # the depth cannot exceed the count: no need to read the text
    depth = 0
    quote: str | None = None
    escaped = False
    for i, ch in enumerate(text):
        if quote is not None:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote or ch == "\n":
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
            if depth > MAX_PAREN_DEPTH:
                return ConditionError(
                    i,
                    1,
                    "condition-too-complex",
                    f"more than {MAX_PAREN_DEPTH} nested parentheses",
                    "simplify the condition",
                )
        elif ch == ")":
            depth = max(depth - 1, 0)
    return None


def _nesting_error(ast: Expr) -> ConditionError | None:
    """Counts `and`/`or`/`not`/comparison levels (parentheses alone add none)."""
    stack: list[tuple[Expr, int]] = [(ast, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, Or | And | Not | Compare):
            depth += 1
            if depth > MAX_NESTING_DEPTH:
                return ConditionError(
                    node.offset,
                    node.length,
                    "condition-too-complex",
                    f"condition nests more than {MAX_NESTING_DEPTH} levels deep",
                    "simplify the condition",
                )
        stack.extend((child, depth) for child in children(node))
    return None


# ---------------------------------------------------------------------------------------------
# The fast parser
#
# Lark's LALR parser (planc.conditions_lark) costs ~60 µs per condition, between its lexer, the
# parse tree and the transformer, and ~90 ms to import and build: together a fifth of
# compiling a 10k-step plan. Conditions are short, so this recursive-descent parser of the same
# grammar reads a valid one directly into the AST, with the same actions. On anything it does
# not accept it gives up, and Lark parses the text again and words the syntax error. So it must
# never accept a text that Lark refuses, nor build a different AST (tests compare the two).

# Lark's basic lexer tries one union of the terminals' patterns, in this order, and takes the
# first alternative that matches (not the longest); whitespace is ignored. Keywords are lexed
# as PATH and re-typed when the whole word is one, which gives them word boundaries.
_TOKEN = re.compile(
    "|".join(
        (
            r"(?P<FLOAT>-?(?:[0-9]+\.[0-9]*(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?"
            r"|[0-9]+[eE][+-]?[0-9]+))",
            r"""(?P<STRING>'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")""",
            r"(?P<PATH>[A-Za-z_][A-Za-z0-9_.\-]*)",
            r"(?P<INT>-?[0-9]+)",
            r"(?P<WS>[ \t\r\n]+)",
            r"(?P<COMPARE_OP>==|!=|<=|>=|<|>)",
            r"(?P<COMMA>,)|(?P<LPAR>\()|(?P<LSQB>\[)|(?P<RPAR>\))|(?P<RSQB>\])",
            r"(?P<UNKNOWN>[\s\S])",  # a character no terminal matches: Lark words the error
        )
    )
)
_KEYWORDS = {
    "or": "OR",
    "and": "AND",
    "not": "NOT",
    "in": "IN",
    "true": "TRUE",
    "false": "FALSE",
    "null": "NULL",
}
# Parentheses are the parser's only recursion (five frames a level); deeper nesting is rare
# enough to leave to Lark, whose parser is iterative.
_FAST_MAX_PARENS = 32

_Token = tuple[str, str, int]  # terminal name, text, offset


class _GiveUp(Exception):
    """The fast parser does not accept the text: Lark decides."""


class _FastParser:
    def __init__(self, tokens: list[_Token], actions: _Actions) -> None:
        self.tokens = tokens
        self.next = 0
        self.actions = actions

    @classmethod
    def parse(cls, text: str, actions: _Actions) -> Expr | None:
        """The AST of `text`, or None when Lark must parse it."""
        if text.count("(") > _FAST_MAX_PARENS:
            return None
        tokens: list[_Token] = []
        for match in _TOKEN.finditer(text):
            kind = match.lastgroup
            if kind == "WS":
                continue
            if kind == "UNKNOWN" or kind is None:
                return None
            written = match.group()
            if kind == "PATH":
                kind = _KEYWORDS.get(written, kind)
            tokens.append((kind, written, match.start()))
        tokens.append(("$END", "", len(text)))
        parser = cls(tokens, actions)
        try:
            ast = parser._or()
            parser._expect("$END")
        except _GiveUp:
            return None
        return ast

    def _peek(self) -> str:
        return self.tokens[self.next][0]

    def _take(self) -> _Token:
        token = self.tokens[self.next]
        self.next += 1
        return token

    def _expect(self, kind: str) -> int:
        found, _, offset = self._take()
        if found != kind:
            raise _GiveUp
        return offset

    # One method per grammar rule; `a or b or c` pairs left to right, as the LALR parser does.

    def _or(self) -> Expr:
        node = self._and()
        while self._peek() == "OR":
            self.next += 1
            node = _flatten(Or, node, self._and())
        return node

    def _and(self) -> Expr:
        node = self._not()
        while self._peek() == "AND":
            self.next += 1
            node = _flatten(And, node, self._not())
        return node

    def _not(self) -> Expr:
        starts: list[int] = []  # `not not x` without recursion
        while self._peek() == "NOT":
            starts.append(self._take()[2])
        node = self._comparison()
        for start in reversed(starts):
            node = _negate(start, node)
        return node

    def _comparison(self) -> Expr:
        left = self._atom()
        kind, written, _ = self.tokens[self.next]
        if kind == "COMPARE_OP":
            self.next += 1
            return _compare(written, left, self._atom())
        if kind == "IN":
            self.next += 1
            return _compare("in", left, self._in_rhs())
        if kind == "NOT":
            self.next += 1
            self._expect("IN")
            return _compare("not in", left, self._in_rhs())
        return left

    def _in_rhs(self) -> Expr:
        return self._list() if self._peek() == "LSQB" else self._atom()

    def _atom(self) -> Expr:
        kind, written, offset = self._take()
        if kind == "PATH":
            return self.actions.reference(written, offset)
        if kind == "LPAR":
            inner = self._or()
            return _parenthesised(inner, offset, self._expect("RPAR"))
        return self._literal(kind, written, offset)

    def _list(self) -> Expr:
        start = self._expect("LSQB")
        items: list[Expr] = []
        if self._peek() != "RSQB":
            items.append(self._literal(*self._take()))
            while self._peek() == "COMMA":
                self.next += 1
                if self._peek() == "RSQB":  # a trailing comma
                    break
                items.append(self._literal(*self._take()))
        return _list_literal(start, self._expect("RSQB"), items)

    def _literal(self, kind: str, written: str, offset: int) -> Expr:
        if kind == "STRING":
            return self.actions.string(written, offset)
        if kind == "INT":
            return self.actions.int_(written, offset)
        if kind == "FLOAT":
            return self.actions.float_(written, offset)
        if kind in _KEYWORD_VALUES:
            return Literal(offset, len(written), _KEYWORD_VALUES[kind])
        raise _GiveUp


_KEYWORD_VALUES: dict[str, LiteralValue] = {"TRUE": True, "FALSE": False, "NULL": None}


# ---------------------------------------------------------------------------------------------
# What both parsers build: an AST node per grammar rule, and the errors of bad references and
# literals (the text parses, but a name or a number in it is wrong).


class _Actions:
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
            f"number `{_clip(written)}` is out of range",
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
                f"unknown attribute `{_clip(attr)}` of step `{step}`",
                _did_you_mean(attr, ATTRIBUTES, "`") + f"attributes are {', '.join(ATTRIBUTES)}",
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
            f"`{_clip(name)}` is not a valid environment variable name",
            "a name starts with a letter or `_`; then letters, digits and `_`",
        )
        return Invalid(start, len(path))


def _end(node: Expr) -> int:
    return node.offset + node.length


def _flatten(kind: type[Or] | type[And], left: Expr, right: Expr) -> Expr:
    """`a and b and c` is one `and` with three operands (the parser pairs them left to right)."""
    operands: list[Expr] = []
    for side in (left, right):
        operands.extend(side.operands if isinstance(side, kind) else (side,))
    return kind(left.offset, _end(right) - left.offset, tuple(operands))


def _compare(op: str, left: Expr, right: Expr) -> Expr:
    return Compare(left.offset, _end(right) - left.offset, op, left, right)


def _negate(start: int, operand: Expr) -> Expr:
    return Not(start, _end(operand) - start, operand)


def _parenthesised(inner: Expr, lpar: int, rpar: int) -> Expr:
    """Widen the inner node to cover its parentheses, so carets underline what was written."""
    return replace(inner, offset=lpar, length=rpar + 1 - lpar)


def _list_literal(lsqb: int, rsqb: int, items: Sequence[object]) -> Expr:
    """Items already reported as bad literals (Invalid) are dropped: the AST is discarded."""
    literals = tuple(item for item in items if isinstance(item, Literal))
    return ListLit(lsqb, rsqb + 1 - lsqb, literals)


def _clip(text: str, width: int = 30) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _did_you_mean(word: str, choices: tuple[str, ...], quote: str) -> str:
    """'did you mean `x`? ' or ''; case differences count as close."""
    lowered = {choice.lower(): choice for choice in choices}
    if word.lower() in lowered:
        return f"did you mean {quote}{lowered[word.lower()]}{quote}? "
    matches = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"did you mean {quote}{matches[0]}{quote}? " if matches else ""


def _unknown_name(path: str) -> tuple[str, str]:
    message = (
        f"unknown name `{_clip(path)}`: a value is `steps.<id>.<attr>`, `params.NAME`,"
        " `steps.<id>.outputs.NAME`, `env.NAME` or a literal"
    )
    if path.lower() in KEYWORDS:
        return message, f"keywords are lowercase: write `{path.lower()}`"
    head, dot, rest = path.partition(".")
    suggestion = difflib.get_close_matches(
        head, ("steps", "prev", "env", "params"), n=1, cutoff=0.6
    )
    if dot and suggestion:
        return message, f"did you mean `{suggestion[0]}.{_clip(rest)}`?"
    return message, "strings need quotes: write `'" + _clip(path) + "'`"


# ---------------------------------------------------------------------------------------------
# Local type checks. A type is the set of kinds of runtime value an expression can have.

Type = frozenset[str]
_BOOL: Type = frozenset({"bool"})
_ANY: Type = frozenset({"status", "str", "number", "null", "bool", "list"})
_ATTR_TYPES: dict[str, Type] = {
    "status": frozenset({"status"}),
    "exit_code": frozenset({"number", "null"}),
    "attempts": frozenset({"number"}),
    "duration_sec": frozenset({"number", "null"}),
}
_ATTR_WORDS = {
    "status": "a status",
    "exit_code": "an integer or null",
    "attempts": "an integer",
    "duration_sec": "a number or null",
}
_BOOLEAN_EXAMPLES = {
    "status": " == 'success'",
    "exit_code": " == 0",
    "attempts": " > 1",
    "duration_sec": " > 60",
}
_ORDERING_OPS = ("<", "<=", ">", ">=")


def _literal_type(value: LiteralValue) -> Type:
    if value is None:
        return frozenset({"null"})
    if isinstance(value, bool):
        return _BOOL
    if isinstance(value, str):
        return frozenset({"str"})
    return frozenset({"number"})


def _comparable(left: Type, right: Type) -> bool:
    """Some value of one type can equal some value of the other.

    A status is a string. Two types that only share null (`exit_code == env.X`) are not
    comparable: that is almost surely a mistake; comparing with a literal `null` is fine.
    """
    a = {"str" if t == "status" else t for t in left}
    b = {"str" if t == "status" else t for t in right}
    if (a & b) - {"null"}:
        return True
    return ("null" in a and b == {"null"}) or ("null" in b and a == {"null"})


class _Checker:
    def __init__(self, text: str) -> None:
        self.text = text
        self.errors: list[ConditionError] = []

    def _error(self, node: Expr, code: str, message: str, hint: str | None = None) -> None:
        self.errors.append(ConditionError(node.offset, node.length, code, message, hint))

    def _src(self, node: Expr) -> str:
        return _clip(self.text[node.offset : _end(node)], 40)

    def condition(self, ast: Expr) -> None:
        self._boolean(ast, None)

    def _boolean(self, node: Expr, operator: str | None) -> None:
        # A param may be a bool, but the IR keeps truth tests explicit: `params.push == true`.
        if "bool" in self._type(node) and not isinstance(node, ParamRef):
            return
        src, word = self._src(node), _type_word(node)
        if operator is None:
            message = f"`{src}` is {word}, not true or false"
        else:
            message = f"the operand of `{operator}` must be true or false, but `{src}` is {word}"
        self._error(node, "condition-not-boolean", message, _boolean_hint(node, src))

    def _type(self, node: Expr) -> Type:
        """The node's type; checks the node's subtree on the way (exactly once per node)."""
        if isinstance(node, Or | And):
            for operand in node.operands:
                self._boolean(operand, "or" if isinstance(node, Or) else "and")
            return _BOOL
        if isinstance(node, Not):
            self._boolean(node.operand, "not")
            return _BOOL
        if isinstance(node, Compare):
            self._compare(node)
            return _BOOL
        if isinstance(node, StepRef):
            return _ATTR_TYPES[node.attr]
        if isinstance(node, EnvRef | OutputRef):
            return frozenset({"str", "null"})
        if isinstance(node, ParamRef):
            return frozenset({"str", "number", "bool", "null"})
        if isinstance(node, Literal):
            return _literal_type(node.value)
        if isinstance(node, ListLit):
            return frozenset({"list"})
        return _ANY

    def _compare(self, node: Compare) -> None:
        left, right = self._type(node.left), self._type(node.right)
        if node.op in ("in", "not in"):
            self._membership(node, left)
        elif node.op in _ORDERING_OPS:
            self._ordering(node, left, right)
        elif not _comparable(left, right):
            verdict = "always false" if node.op == "==" else "always true"
            self._error(
                node,
                "condition-type-mismatch",
                f"type mismatch: `{self._src(node.left)}` is {_type_word(node.left)}, "
                f"`{self._src(node.right)}` is {_type_word(node.right)}; "
                f"`{node.op}` is {verdict}",
                _mismatch_hint(node.left, node.right) or _mismatch_hint(node.right, node.left),
            )
        else:
            for ref, other in ((node.left, node.right), (node.right, node.left)):
                if _is_status_ref(ref) and isinstance(other, Literal):
                    self._status_literal(other)

    def _membership(self, node: Compare, left: Type) -> None:
        right = node.right
        if isinstance(right, Invalid):
            return
        if not isinstance(right, ListLit):
            self._error(
                right,
                "condition-in-needs-list",
                f"`{node.op}` needs a list on its right, but `{self._src(right)}` is "
                f"{_type_word(right)}",
                "write a list such as `['success', 'skipped']`, or use `==` for one value",
            )
            return
        for item in right.items:
            if not _comparable(left, _literal_type(item.value)):
                self._error(
                    item,
                    "condition-type-mismatch",
                    f"type mismatch: `{self._src(node.left)}` is {_type_word(node.left)}, "
                    f"list item `{self._src(item)}` is {_type_word(item)}; it never matches",
                    _mismatch_hint(node.left, item),
                )
            elif _is_status_ref(node.left):
                self._status_literal(item)

    def _ordering(self, node: Compare, left: Type, right: Type) -> None:
        for side, side_type in ((node.left, left), (node.right, right)):
            if "number" not in side_type:
                self._error(
                    side,
                    "condition-invalid-ordering",
                    f"`{node.op}` compares numbers, but `{self._src(side)}` is {_type_word(side)}",
                    _ordering_hint(side),
                )
                return

    def _status_literal(self, literal: Literal) -> None:
        value = literal.value
        if not isinstance(value, str) or value in STATUSES:
            return
        listing = f"statuses are {', '.join(STATUSES)}"
        if value in ("pending", "running"):
            message = (
                f"'{value}' is never seen by a condition: the steps it reads have all finished"
            )
        else:
            message = f"'{_clip(value)}' is not a step status"
        self._error(
            literal,
            "condition-unknown-status",
            message,
            _did_you_mean(value, STATUSES, "'") + listing,
        )


def _is_status_ref(node: Expr) -> bool:
    return isinstance(node, StepRef) and node.attr == "status"


def _type_word(node: Expr) -> str:
    if isinstance(node, StepRef):
        return _ATTR_WORDS[node.attr]
    if isinstance(node, EnvRef | OutputRef):
        return "a string or null"
    if isinstance(node, ParamRef):
        return "a param value"
    if isinstance(node, Literal):
        value = node.value
        if value is None:
            return "null"
        if isinstance(value, bool):
            return "a boolean"
        return "a string" if isinstance(value, str) else "a number"
    # Lists and Invalid nodes are never described: no check reports on them.
    return "a boolean"


def _boolean_hint(node: Expr, src: str) -> str:
    if isinstance(node, StepRef):
        return f"compare it, e.g. `{src}{_BOOLEAN_EXAMPLES[node.attr]}`"
    if isinstance(node, EnvRef | OutputRef):
        return f"compare it, e.g. `{src} == 'true'`"
    if isinstance(node, ParamRef):
        return f"compare it, e.g. `{src} == true`"
    if isinstance(node, Literal) and node.value in ("true", "false"):
        return f"write `{node.value}` without quotes"
    return "a condition is a comparison such as `steps.<id>.status == 'success'`, `true` or `false`"


def _mismatch_hint(expected_side: Expr, literal: Expr) -> str | None:
    """A corrected literal, when the other side makes the intent obvious."""
    if not isinstance(literal, Literal):
        return None
    value = literal.value
    wants_number = isinstance(expected_side, StepRef) and expected_side.attr != "status"
    if wants_number and isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value):
        return f"write the number without quotes: `{value}`"
    wants_string = isinstance(expected_side, EnvRef) or _is_status_ref(expected_side)
    if wants_string and isinstance(value, int | float) and not isinstance(value, bool):
        what = "environment values" if isinstance(expected_side, EnvRef) else "statuses"
        return f"{what} are strings: write `'{value}'`"
    if isinstance(expected_side, Or | And | Not | Compare) and value in ("true", "false"):
        return f"write `{value}` without quotes"
    return None


def _ordering_hint(side: Expr) -> str:
    if _is_status_ref(side) or (isinstance(side, Literal) and side.value in STATUSES):
        return "statuses have no order: use `==` or `in ['failed', 'timed_out']`"
    if isinstance(side, Literal) and side.value is None:
        return "an ordering comparison with null is always false: use `== null`"
    if isinstance(side, EnvRef):
        return "environment values are strings and have no order: use `==` or `in [...]`"
    return "only numbers (exit_code, attempts, duration_sec, number literals) have an order"


# ---------------------------------------------------------------------------------------------
# Lowering


def to_ir(ast: Expr) -> dict[str, Any]:
    """The IR's JSON AST (docs/ir.md, "Condition AST"). Takes only an AST from a
    `ParsedCondition` without errors, whose depth the nesting limit bounds."""
    if isinstance(ast, Or | And):
        kind = "or" if isinstance(ast, Or) else "and"
        return {"kind": kind, "operands": [to_ir(operand) for operand in ast.operands]}
    if isinstance(ast, Not):
        return {"kind": "not", "operand": to_ir(ast.operand)}
    if isinstance(ast, Compare):
        return {"kind": "compare", "op": ast.op, "left": to_ir(ast.left), "right": to_ir(ast.right)}
    if isinstance(ast, StepRef):
        return {"kind": "step", "step": ast.step, "attr": ast.attr}
    if isinstance(ast, EnvRef):
        return {"kind": "env", "name": ast.name}
    if isinstance(ast, ParamRef):
        return {"kind": "param", "name": ast.name}
    if isinstance(ast, OutputRef):
        return {"kind": "output", "step": ast.step, "name": ast.name}
    if isinstance(ast, Literal):
        return {"kind": "literal", "value": ast.value}
    if isinstance(ast, ListLit):
        return {"kind": "list", "items": [to_ir(item) for item in ast.items]}
    raise ValueError("to_ir got an AST with errors; check ParsedCondition.errors first")
