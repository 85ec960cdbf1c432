"""Generate docs/plan-reference.md from the plan JSON Schema: `python docs/plan_reference.py`.

The schema is compiler/planc/plan.schema.json (what `planc schema` prints). Every object with
properties (the plan, `globals`, a step, a param, …) becomes a section with one row per key:
its type and constraints, its default, its description. `--check` exits 1 when the file on disk
differs from what the schema gives (tests/pipelines/test_plan_reference.py does the same).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "compiler" / "planc" / "plan.schema.json"
TARGET = ROOT / "docs" / "plan-reference.md"

Schema = dict[str, Any]


class _Sections:
    """The objects to document, in the order they are first reached from the top level."""

    def __init__(self, root: Schema) -> None:
        self.root = root
        self.order: list[tuple[str, str, Schema]] = []  # (anchor, heading, schema)
        self.anchors: dict[int, str] = {}

    def add(self, anchor: str, heading: str, schema: Schema) -> str:
        key = id(schema)
        if key not in self.anchors:
            self.anchors[key] = anchor
            self.order.append((anchor, heading, schema))
        return self.anchors[key]

    def resolve(self, schema: Schema) -> tuple[str, Schema]:
        ref = schema["$ref"]
        if not ref.startswith("#/definitions/"):
            raise ValueError(f"unsupported $ref {ref!r}")
        name = ref.removeprefix("#/definitions/")
        return name, self.root["definitions"][name]


def _code(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return f"`{text}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _number_bounds(schema: Schema) -> str:
    bounds = []
    for key, symbol in (
        ("minimum", "≥"),
        ("exclusiveMinimum", ">"),
        ("maximum", "≤"),
        ("exclusiveMaximum", "<"),
    ):
        if key in schema:
            bounds.append(f"{symbol} {schema[key]}")
    return " and ".join(bounds)


def _type_text(schema: Schema, name: str, sections: _Sections) -> str:
    """The type and constraints of `schema` in words, adding sections for nested objects."""
    if "$ref" in schema:
        ref_name, target = sections.resolve(schema)
        anchor = sections.add(ref_name, ref_name, target)
        return f"[{ref_name}](#{anchor})"
    if "if" in schema:  # an item that is one thing or another (a step, or an include)
        return " or ".join(_type_text(schema[k], name, sections) for k in ("else", "then"))
    if "enum" in schema:
        return "one of " + ", ".join(_code(v) for v in schema["enum"])
    if "const" in schema:
        return f"exactly {_code(schema['const'])}"
    types = schema.get("type", "any")
    names = types if isinstance(types, list) else [types]
    words = [_single_type(t, schema, name, sections) for t in names]
    return " or ".join(words)


def _single_type(kind: str, schema: Schema, name: str, sections: _Sections) -> str:
    if kind == "string":
        text = "non-empty string" if schema.get("minLength") == 1 else "string"
        if "pattern" in schema:
            text += f" matching {_code(schema['pattern'])}"
        return text
    if kind in ("integer", "number"):
        bounds = _number_bounds(schema)
        return f"{kind} {bounds}" if bounds else kind
    if kind == "boolean":
        return "boolean"
    if kind == "null":
        return "null"
    if kind == "array":
        items = schema.get("items", {})
        item_text = _type_text(items, name, sections)
        text = "array of " + " or ".join(_plural(part) for part in item_text.split(" or "))
        extras = []
        if "minItems" in schema:
            extras.append(f"at least {schema['minItems']}")
        if schema.get("uniqueItems"):
            extras.append("no duplicates")
        return text + (f" ({', '.join(extras)})" if extras else "")
    if kind == "object":
        if "properties" in schema:
            anchor = sections.add(name, name, schema)
            return f"object, see [{name}](#{anchor})"
        values = schema.get("additionalProperties")
        if isinstance(values, dict):
            text = f"map of name to {_type_text(values, name, sections)}"
            pattern = schema.get("propertyNames", {}).get("pattern")
            if pattern is not None:
                text += f"; names match {_code(pattern)}"
            return text
        return "object (free-form)"
    return kind


def _plural(text: str) -> str:
    for word in ("string", "integer", "number", "boolean"):
        if text.startswith(word):
            return word + "s" + text[len(word) :]
    return text


def _rule(rule: Schema) -> str:
    """One `if`/`then` of an `allOf`, in words (or as JSON when it has another shape)."""
    condition, consequence = rule.get("if", {}), rule.get("then", {})
    if set(rule) == {"if", "then"}:
        when = _facts(condition, "is present")
        then = _facts(consequence, "is required")
        if when is not None and then is not None:
            return f"when {when}, {then}"
    return _code(json.dumps(rule, sort_keys=True))


def _facts(schema: Schema, presence: str) -> str | None:
    if not set(schema) <= {"required", "properties"}:
        return None
    facts = []
    consts: dict[str, Any] = {}
    for key, sub in schema.get("properties", {}).items():
        if set(sub) != {"const"}:
            return None
        consts[key] = sub["const"]
    for key in schema.get("required", []):
        if key in consts:
            facts.append(f"`{key}` is {_code(consts.pop(key))}")
        else:
            facts.append(f"`{key}` {presence}")
    facts += [f"`{key}`, when present, is {_code(value)}" for key, value in consts.items()]
    return " and ".join(facts) if facts else None


def _section(anchor: str, heading: str, schema: Schema, sections: _Sections) -> list[str]:
    lines = [f"## {heading}", ""]
    if anchor != heading:
        lines[0] = f'## {heading} <a id="{anchor}"></a>'
    if schema.get("description"):
        lines += [schema["description"], ""]
    required = set(schema.get("required", []))
    closed = schema.get("additionalProperties") is False
    lines += ["| key | type | default | description |", "|-----|------|---------|-------------|"]
    for key, sub in schema["properties"].items():
        type_text = _type_text(sub, key, sections)
        if key in required:
            default = "**required**"
        elif "default" in sub:
            default = _code(sub["default"]) if sub["default"] != "" else '`""`'
        else:
            default = "—"
        title = sub.get("title", "")
        description = sub.get("description", "")
        text = f"**{title}.** {description}" if title and description else title or description
        lines.append(f"| `{key}` | {_cell(type_text)} | {_cell(default)} | {_cell(text)} |")
    lines.append("")
    notes = []
    if closed:
        notes.append("No other keys are allowed (`unknown-key`).")
    notes += [f"Rule: {_rule(rule)}." for rule in schema.get("allOf", [])]
    for note in notes:
        lines += [note, ""]
    return lines


def reference(schema: Schema) -> str:
    sections = _Sections(schema)
    sections.add("plan", "Plan (top level)", schema)
    body: list[str] = []
    index = 0
    while index < len(sections.order):  # sections grow while earlier ones are rendered
        anchor, heading, sub = sections.order[index]
        body += _section(anchor, heading, sub, sections)
        index += 1
    header = [
        "# Plan reference",
        "",
        "Generated by `python docs/plan_reference.py` from the plan JSON Schema"
        " (`compiler/planc/plan.schema.json`, printed by `planc schema`); do not edit by hand."
        " A test fails when this file and the schema drift apart.",
        "",
        f"Schema `$id`: {_code(schema.get('$id', ''))} ({schema.get('$schema', '')})."
        " A plan is YAML or JSON; `planc check PLAN` validates it against this schema and then"
        " checks its meaning (docs/diagnostics.md lists every diagnostic). What the keys do when"
        " the plan runs: [semantics.md](semantics.md) (trigger rules, failure policies,"
        " fallbacks), [conditions.md](conditions.md) (the `condition` language),"
        " [dataflow.md](dataflow.md) (params, step outputs, `${{ }}` interpolation, secrets)."
        " Worked examples: [pipelines/](pipelines/).",
        "",
        "Contents: "
        + ", ".join(f"[{heading}](#{anchor})" for anchor, heading, _ in sections.order)
        + ".",
        "",
    ]
    return "\n".join(header + body).rstrip("\n") + "\n"


def generate() -> str:
    return reference(json.loads(SCHEMA.read_text(encoding="utf-8")))


def main(argv: list[str]) -> int:
    text = generate()
    if argv[1:] == ["--check"]:
        current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
        if current != text:
            print(f"{TARGET.relative_to(ROOT)} is stale: run `python docs/plan_reference.py`")
            return 1
        return 0
    if argv[1:]:
        print("usage: python docs/plan_reference.py [--check]", file=sys.stderr)
        return 2
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
