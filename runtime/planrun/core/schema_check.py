"""A JSON Schema (draft-07 subset) compiled into a yes/no predicate, with the standard library.

jsonschema spends ~10 µs per subschema it enters (seconds for a 10k-step plan) and costs ~60 ms
to import. Most documents are valid, so a compiled check of the same schema answers first and
jsonschema is only asked to explain what the check refused: planc checks plans against
plan.schema.json with it, planrun checks IRs against ir.schema.json. The check may refuse a
valid value (then jsonschema finds nothing and the cost is only time) but must never accept what
jsonschema would refuse: it supports exactly the keywords the two schemas use and fails to
compile on any other (tests/runtime/test_ir_check.py and tests/compiler/test_schema.py hold it
against jsonschema).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, cast

from planrun.core.schema_pattern import matcher

Check = Callable[[Any], bool]

_ANNOTATIONS = frozenset({"$schema", "$id", "title", "description", "default", "definitions"})


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _is_strict_integer(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_draft7_integer(x: Any) -> bool:
    """Draft-07, as jsonschema reads it: a float with an integral value is an integer too."""
    return _is_strict_integer(x) or (type(x) is float and x.is_integer())


_TYPE_CHECKS: dict[str, Check] = {
    "string": lambda x: isinstance(x, str),
    "integer": _is_strict_integer,
    "number": _is_number,
    "boolean": lambda x: isinstance(x, bool),
    "object": lambda x: isinstance(x, dict),
    "array": lambda x: isinstance(x, list),
    "null": lambda x: x is None,
}


def compile_check(schema: Mapping[str, Any], *, float_integers: bool = False) -> Check:
    """A function telling whether a value is valid against `schema` (draft-07 subset).

    Without `float_integers` an "integer" is an int only (planc's plans: the IR writes integers
    as integers, so plans must too); with it 1.0 is one as well, as draft-07 says (the IR)."""
    types = dict(_TYPE_CHECKS)
    if float_integers:
        types["integer"] = _is_draft7_integer
    return _Compiler(schema, types).compile(schema)


class _Compiler:
    def __init__(self, root: Mapping[str, Any], types: dict[str, Check]) -> None:
        self.root = root
        self.types = types
        self.refs: dict[str, Check] = {}

    def compile(self, schema: Mapping[str, Any]) -> Check:
        if "$ref" in schema:  # draft-07: $ref replaces its siblings
            return self._ref(schema["$ref"])
        if (
            schema.get("type") == "object"
            and schema.keys() - _ANNOTATIONS <= _CLOSED_OBJECT
            and schema.get("additionalProperties", False) is False
        ):
            return self._closed_object(schema)
        checks = [
            self._keyword(name, value, schema)
            for name, value in schema.items()
            if name not in _ANNOTATIONS and name not in ("then", "else")
        ]
        return _all_of(checks)

    def _closed_object(self, schema: Mapping[str, Any]) -> Check:
        """The most common shape (a step, the globals…) in one function: the separate keyword
        checks cost twice the time on a large IR."""
        properties = {key: self.compile(sub) for key, sub in schema.get("properties", {}).items()}
        known = frozenset(properties) if schema.get("additionalProperties") is False else None
        required = tuple(schema.get("required", ()))

        def check(x: Any) -> bool:
            if not isinstance(x, dict):
                return False
            if known is not None and not known.issuperset(x):
                return False
            for key in required:
                if key not in x:
                    return False
            return _properties_hold(properties, x)

        return check

    def _ref(self, ref: str) -> Check:
        """Each reference compiled once; a recursive one (the IR's guards) through a cell that
        is filled once its target is compiled."""
        known = self.refs.get(ref)
        if known is not None:
            return known
        cell: list[Check] = []
        self.refs[ref] = lambda x: cell[0](x)
        cell.append(self.compile(_resolve(self.root, ref)))
        self.refs[ref] = cell[0]
        return cell[0]

    def _keyword(self, name: str, value: Any, schema: Mapping[str, Any]) -> Check:
        if name == "type":
            if isinstance(value, str):
                return self.types[value]
            types = [self.types[t] for t in value]
            return lambda x: any(check(x) for check in types)
        if name in _OBJECT_KEYWORDS:
            return self._object_keyword(name, value, schema)
        if name in _ARRAY_KEYWORDS:
            return self._array_keyword(name, value)
        if name in _SCALAR_KEYWORDS:
            return _scalar_keyword(name, value)
        if name == "allOf":
            return _all_of([self.compile(part) for part in value])
        if name == "oneOf":
            return _one_of([self.compile(part) for part in value])
        if name == "if":
            condition = self.compile(value)
            then = self.compile(schema.get("then", {}))
            otherwise = self.compile(schema.get("else", {}))
            return lambda x: then(x) if condition(x) else otherwise(x)
        raise ValueError(f"the fast check does not support the keyword {name!r}")

    def _object_keyword(self, name: str, value: Any, schema: Mapping[str, Any]) -> Check:
        if name == "properties":
            properties = {key: self.compile(sub) for key, sub in value.items()}

            return lambda x: not isinstance(x, dict) or _properties_hold(properties, x)
        if name == "additionalProperties":
            return self._additional(value, frozenset(schema.get("properties", {})))
        if name == "required":
            return lambda x: not isinstance(x, dict) or all(key in x for key in value)
        names = self.compile(value)
        return lambda x: not isinstance(x, dict) or all(map(names, x))

    def _additional(self, value: Any, known: frozenset[str]) -> Check:
        if value is False:
            return lambda x: not isinstance(x, dict) or known.issuperset(x)
        if value is True:
            return lambda x: True
        extra = self.compile(value)
        return lambda x: (
            not isinstance(x, dict)
            or all(extra(item) for key, item in x.items() if key not in known)
        )

    def _array_keyword(self, name: str, value: Any) -> Check:
        if name == "items":
            if not isinstance(value, Mapping):
                raise ValueError("the fast check supports only a single `items` schema")
            item_check = self.compile(value)
            return lambda x: not isinstance(x, list) or all(map(item_check, x))
        if name == "minItems":
            return lambda x: not isinstance(x, list) or len(x) >= value
        # uniqueItems: only lists of strings are judged here; jsonschema's equality decides others.
        return lambda x: (
            not value
            or not isinstance(x, list)
            or (all(isinstance(item, str) for item in x) and len(set(x)) == len(x))
        )


def _all_of(checks: list[Check]) -> Check:
    if len(checks) == 1:
        return checks[0]

    def check(value: Any) -> bool:
        # A loop, twice as fast as all() over a generator: this runs for every value checked.
        for part in checks:  # noqa: SIM110
            if not part(value):
                return False
        return True

    return check


def _one_of(parts: list[Check]) -> Check:
    def check(value: Any) -> bool:
        # A loop, not a generator: one frame less per level of a recursive schema's nesting.
        matched = 0
        for part in parts:
            if part(value):
                matched += 1
        return matched == 1

    return check


def _resolve(root: Mapping[str, Any], ref: str) -> Mapping[str, Any]:
    if not ref.startswith("#/"):
        raise ValueError(f"the fast check only follows local references, not {ref!r}")
    target: Any = root
    for part in ref[2:].split("/"):
        target = target[part]
    return cast(Mapping[str, Any], target)


# An object schema with only these keywords (and additionalProperties false, if any) is checked
# by one function.
_CLOSED_OBJECT = frozenset({"type", "properties", "additionalProperties", "required"})
_OBJECT_KEYWORDS = frozenset({"properties", "additionalProperties", "required", "propertyNames"})
_ARRAY_KEYWORDS = frozenset({"items", "minItems", "uniqueItems"})
_SCALAR_KEYWORDS = frozenset(
    {"enum", "const", "pattern", "minLength", "minimum", "maximum", "exclusiveMinimum"}
)


def _scalar_keyword(name: str, value: Any) -> Check:
    if name == "enum" or name == "const":
        choices = value if name == "enum" else [value]
        if all(isinstance(choice, str) for choice in choices):
            allowed = frozenset(choices)
            return lambda x: isinstance(x, str) and x in allowed
        if all(_is_number(choice) for choice in choices):  # jsonschema's equality: 1.0 is 1
            numbers = frozenset(choices)
            return lambda x: _is_number(x) and x in numbers
        raise ValueError("the fast check supports only string or number enums and consts")
    if name == "pattern":
        matches = matcher(value)
        return lambda x: not isinstance(x, str) or matches(x)
    if name == "minLength":
        return lambda x: not isinstance(x, str) or len(x) >= value
    if name == "minimum":
        return lambda x: not _is_number(x) or x >= value
    if name == "maximum":
        return lambda x: not _is_number(x) or x <= value
    return lambda x: not _is_number(x) or x > value


def _properties_hold(properties: Mapping[str, Check], x: dict[str, Any]) -> bool:
    """Each key of `x` that `properties` names has a valid value."""
    for key, item in x.items():
        sub = properties.get(key)
        if sub is not None and not sub(item):
            return False
    return True
