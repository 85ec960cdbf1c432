"""The condition language: text → positioned AST (`planrun.core.conditions`' nodes) → local checks.

The builder is in `planc.condition_syntax`, the parsers in `planc.conditions_fast` and
`planc.conditions_lark`; this module drives them. `planrun.core.conditions.to_json` lowers the tree.

Pure: nothing here knows about plans or graphs (`planc.rules.conditions` adds those checks).
Never raises on any input text: every problem becomes a `ConditionError` with an offset into
the text, so callers can put a caret under it. See docs/conditions.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from planc import conditions_fast
from planc.condition_syntax import (
    ConditionError,
    TreeBuilder,
    clip,
    did_you_mean,
    end_of,
)
from planrun.core.byvalue import ByValue
from planrun.core.conditions import (
    MEMBERSHIP_OPS,
    ORDERING_OPS,
    STATUSES,
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
    Value,
    children,
)

# Limits. The text limit bounds everything else (tokens, terms, list items); the nesting limits
# keep every later pass, which may recurse over the AST, far from Python's recursion limit.
MAX_CONDITION_LENGTH = 4096
MAX_PAREN_DEPTH = 100
MAX_NESTING_DEPTH = 100


@dataclass(frozen=True, eq=False, repr=False)
class ParsedCondition(ByValue):
    """Either `ast` (no errors) or `errors` (then `ast` is None)."""

    ast: Expr | None
    errors: list[ConditionError] = field(default_factory=list)


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
    actions = TreeBuilder()
    ast = conditions_fast.parse(text, actions)
    if ast is None:
        # The reference parser (and its import) only for the texts the fast one leaves to it.
        from planc import conditions_lark

        actions = TreeBuilder()
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


def _literal_type(value: Value) -> Type:
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
        return clip(self.text[node.offset : end_of(node)], 40)

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
            self.compare(node)
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

    def compare(self, node: Compare) -> None:
        left, right = self._type(node.left), self._type(node.right)
        if node.op in MEMBERSHIP_OPS:
            self._membership(node, left)
        elif node.op in ORDERING_OPS:
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
            message = f"'{clip(value)}' is not a step status"
        self._error(
            literal,
            "condition-unknown-status",
            message,
            did_you_mean(value, STATUSES, "'") + listing,
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
