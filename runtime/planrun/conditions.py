"""Evaluates a condition's JSON AST (docs/ir.md, "Condition AST") against what is known of the
steps so far, with the rules of docs/semantics.md §2 and docs/conditions.md.

Imports nothing from the compiler (no planc, lark or ruamel): the IR is all the runtime has.
The AST is validated in full before anything is evaluated, so a malformed (hand-edited) IR
fails the same way whatever the step statuses are, and evaluation itself cannot raise.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# Deeper than anything planc writes (it caps nesting at 100 operator levels, about 102 nodes),
# shallow enough that the recursive evaluation stays far from Python's recursion limit.
MAX_DEPTH = 200

ATTRIBUTES = ("status", "exit_code", "attempts", "duration_sec")
COMPARE_OPS = ("==", "!=", "<", "<=", ">", ">=", "in", "not in")
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


@dataclass(frozen=True)
class StepFacts:
    """What a condition may read about one step."""

    status: str
    exit_code: int | None = None
    attempts: int = 0
    duration_sec: float | None = None
    outputs: Mapping[str, str] = field(default_factory=dict)


def evaluate(
    ast: Mapping[str, Any],
    steps: Mapping[str, StepFacts],
    env: Mapping[str, str],
    params: Mapping[str, Value] | None = None,
) -> bool:
    """The condition's truth. A step missing from `steps` reads as null for every attribute;
    an unset `env.X`, param or step output is null."""
    validate(ast)
    return _Evaluation(steps, env, params or {}).truth(ast)


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
        right_role = "list" if op in ("in", "not in") else "value"
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
    """Evaluates a validated AST; recursion is bounded by MAX_DEPTH."""

    def __init__(
        self, steps: Mapping[str, StepFacts], env: Mapping[str, str], params: Mapping[str, Value]
    ) -> None:
        self.steps = steps
        self.env = env
        self.params = params

    def truth(self, node: Mapping[str, Any]) -> bool:
        kind = node["kind"]
        if kind == "or":
            return any(self.truth(operand) for operand in node["operands"])
        if kind == "and":
            return all(self.truth(operand) for operand in node["operands"])
        if kind == "not":
            return not self.truth(node["operand"])
        if kind == "compare":
            return self._compare(node)
        return node["value"] is True

    def _value(self, node: Mapping[str, Any]) -> Value:
        kind = node["kind"]
        if kind == "step":
            facts = self.steps.get(node["step"])
            value: Value = None if facts is None else getattr(facts, node["attr"])
            return value
        if kind == "env":
            return self.env.get(node["name"])
        if kind == "param":
            return self.params.get(node["name"])
        if kind == "output":
            facts = self.steps.get(node["step"])
            return None if facts is None else facts.outputs.get(node["name"])
        if kind == "literal":
            literal: Value = node["value"]
            return literal
        return self.truth(node)

    def _compare(self, node: Mapping[str, Any]) -> bool:
        op = node["op"]
        left = self._value(node["left"])
        if op in ("in", "not in"):
            found = any(_equal(left, item["value"]) for item in node["right"]["items"])
            return found if op == "in" else not found
        right = self._value(node["right"])
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
