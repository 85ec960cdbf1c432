"""The condition language's syntax tree, and its evaluation (docs/ir.md "Condition AST",
docs/semantics.md §2, docs/conditions.md).

The one tree of the language: planc's parser builds these nodes with their position in the
condition text attached (`offset`, `length`, as Jinja2's nodes carry `lineno`); `to_json`
writes them into the IR, `from_json` reads the IR back into them (validating it in full first),
and `evaluate` gives a condition's truth. The language's constants live here too.

Imports nothing from the compiler (no planc, lark or ruamel): the IR is all the runtime has.
The AST is validated in full before anything is evaluated, so a malformed (hand-edited) IR
fails the same way whatever the step statuses are, and evaluation itself cannot raise.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from planrun.core.byvalue import ByValue

# Deeper than anything planc writes (it caps nesting at 100 operator levels, about 102 nodes),
# shallow enough that the recursive evaluation stays far from Python's recursion limit.
MAX_DEPTH = 200

# The statuses a condition can see: the steps it reads have all finished.
STATUSES = ("success", "failed", "timed_out", "skipped", "upstream_failed", "cancelled")
ATTRIBUTES = ("status", "exit_code", "attempts", "duration_sec")
ORDERING_OPS = ("<", "<=", ">", ">=")  # numbers only
MEMBERSHIP_OPS = ("in", "not in")  # a list of literals on the right
COMPARE_OPS = ("==", "!=", *ORDERING_OPS, *MEMBERSHIP_OPS)
_ORDERING: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_BOOLEAN_KINDS = ("or", "and", "not", "compare")
_VALUE_KINDS = (*_BOOLEAN_KINDS, "step", "env", "param", "output", "literal")

Value = str | int | float | bool | None


class ConditionError(ValueError):
    """The condition AST is malformed: never raised for an AST planc wrote."""


# ---------------------------------------------------------------------------------------------
# The tree. Positions are keyword-only and 0 when the node was read from the IR.


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class _Node(ByValue):
    offset: int = field(default=0, kw_only=True)
    length: int = field(default=0, kw_only=True)


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Or(_Node):
    operands: tuple[Expr, ...]


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class And(_Node):
    operands: tuple[Expr, ...]


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Not(_Node):
    operand: Expr


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Compare(_Node):
    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class StepRef(_Node):
    """`steps.<id>.<attr>` or its alias `prev.<id>.<attr>`."""

    step: str
    attr: str


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class EnvRef(_Node):
    name: str


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class ParamRef(_Node):
    """`params.NAME` (docs/dataflow.md)."""

    name: str


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class OutputRef(_Node):
    """`steps.<id>.outputs.NAME`: a value the step wrote to $PLAN_OUTPUT, or null."""

    step: str
    name: str


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Literal(_Node):
    value: Value


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class ListLit(_Node):
    items: tuple[Literal, ...]


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Invalid(_Node):
    """Where a parser reported a bad reference or literal, so checking can go on and report
    the other mistakes too. Never in a valid AST: `to_json` refuses it."""


Expr = (
    Or | And | Not | Compare | StepRef | EnvRef | ParamRef | OutputRef | Literal | ListLit | Invalid
)


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
# JSON (the IR's form)


def to_json(ast: Expr) -> dict[str, Any]:
    """The IR's JSON AST. Takes only an AST without `Invalid` nodes, whose depth planc's
    nesting limit bounds."""
    if isinstance(ast, Or | And):
        kind = "or" if isinstance(ast, Or) else "and"
        return {"kind": kind, "operands": [to_json(operand) for operand in ast.operands]}
    if isinstance(ast, Not):
        return {"kind": "not", "operand": to_json(ast.operand)}
    if isinstance(ast, Compare):
        left, right = to_json(ast.left), to_json(ast.right)
        return {"kind": "compare", "op": ast.op, "left": left, "right": right}
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
        return {"kind": "list", "items": [to_json(item) for item in ast.items]}
    raise ValueError("to_json got an AST with errors; check ParsedCondition.errors first")


def from_json(ast: Mapping[str, Any]) -> Expr:
    """The tree of an IR condition AST; raises ConditionError unless it is well formed."""
    validate(ast)
    return _build(ast)


def _build(node: Mapping[str, Any]) -> Expr:
    """Recursion bounded by MAX_DEPTH: only called on a validated AST."""
    kind = node["kind"]
    if kind in ("or", "and"):
        operands = tuple(_build(operand) for operand in node["operands"])
        return Or(operands) if kind == "or" else And(operands)
    if kind == "not":
        return Not(_build(node["operand"]))
    if kind == "compare":
        return Compare(node["op"], _build(node["left"]), _build(node["right"]))
    if kind == "step":
        return StepRef(node["step"], node["attr"])
    if kind == "env":
        return EnvRef(node["name"])
    if kind == "param":
        return ParamRef(node["name"])
    if kind == "output":
        return OutputRef(node["step"], node["name"])
    if kind == "list":
        return ListLit(tuple(Literal(item["value"]) for item in node["items"]))
    return Literal(node["value"])


# ---------------------------------------------------------------------------------------------
# Validation and evaluation


@dataclass(frozen=True, eq=False, repr=False)
class StepFacts(ByValue):
    """What a condition may read about one step."""

    status: str
    exit_code: int | None = None
    attempts: int = 0
    duration_sec: float | None = None
    outputs: Mapping[str, str] = field(default_factory=dict)


def evaluate(
    ast: Mapping[str, Any] | Expr,
    steps: Mapping[str, StepFacts],
    env: Mapping[str, str],
    params: Mapping[str, Value] | None = None,
) -> bool:
    """The condition's truth (an IR AST is validated first). A step missing from `steps` reads
    as null for every attribute; an unset `env.X`, param or step output is null."""
    tree = ast if isinstance(ast, _Node) else from_json(ast)
    return _Evaluation(steps, env, params or {}).truth(tree)


def validate(ast: Mapping[str, Any]) -> None:
    """Raise ConditionError unless `ast` is a well-formed condition (iterative: any depth)."""
    # Each entry: the node, its depth, the role its position demands, a path for the message.
    stack: list[tuple[Any, int, str, str]] = [(ast, 1, "boolean", "")]
    while stack:
        node, depth, role, path = stack.pop()
        where = path or "/"
        if depth > MAX_DEPTH:
            raise ConditionError(f"condition nests deeper than {MAX_DEPTH} levels at {where}")
        for child, child_role, child_path in _check_node(node, role, where):
            stack.append((child, depth + 1, child_role, path + child_path))


def _check_node(node: Any, role: str, where: str) -> list[tuple[Any, str, str]]:
    """Check one node against its role; return its children with their roles and paths."""
    if not isinstance(node, Mapping):
        raise ConditionError(f"condition node at {where} is not an object")
    kind = node.get("kind")
    if role == "list":
        _require(kind == "list", where, "the right side of `in` must be a `list` node")
        items = _sequence(node, "items", where)
        return [(item, "item", f"/items/{i}") for i, item in enumerate(items)]
    if role == "item":
        _require(kind == "literal", where, "list items must be `literal` nodes")
    if role == "boolean":
        is_bool_literal = kind == "literal" and isinstance(node.get("value"), bool)
        _require(kind in _BOOLEAN_KINDS or is_bool_literal, where, "expected a boolean node")
    _require(kind in _VALUE_KINDS, where, f"unknown node kind {kind!r}")
    if kind in ("or", "and"):
        operands = _sequence(node, "operands", where)
        _require(len(operands) >= 2, where, f"`{kind}` needs at least two operands")
        return [(child, "boolean", f"/operands/{i}") for i, child in enumerate(operands)]
    if kind == "not":
        return [(node.get("operand"), "boolean", "/operand")]
    if kind == "compare":
        op = node.get("op")
        _require(op in COMPARE_OPS, where, f"unknown comparison operator {op!r}")
        right_role = "list" if op in MEMBERSHIP_OPS else "value"
        return [(node.get("left"), "value", "/left"), (node.get("right"), right_role, "/right")]
    if kind == "step":
        _require(isinstance(node.get("step"), str), where, "`step` must be a string")
        _require(node.get("attr") in ATTRIBUTES, where, f"unknown attribute {node.get('attr')!r}")
    elif kind in ("env", "param"):
        _require(isinstance(node.get("name"), str), where, "`name` must be a string")
    elif kind == "output":
        _require(isinstance(node.get("step"), str), where, "`step` must be a string")
        _require(isinstance(node.get("name"), str), where, "`name` must be a string")
    else:
        value = node.get("value", ...)
        _require(value is None or isinstance(value, str | int | float), where, "bad literal")
    return []


def _require(ok: bool, where: str, message: str) -> None:
    if not ok:
        raise ConditionError(f"malformed condition at {where}: {message}")


def _sequence(node: Mapping[str, Any], key: str, where: str) -> Sequence[Any]:
    value = node.get(key)
    if not isinstance(value, list | tuple):
        raise ConditionError(f"malformed condition at {where}: `{key}` must be an array")
    return value


class _Evaluation:
    """Evaluates a valid tree; recursion is bounded by MAX_DEPTH."""

    def __init__(
        self, steps: Mapping[str, StepFacts], env: Mapping[str, str], params: Mapping[str, Value]
    ) -> None:
        self.steps = steps
        self.env = env
        self.params = params

    def truth(self, node: Expr) -> bool:
        if isinstance(node, Or):
            return any(self.truth(operand) for operand in node.operands)
        if isinstance(node, And):
            return all(self.truth(operand) for operand in node.operands)
        if isinstance(node, Not):
            return not self.truth(node.operand)
        if isinstance(node, Compare):
            return self._compare(node)
        return isinstance(node, Literal) and node.value is True

    def _value(self, node: Expr) -> Value:
        if isinstance(node, StepRef):
            facts = self.steps.get(node.step)
            value: Value = None if facts is None else getattr(facts, node.attr)
            return value
        if isinstance(node, EnvRef):
            return self.env.get(node.name)
        if isinstance(node, ParamRef):
            return self.params.get(node.name)
        if isinstance(node, OutputRef):
            facts = self.steps.get(node.step)
            return None if facts is None else facts.outputs.get(node.name)
        if isinstance(node, Literal):
            return node.value
        return self.truth(node)

    def _compare(self, node: Compare) -> bool:
        op = node.op
        left = self._value(node.left)
        if op in MEMBERSHIP_OPS:
            items = node.right.items if isinstance(node.right, ListLit) else ()
            found = any(_equal(left, item.value) for item in items)
            return found if op == "in" else not found
        right = self._value(node.right)
        if op == "==":
            return _equal(left, right)
        if op == "!=":
            return not _equal(left, right)
        # Ordering is defined for numbers only: with null, strings or booleans it is false.
        return _type_of(left) == _type_of(right) == "number" and _ORDERING[op](left, right)


def _type_of(value: Value) -> str:
    # bool before number: in Python True == 1, in a condition `true` is not `1`.
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return "str"


def _equal(left: Value, right: Value) -> bool:
    """Values of different types are never equal (so `!=` between them is true)."""
    return _type_of(left) == _type_of(right) and left == right
