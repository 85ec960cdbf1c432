"""Stage 2: check the loaded document against plan.schema.json, in the user's words.

jsonschema finds the errors; this module turns each one into a positioned Diagnostic with a
stable code and a message written for people (never jsonschema's Python reprs).
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache, cached_property
from typing import TYPE_CHECKING, Any

from planc.diagnostics import Diagnostic, Span, error
from planc.load import gc_paused

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError
    from jsonschema.protocols import Validator
from planc.nodes import Document, MapNode, Node, ScalarNode, SeqNode, node_at, to_plain
from planc.suggest import did_you_mean
from planrun.core.ir_types import OnFailure
from planrun.core.schema_check import Check, compile_check
from planrun.core.schema_pattern import ecma_draft7

_TYPE_NAMES = {
    "string": "a string",
    "number": "a number",
    "integer": "an integer",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "null",
}
_DURATION = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]+)\s*")
_DURATION_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}
_ID_CHARS = re.compile(r"[A-Za-z0-9_.-]")


def plan_schema() -> dict[str, Any]:
    """The plan JSON Schema (draft-07), as shipped in the planc package."""
    # Next to this module, as the package ships it; not through importlib.resources, whose
    # import (tempfile, random, …) was a tenth of `planc check`'s start-up (issue 17).
    with open(os.path.join(os.path.dirname(__file__), "plan.schema.json"), encoding="utf-8") as f:
        text = f.read()
    schema: dict[str, Any] = json.loads(text)
    return schema


def validate_document(doc: Document) -> list[Diagnostic]:
    """Every schema violation in `doc`, deduplicated and sorted by position."""
    with gc_paused():
        instance: Any = doc.plain
        schemas = _schemas()
        if schemas.plan_ok(instance):
            return []
        source = _Source(doc)
        found: dict[tuple[int, int, str, str], Diagnostic] = {}
        for raw in _raw_errors(schemas, instance):
            for diagnostic in _Translator(source, raw).diagnostics():
                key = (diagnostic.line, diagnostic.col, diagnostic.code, diagnostic.message)
                found.setdefault(key, diagnostic)
    return sorted(found.values(), key=Diagnostic.sort_key)


@dataclass(frozen=True, eq=False, repr=False)
class _Schemas:
    plan_ok: Check
    step_ok: Check

    @property
    def shell(self) -> Validator:
        """The plan with `steps` items unchecked: jsonschema only visits broken steps."""
        return _validators()[0]

    @property
    def step(self) -> Validator:
        return _validators()[1]


@cache
def _schemas() -> _Schemas:
    schema = plan_schema()
    return _Schemas(plan_ok=compile_check(schema), step_ok=compile_check(_step_schema(schema)))


def _step_schema(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema["definitions"]["step"], "definitions": schema["definitions"]}


@cache
def _validators() -> tuple[Validator, Validator]:
    """jsonschema itself, imported and built only when a plan fails the fast check: most plans
    are valid, and the import alone costs a compile ~50 ms."""
    schema = plan_schema()
    shell_schema = copy.deepcopy(schema)
    shell_schema["properties"]["steps"]["items"] = {}
    return _strict_validator(shell_schema), _strict_validator(_step_schema(schema))


def _raw_errors(schemas: _Schemas, instance: Any) -> Iterator[ValidationError]:
    steps = instance.get("steps") if isinstance(instance, dict) else None
    if not isinstance(steps, list):
        yield from schemas.shell.iter_errors(instance)
        return
    yield from schemas.shell.iter_errors({**instance, "steps": steps[:1]})
    for index, step in enumerate(steps):
        if not schemas.step_ok(step):
            for raw in schemas.step.iter_errors(step):
                raw.path.extendleft([index, "steps"])
                yield raw


def _is_strict_integer(_checker: object, instance: object) -> bool:
    # Draft-07 counts 1.0 as an integer; the IR writes integers as integers, so plans must too.
    return isinstance(instance, int) and not isinstance(instance, bool)


def _strict_validator(schema: dict[str, Any]) -> Validator:
    from jsonschema import validators

    base = ecma_draft7()
    type_checker = base.TYPE_CHECKER.redefine("integer", _is_strict_integer)
    strict: type[Validator] = validators.extend(  # type: ignore[no-untyped-call]
        base, type_checker=type_checker
    )
    return strict(schema)


class _Source:
    """The document, split into lines (as the loader counts them) once and only if needed."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc

    @cached_property
    def lines(self) -> list[str]:
        return self.doc.text.split("\n")

    def text_of(self, span: Span) -> str | None:
        if span.line != span.end_line or span.line > len(self.lines):
            return None
        return self.lines[span.line - 1][span.col - 1 : span.end_col - 1]


class _Translator:
    """Turns one jsonschema error into diagnostics (several for a set of unknown keys)."""

    def __init__(self, source: _Source, raw: ValidationError) -> None:
        from jsonschema.exceptions import best_match

        if raw.context:
            raw = best_match(raw.context)
        self.source = source
        self.doc = source.doc
        self.error = raw
        self.schema: Mapping[str, Any] = raw.schema if isinstance(raw.schema, Mapping) else {}
        self.expected: Any = raw.validator_value
        self.path = list(raw.absolute_path)
        self.node = node_at(self.doc.root, self.path)

    def diagnostics(self) -> Iterator[Diagnostic]:
        kind = str(self.error.validator)
        schema_path = self.error.absolute_schema_path
        if "then" in schema_path:
            yield from self._fallback_rule()
        elif "propertyNames" in schema_path:
            yield self._env_name()
        elif kind == "additionalProperties":
            yield from self._unknown_keys()
        elif kind == "required":
            yield from self._missing_keys()
        else:
            yield self._single(kind)

    def _single(self, kind: str) -> Diagnostic:
        if kind == "type":
            return self._wrong_type()
        if kind == "enum":
            return self._invalid_choice()
        if kind == "pattern":
            return self._invalid_id()
        if kind in ("minimum", "maximum", "exclusiveMinimum"):
            return self._out_of_range()
        if kind == "uniqueItems":
            return self._duplicate_item()
        if kind in ("minLength", "minItems"):
            return self._empty()
        return self._diag("invalid-value", f"{self._label()} has a value that is not allowed")

    # -- helpers ------------------------------------------------------------------------------

    def _diag(
        self, code: str, message: str, hint: str | None = None, span: Span | None = None
    ) -> Diagnostic:
        return error(self.doc.path, span or self.node.span, code, message, hint)

    def _label(self, path: list[str | int] | None = None) -> str:
        return _label(self.path if path is None else path)

    def _owner(self) -> str:
        """The mapping an error is about: the plan, `globals`, or a step by its id."""
        if not self.path:
            return "the plan"
        if len(self.path) == 2 and self.path[0] == "steps":
            return _step_name(self.node, self.path[1])
        return self._label()

    # -- error kinds --------------------------------------------------------------------------

    def _unknown_keys(self) -> Iterator[Diagnostic]:
        assert isinstance(self.node, MapNode), "additionalProperties applies to mappings"
        allowed = list(self.schema.get("properties", {}))
        for key_node, _ in self.node.entries:
            key = str(key_node.value)
            if key in allowed:
                continue
            hint = did_you_mean(key, allowed) or f"allowed keys: {', '.join(sorted(allowed))}"
            message = f"unknown key `{key}` in {self._owner()}"
            yield self._diag("unknown-key", message, hint, key_node.span)

    def _missing_keys(self) -> Iterator[Diagnostic]:
        assert isinstance(self.node, MapNode), "required applies to mappings"
        for key in self.expected:
            if self.node.get(key) is None:
                hint = "add at least one step under `steps:`" if key == "steps" else None
                message = f"{self._owner()} is missing the required key `{key}`"
                yield self._diag("missing-key", message, hint, _head(self.node))

    def _wrong_type(self) -> Diagnostic:
        expected = self.expected
        names = [expected] if isinstance(expected, str) else list(expected)
        wanted = " or ".join(_TYPE_NAMES.get(name, name) for name in names)
        got = _describe(self.error.instance)
        message = f"{self._label()} must be {wanted}, got {got}"
        return self._diag("wrong-type", message, self._type_hint(names))

    def _type_hint(self, expected: list[str]) -> str | None:
        value = self.error.instance
        field = next((part for part in reversed(self.path) if isinstance(part, str)), "")
        if isinstance(value, str) and field.endswith("_sec"):
            return _duration_hint(value)
        wants_number = "number" in expected or "integer" in expected
        if isinstance(value, str) and wants_number and _is_number_text(value):
            return f"remove the quotes: {value.strip()}"
        if "boolean" in expected and isinstance(value, str):
            return "write true or false, without quotes"
        if "integer" in expected and isinstance(value, float) and value.is_integer():
            return f"write {int(value)}"
        if "string" in expected and isinstance(value, (bool, int, float)):
            return f"quote it: '{self._source_text()}'"
        return None

    def _source_text(self) -> str:
        written = self.source.text_of(self.node.span)
        return str(self.error.instance) if written is None else written

    def _invalid_choice(self) -> Diagnostic:
        choices = [str(choice) for choice in self.expected]
        value = self.error.instance
        message = f"{self._label()} must be one of {', '.join(choices)}; got {_describe(value)}"
        hint = _suggest_choice(value, choices) if isinstance(value, str) else None
        return self._diag("invalid-value", message, hint)

    def _invalid_id(self) -> Diagnostic:
        value = str(self.error.instance)
        if self.path == ["plan_id"] and not value:
            return self._empty()
        if self.path == ["plan_id"]:
            return self._diag(
                "invalid-id",
                f"{value!r} is not a valid plan id: {_id_problem(value, digit_first=True)}",
                "plan ids are letters, digits, `_`, `.` or `-`, starting with a letter, a digit"
                " or `_` (at most 128 characters)",
            )
        return self._diag(
            "invalid-id",
            f"{value!r} is not a valid step id: {_id_problem(value)}",
            "step ids start with a letter or `_`, then letters, digits, `_`, `.` or `-`"
            " (at most 128 characters)",
        )

    def _env_name(self) -> Diagnostic:
        name = str(self.error.instance)
        span = None
        if isinstance(self.node, MapNode):
            key_node = self.node.key_node(name)
            span = key_node.span if key_node is not None else None
        return self._diag(
            "invalid-env-name",
            f"{name!r} is not a valid environment variable name",
            "names start with a letter or `_`, then letters, digits or `_`",
            span,
        )

    def _out_of_range(self) -> Diagnostic:
        schema = self.schema
        value = self.error.instance
        low, high = schema.get("minimum"), schema.get("maximum")
        if low is not None and high is not None:
            bound = f"between {low} and {high}"
        elif "exclusiveMinimum" in schema:
            bound = f"greater than {schema['exclusiveMinimum']}"
        elif low is not None:
            bound = f"at least {low}"
        else:
            bound = f"at most {high}"
        return self._diag("out-of-range", f"{self._label()} must be {bound}, got {value}")

    def _duplicate_item(self) -> Diagnostic:
        assert isinstance(self.node, SeqNode), "uniqueItems applies to lists"
        seen: set[str] = set()
        for item in self.node.items:
            text = json.dumps(to_plain(item), sort_keys=True)
            if text in seen:
                message = f"{self._label()} lists {_describe(to_plain(item))} more than once"
                return self._diag("duplicate-item", message, "remove the repeated entry", item.span)
            seen.add(text)
        return self._diag("duplicate-item", f"{self._label()} has repeated entries")

    def _empty(self) -> Diagnostic:
        hint = "a plan needs at least one step" if self.path == ["steps"] else None
        return self._diag("empty-value", f"{self._label()} must not be empty", hint)

    def _fallback_rule(self) -> Iterator[Diagnostic]:
        if self.expected == ["fallback"]:
            # on_failure is fallback_step and no fallback: self.node is the step.
            assert isinstance(self.node, MapNode), "required applies to mappings"
            policy = self.node.get("on_failure")
            yield self._diag(
                "missing-key",
                "`on_failure: fallback_step` needs a `fallback` step id",
                "add `fallback: <id of the step to run when this one fails>`",
                policy.span if policy is not None else _head(self.node),
            )
            return
        step = node_at(self.doc.root, self.path[:2])
        if not isinstance(step, MapNode):
            return
        policy = step.get("on_failure")
        if isinstance(policy, ScalarNode) and policy.value not in tuple(OnFailure):
            return  # already reported as an invalid on_failure value
        fallback = step.key_node("fallback")
        yield self._diag(
            "fallback-without-policy",
            "`fallback` is set but `on_failure` is not `fallback_step`, so it would never run",
            "add `on_failure: fallback_step`, or remove `fallback`",
            fallback.span if fallback is not None else step.span,
        )


def _label(path: list[str | int]) -> str:
    """`timeout_sec`, `globals.env.HOME`, `args[2]`, `steps[3]`: a field named from its owner."""
    if len(path) >= 3 and path[0] == "steps":
        path = path[2:]
    if not path:
        return "the plan"
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return f"`{text}`"


def _step_name(step: Node, index: str | int) -> str:
    if isinstance(step, MapNode):
        step_id = step.get("id")
        if isinstance(step_id, ScalarNode) and isinstance(step_id.value, str):
            return f"step `{step_id.value}`"
    return f"`steps[{index}]`"


def _head(node: Node) -> Span:
    """The first line of a mapping: pointing at all of a 30-line step says less."""
    return Span(node.span.line, node.span.col)


def _describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the string {shown!r}"
    return "a list" if isinstance(value, list) else "a mapping"


def _suggest_choice(value: str, choices: list[str]) -> str | None:
    """Did-you-mean, also for a prefix (`skip` → `skip_dependents`), which difflib misses."""
    close = did_you_mean(value, choices)
    if close is not None or not value:
        return close
    starts = [choice for choice in choices if choice.startswith(value.lower())]
    return f"did you mean `{starts[0]}`?" if len(starts) == 1 else None


def _is_number_text(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _duration_hint(value: str) -> str:
    match = _DURATION.fullmatch(value)
    if match is not None:
        factor = _DURATION_UNITS.get(match.group(2).lower())
        if factor is not None:
            seconds = float(match.group(1)) * factor
            shown = int(seconds) if seconds.is_integer() else seconds
            return f"durations are numbers of seconds: write {shown} for {value!r}"
    return "durations are numbers of seconds, e.g. 600"


def _id_problem(value: str, *, digit_first: bool = False) -> str:
    if not value:
        return "it is empty"
    if len(value) > 128:
        return f"it has {len(value)} characters"
    first = value[0]
    if not (
        first.isascii() and (first.isalpha() or first == "_" or (digit_first and first.isdigit()))
    ):
        return f"it starts with {first!r}"
    bad = next(char for char in value if not _ID_CHARS.fullmatch(char))
    return f"it contains {bad!r}"
