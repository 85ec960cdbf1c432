"""`matrix:` steps expanded into one step per combination, with GitHub Actions' include/exclude
rules, and `depends_on` names of groups (a matrix, an include) resolved to their members
(docs/composition.md). Runs after schema validation, on the node tree."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any

from planc.diagnostics import Diagnostic, Span, error
from planc.nodes import (
    Document,
    MapNode,
    Node,
    ScalarNode,
    SeqNode,
    map_strings,
    to_plain,
    with_entries,
)
from planc.suggest import did_you_mean
from planrun.core.ir_types import STEP_ID

CODES = {
    "matrix-invalid": (
        "a `matrix:` that expands to nothing, or a key that only a matrix or fan-out step takes",
        "    matrix:\n      python: ['3.10', '3.11', '3.12']\n      shard: [1, 2]\n"
        "      exclude: [{python: '3.10', shard: 2}]",
    ),
    "matrix-too-large": (
        "a matrix with more combinations than the cap (256, as GitHub Actions)",
        "Split the step, or run the combinations from a fan-out (`for_each`) with `max_items`.",
    ),
    "matrix-id": (
        "two combinations of a matrix get the same step id, or an id that is not a valid step id",
        "An instance's id is the step id and its values joined by `-`, every character outside"
        " `A-Za-z0-9_.-` written `_`: values `a b` and `a_b` give the same id.",
    ),
    "unknown-matrix-key": (
        "`${{ matrix.NAME }}` names no key of the step's matrix",
        "    matrix: {python: ['3.11']}\n    args: ['${{ matrix.pyton }}']   # python",
    ),
}

MAX_MATRIX = 256
_MATRIX_REF = re.compile(r"\$\{\{\s*matrix\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
_GROUP_ONLY = ("max_parallel", "fail_fast")
_MATRIX_KEYS = ("matrix", *_GROUP_ONLY)


@dataclass(eq=False, repr=False)
class Group:
    """A matrix (members known now) or a fan-out (members made at run time)."""

    kind: str
    members: list[str]
    fail_fast: bool
    max_parallel: int | None
    span: Span


@dataclass(eq=False, repr=False)
class Expanded:
    document: Document
    groups: dict[str, Group] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)


def expand_matrices(document: Document, aliases: dict[str, list[str]]) -> Expanded:
    root = document.root
    assert isinstance(root, MapNode)
    steps = root.get("steps")
    assert isinstance(steps, SeqNode)
    result = Expanded(document)
    if not _needs_work(steps, aliases):
        return result
    path = document.path
    aliases = dict(aliases)
    plain_ids = {_id(n) for n in steps.items if isinstance(n, MapNode) and n.get("matrix") is None}
    items: list[Node] = []
    for node in steps.items:
        assert isinstance(node, MapNode)
        if node.get("matrix") is not None and node.get("for_each") is not None:
            at = (node.key_node("for_each") or node).span
            message = f"step `{_id(node)}` has both `matrix` and `for_each`: choose one"
            result.diagnostics.append(error(path, at, "matrix-invalid", message))
            continue
        if node.get("matrix") is None:
            result.diagnostics += _outside(path, node)
            items.append(node)
            continue
        if _id(node) in plain_ids:  # `depends_on: [id]` would be ambiguous
            at = (node.key_node("matrix") or node).span
            message = f"matrix step `{_id(node)}` has the id of another step"
            result.diagnostics.append(error(path, at, "matrix-id", message))
            continue
        instances = _expand(path, node, result)
        aliases[str(_scalar(node, "id"))] = [_id(i) for i in instances]
        items.extend(instances)
    items = [_resolve_groups(n, aliases) for n in items]
    new_root = with_entries(root, {"steps": SeqNode(tuple(items), steps.span)})
    result.document = Document(document.path, document.text, new_root)
    return result


def _needs_work(steps: SeqNode, aliases: dict[str, list[str]]) -> bool:
    # Only plans that use a matrix pay for this stage (a 100k-step plan has none).
    return bool(aliases) or any(
        isinstance(n, MapNode) and any(n.get(k) is not None for k in _MATRIX_KEYS)
        for n in steps.items
    )


def _outside(path: str, node: MapNode) -> list[Diagnostic]:
    found = []
    is_fan_out = node.get("for_each") is not None
    for key in _GROUP_ONLY:
        if node.get(key) is not None and not is_fan_out:
            found.append(
                error(path, (node.key_node(key) or node).span,
                      "matrix-invalid", f"`{key}` applies to a `matrix` or `for_each` step only")
            )  # fmt: skip
    for scalar in _strings(node):
        match = _MATRIX_REF.search(str(scalar.value))
        if match:
            found.append(
                error(path, scalar.position_of(match.start(), match.end() - match.start()),
                      "unknown-matrix-key", f"step `{_id(node)}` has no `matrix:`, so"
                      f" `matrix.{match.group(1)}` is not defined")
            )  # fmt: skip
    return found


def _expand(path: str, node: MapNode, result: Expanded) -> list[Node]:
    matrix_key = node.key_node("matrix")
    assert matrix_key is not None
    at = matrix_key.span
    spec: dict[str, Any] = _plain(node.get("matrix"))
    keys = [k for k in spec if k not in ("include", "exclude")]
    combos: list[dict[str, Any]] = (
        [
            dict(zip(keys, values, strict=True))
            for values in itertools.product(*(spec[k] for k in keys))
        ]
        if keys
        else []
    )
    for exclusion in spec.get("exclude", []):
        unknown = [k for k in exclusion if k not in keys]
        if unknown:
            result.diagnostics.append(
                error(
                    path,
                    at,
                    "matrix-invalid",
                    f"`exclude` names `{unknown[0]}`, which is not a key of the matrix",
                )
            )
        combos = [c for c in combos if not all(c.get(k) == v for k, v in exclusion.items())]
    added: list[dict[str, Any]] = []
    for extra in spec.get("include", []):
        matched = False
        for combo in combos:
            if all(combo.get(k) == v for k, v in extra.items() if k in keys):
                combo.update(extra)
                matched = True
        if not matched:
            added.append(dict(extra))
    combos += added
    base = _id(node)
    if not combos:
        result.diagnostics.append(
            error(path, at, "matrix-invalid", f"the matrix of `{base}` has no combination")
        )
        return []
    if len(combos) > MAX_MATRIX:
        result.diagnostics.append(
            error(
                path,
                at,
                "matrix-too-large",
                f"the matrix of `{base}` has {len(combos)} combinations, more than {MAX_MATRIX}",
            )
        )
        return []
    known = {k for c in combos for k in c}
    for scalar in _strings(node):
        for match in _MATRIX_REF.finditer(str(scalar.value)):
            if match.group(1) not in known:
                name = match.group(1)
                span = scalar.position_of(match.start(), match.end() - match.start())
                message = f"`matrix.{name}` is not a key of the matrix of `{base}`"
                hint = did_you_mean(name, known) or "keys: " + ", ".join(sorted(known))
                result.diagnostics.append(error(path, span, "unknown-matrix-key", message, hint))
    instances: list[Node] = []
    seen: dict[str, int] = {}
    for n, combo in enumerate(combos):
        parts = (
            [combo[k] for k in keys if k in combo]
            if n < len(combos) - len(added)
            else list(combo.values())
        )
        sid = "-".join([base, *(_UNSAFE.sub("_", _text(v)) for v in parts)])
        if sid in seen or not STEP_ID.fullmatch(sid):
            why = (
                f"is also the id of combination {seen[sid] + 1}"
                if sid in seen
                else "is not a valid step id (at most 128 characters)"
            )
            result.diagnostics.append(
                error(
                    path,
                    at,
                    "matrix-id",
                    f"combination {n + 1} of `{base}` gets the id `{sid}`, which {why}",
                )
            )
            continue
        seen[sid] = n
        instances.append(_instance(node, sid, combo, parts, at))
    result.groups[base] = Group(
        "matrix", [_id(i) for i in instances], _plain(node.get("fail_fast")) is not False,
        _plain(node.get("max_parallel")), at,
    )  # fmt: skip
    return instances


def _instance(
    node: MapNode, sid: str, combo: dict[str, Any], parts: list[Any], at: Span
) -> MapNode:
    def fill(scalar: ScalarNode) -> str:
        return _MATRIX_REF.sub(lambda m: _text(combo.get(m.group(1), "")), str(scalar.value))

    filled = map_strings(node, fill)
    assert isinstance(filled, MapNode)
    changes: dict[str, Node | None] = {k: None for k in _MATRIX_KEYS}
    id_node = filled.get("id")
    assert isinstance(id_node, ScalarNode)
    changes["id"] = id_node._replace(value=sid, text_col=None)
    name = node.get("name")
    if not (isinstance(name, ScalarNode) and "matrix." in str(name.value)):
        title = str(name.value) if isinstance(name, ScalarNode) else _id(node)
        label = f"{title} ({', '.join(_text(v) for v in parts)})"
        changes["name"] = ScalarNode.at(label, name.span if name else at)
    return with_entries(filled, changes, at)


def _resolve_groups(node: Node, aliases: dict[str, list[str]]) -> Node:
    assert isinstance(node, MapNode)
    seq = node.get("depends_on")
    if not isinstance(seq, SeqNode) or not any(
        isinstance(i, ScalarNode) and str(i.value) in aliases for i in seq.items
    ):
        return node
    out: dict[str, Node] = {}
    for item in seq.items:
        for member in _members(str(item.value) if isinstance(item, ScalarNode) else "", aliases, 0):
            out.setdefault(
                member,
                item._replace(value=member, text_col=None)
                if isinstance(item, ScalarNode)
                else item,
            )
    return with_entries(node, {"depends_on": SeqNode(tuple(out.values()), seq.span)})


def _members(name: str, aliases: dict[str, list[str]], depth: int) -> list[str]:
    if name not in aliases or depth > 32:
        return [name]
    return [m for member in aliases[name] for m in _members(member, aliases, depth + 1)]


def _strings(node: Node) -> list[ScalarNode]:
    if isinstance(node, ScalarNode):
        return [node] if isinstance(node.value, str) else []
    if isinstance(node, SeqNode):
        return [s for item in node.items for s in _strings(item)]
    return [s for key, value in node.entries if str(key.value) != "matrix" for s in _strings(value)]


def _scalar(node: MapNode, key: str) -> Any:
    value = node.get(key)
    return value.value if isinstance(value, ScalarNode) else None


def _id(node: Node) -> str:
    return str(_scalar(node, "id")) if isinstance(node, MapNode) else ""


def _plain(node: Node | None) -> Any:
    return None if node is None else to_plain(node)


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
