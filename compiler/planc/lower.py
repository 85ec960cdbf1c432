"""Lowering: a checked plan → the IR dict (defaults resolved, topological order)."""

from __future__ import annotations

from typing import Any

import planc
from planc.graph import PlanGraph
from planc.model import SourcePlan, SourceStep
from planc.rules.conditions import condition_ir

IR_VERSION = 1

GLOBAL_DEFAULTS: dict[str, Any] = {
    "max_concurrency": 4,
    "default_timeout_sec": None,
    "default_retries": 0,
    "default_retry_delay_sec": 0,
    "heartbeat_timeout_sec": None,
    "kill_grace_sec": 5,
}


def lower(plan: SourcePlan, graph: PlanGraph, source_sha256: str) -> dict[str, Any]:
    """The IR without its digest. `graph` must be acyclic (the rules have passed)."""
    order = graph.topo_order()
    assert order is not None, "lowering needs an acyclic graph"
    position = {sid: i for i, sid in enumerate(order)}
    resolved_globals = _globals(plan)
    steps = [_step(plan, graph, graph.steps[sid], resolved_globals, position) for sid in order]
    raw = plan.raw
    return {
        "ir_version": IR_VERSION,
        "compiler": {"name": "planc", "version": planc.__version__},
        "source": {
            "path": plan.path.replace("\\", "/"),
            "sha256": source_sha256,
        },
        "plan": {
            "id": raw["plan_id"],
            "version": str(raw.get("version", "")),
            "description": raw.get("description") or "",
            "metadata": raw.get("metadata") or {},
        },
        "globals": resolved_globals,
        "params": _params(plan),
        "secrets": sorted(set(raw.get("secrets") or [])),
        "steps": steps,
    }


def _params(plan: SourcePlan) -> dict[str, Any]:
    """Each param with every field resolved; `required` when the plan gives no default."""
    declared = plan.raw.get("params") or {}
    return {
        name: {
            "type": spec.get("type", "string"),
            "required": "default" not in spec,
            "default": spec.get("default"),
            "description": spec.get("description", ""),
            "choices": spec.get("choices"),
            "secret": bool(spec.get("secret", False)),
        }
        for name, spec in sorted(declared.items())
    }


def _globals(plan: SourcePlan) -> dict[str, Any]:
    given = plan.globals
    resolved = {key: given.get(key, default) for key, default in GLOBAL_DEFAULTS.items()}
    resolved["env"] = dict(given.get("env") or {})
    return resolved


def _step(
    plan: SourcePlan,
    graph: PlanGraph,
    step: SourceStep,
    globals_: dict[str, Any],
    position: dict[str, int],
) -> dict[str, Any]:
    # The plain values, read directly: this runs for every step of the plan.
    get = step.raw.get
    sid = step.id
    condition = get("condition")
    lowered = {
        "id": sid,
        "index": step.index,
        "name": get("name") or sid,
        "description": get("description") or "",
        "command": get("command"),
        "args": list(get("args") or []),
        "cwd": get("cwd") or ".",
        "shell": bool(get("shell", False)),
        "env": {**globals_["env"], **(get("env") or {})},
        "secrets": sorted({*(plan.raw.get("secrets") or []), *(get("secrets") or [])}),
        "depends_on": sorted(graph.deps[sid], key=position.__getitem__),
        "dependents": sorted(graph.dependents[sid], key=position.__getitem__),
        "timeout_sec": _first(get("timeout_sec"), globals_["default_timeout_sec"]),
        "heartbeat_timeout_sec": _first(
            get("heartbeat_timeout_sec"), globals_["heartbeat_timeout_sec"]
        ),
        "retries": _first(get("retries"), globals_["default_retries"]),
        "retry_delay_sec": _first(get("retry_delay_sec"), globals_["default_retry_delay_sec"]),
        "retry_backoff": _first(get("retry_backoff"), 1),
        "max_retry_delay_sec": get("max_retry_delay_sec"),
        "critical": bool(get("critical", True)),
        "trigger_rule": get("trigger_rule") or "all_success",
        "condition": condition_ir(condition) if isinstance(condition, str) else None,
        "on_failure": get("on_failure") or "abort",
        "fallback": get("fallback"),
        "is_fallback": sid in graph.fallback_steps,
        "provides": list(get("provides") or []),
        "consumes": list(get("consumes") or []),
        "tags": list(get("tags") or []),
        "ui_hints": get("ui_hints") or {},
        "location": f"{plan.path}:{step.span.line}:{step.span.col}",
    }
    # Only when given: the IR of a plan without them is byte for byte what it was before.
    for key in _PLACEMENT_KEYS:
        value = get(key)
        if value is not None:
            lowered[key] = dict(sorted(value.items())) if key == "resources" else value
    return lowered


# Where a step may run (docs/distributed.md); in the IR only when the plan says.
_PLACEMENT_KEYS = ("resources", "executor")


def _first(value: Any, default: Any) -> Any:
    return default if value is None else value
