"""The plan's DAG as Graphviz dot or Mermaid text, drawn from the IR."""

from __future__ import annotations

import json
from typing import Any


def draw(ir: dict[str, Any], fmt: str) -> str:
    return _dot(ir) if fmt == "dot" else _mermaid(ir)


def _label(step: dict[str, Any], groups: dict[str, Any]) -> str:
    rule = step["trigger_rule"]
    # A real line break: json.dumps writes it as the two characters backslash and n, which
    # Graphviz reads as a new line (an escaped backslash was drawn as a literal backslash-n).
    label = step["id"] if rule == "all_success" else f"{step['id']}\n[{rule}]"
    group = groups.get(step["id"])
    if group is not None and group["kind"] == "for_each":  # one box stands for its instances
        label += f"\n[for_each, at most {group['max_items']}]"
    return label


def _matrices(ir: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """Each matrix and its instances, drawn as one box around them."""
    groups = ir.get("groups", {})
    return [(name, g["members"]) for name, g in groups.items() if g["kind"] == "matrix"]


def _dot(ir: dict[str, Any]) -> str:
    lines = [f"digraph {json.dumps(ir['plan']['id'])} {{", "  rankdir=LR;", "  node [shape=box];"]
    groups = ir.get("groups", {})
    for step in ir["steps"]:
        style = ", style=dashed" if step["is_fallback"] else ""
        label = json.dumps(_label(step, groups))
        lines.append(f"  {json.dumps(step['id'])} [label={label}{style}];")
    for name, members in _matrices(ir):
        inside = " ".join(json.dumps(m) + ";" for m in members)
        title = json.dumps(f"{name} (matrix)")
        lines.append(f"  subgraph {json.dumps('cluster_' + name)} {{ label={title}; {inside} }}")
    for step in ir["steps"]:
        for dep in step["depends_on"]:
            lines.append(f"  {json.dumps(dep)} -> {json.dumps(step['id'])};")
        if step["fallback"]:
            fallback = json.dumps(step["fallback"])
            lines.append(
                f'  {json.dumps(step["id"])} -> {fallback} [style=dashed, label="on failure"];'
            )
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mermaid(ir: dict[str, Any]) -> str:
    node_names = {step["id"]: f"s{i}" for i, step in enumerate(ir["steps"])}
    lines = ["flowchart LR"]
    groups = ir.get("groups", {})
    for step in ir["steps"]:
        label = _label(step, groups).replace("\n", "<br/>").replace('"', "#quot;")
        shape = f'(["{label}"])' if step["is_fallback"] else f'["{label}"]'
        lines.append(f"  {node_names[step['id']]}{shape}")
    for i, (name, members) in enumerate(_matrices(ir)):
        lines.append(f'  subgraph g{i} ["{name} (matrix)"]')
        lines += [f"    {node_names[m]}" for m in members]
        lines.append("  end")
    for step in ir["steps"]:
        for dep in step["depends_on"]:
            lines.append(f"  {node_names[dep]} --> {node_names[step['id']]}")
        if step["fallback"]:
            lines.append(
                f"  {node_names[step['id']]} -. on failure .-> {node_names[step['fallback']]}"
            )
    return "\n".join(lines) + "\n"
