"""Lowering: a checked plan → the IR dict (defaults resolved, topological order)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import planc
from planc.diagnostics import Span
from planc.graph import PlanGraph
from planc.matrix import Group
from planc.model import SourcePlan, SourceStep
from planc.rules.conditions import condition_ir
from planc.rules.invariants import invariants_ir
from planc.sourcemap import SourceMap
from planrun.ir import IR_VERSION
from planrun.reads import as_text

GLOBAL_DEFAULTS: dict[str, Any] = {
    "max_concurrency": 4,
    "default_timeout_sec": None,
    "default_retries": 0,
    "default_retry_delay_sec": 0,
    "heartbeat_timeout_sec": None,
    "kill_grace_sec": 5,
}

WATCH_DEFAULTS: dict[str, Any] = {
    "paths": ["."],
    "ignore": [],
    "debounce_sec": 0.2,
    "interval_sec": None,
    "backoff_sec": 5,
    "max_backoff_sec": 300,
}


@dataclass
class Composition:
    """What includes and matrices left for the IR: the files read and the groups of steps."""

    sources: SourceMap = field(default_factory=SourceMap)
    groups: dict[str, Group] = field(default_factory=dict)


def lower(
    plan: SourcePlan,
    graph: PlanGraph,
    source_sha256: str,
    composition: Composition | None = None,
) -> dict[str, Any]:
    """The IR without its digest. `graph` must be acyclic (the rules have passed)."""
    order = graph.topo_order()
    assert order is not None, "lowering needs an acyclic graph"
    composition = composition or Composition()
    position = {sid: i for i, sid in enumerate(order)}
    resolved_globals = _globals(plan)
    steps = [_step(plan, graph, graph.steps[sid], resolved_globals, position) for sid in order]
    if len(composition.sources.files) > 1:
        for step in steps:
            step["location"] = composition.sources.location(graph.steps[step["id"]].span)
    raw = plan.raw
    ir: dict[str, Any] = {
        "ir_version": IR_VERSION,
        "compiler": {"name": "planc", "version": planc.__version__},
        "source": {
            "path": as_text(plan.path.replace("\\", "/")),
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
    if plan.watch is not None:  # only then: the IR of a plan without `watch:` stays as it was
        ir["watch"] = _watch(plan.watch)
    # Only plans that use them get these keys: every other plan's IR stays byte for byte the same.
    groups = _groups(plan, composition)
    if groups:
        ir["groups"] = groups
    if len(composition.sources.files) > 1:
        files = {f.path.replace("\\", "/"): f.sha256 for f in composition.sources.files[1:]}
        ir["source"]["includes"] = [{"path": p, "sha256": h} for p, h in files.items()]
    invariants = invariants_ir(plan)
    if invariants is not None:  # likewise: a plan without `invariants:` keeps its IR bytes
        ir["invariants"] = invariants
    return ir


def _groups(plan: SourcePlan, composition: Composition) -> dict[str, Any]:
    """Matrices (members known) and fan-outs (members made at run time), by name."""

    def locate(span: Span) -> str:
        if composition.sources.files:
            return composition.sources.location(span)
        return f"{as_text(plan.path)}:{span.line}:{span.col}"

    out: dict[str, Any] = {}
    for name, group in composition.groups.items():
        out[name] = {
            "kind": group.kind,
            "members": group.members,
            "fail_fast": group.fail_fast,
            "max_parallel": group.max_parallel,
            "max_items": None,
            "over": None,
            "location": locate(group.span),
        }
    for step in plan.steps:
        over = step.get("for_each")
        if over is None:
            continue
        producer, _, output = over.strip()[3:-2].strip()[len("steps.") :].rpartition(".outputs.")
        out[step.id] = {
            "kind": "for_each",
            "members": [],
            "fail_fast": step.get("fail_fast") is not False,
            "max_parallel": step.get("max_parallel"),
            "max_items": step.get("max_items"),
            "over": {"step": producer, "output": output},
            "location": locate(step.key_span("for_each")),
        }
    return dict(sorted(out.items()))


def _watch(given: dict[str, Any]) -> dict[str, Any]:
    """`planrun watch` settings with every default resolved (docs/ir.md)."""
    resolved = {key: given.get(key, default) for key, default in WATCH_DEFAULTS.items()}
    resolved["paths"] = list(resolved["paths"])
    resolved["ignore"] = list(resolved["ignore"])
    return resolved


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
    teardown_for = get("teardown_for")
    step_ir: dict[str, Any] = {
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
        # A teardown runs whatever the other dependencies did, once its setup succeeded.
        "trigger_rule": "all_done" if teardown_for else get("trigger_rule") or "all_success",
        "condition": condition_ir(condition) if isinstance(condition, str) else None,
        "on_failure": get("on_failure") or "abort",
        "fallback": get("fallback"),
        "is_fallback": sid in graph.fallback_steps,
        "provides": list(get("provides") or []),
        "consumes": list(get("consumes") or []),
        "tags": list(get("tags") or []),
        "ui_hints": get("ui_hints") or {},
        "location": f"{as_text(plan.path)}:{step.span.line}:{step.span.col}",
        # Only on a teardown, so that the IR of every other plan stays byte-identical.
        **({"teardown_for": teardown_for} if teardown_for else {}),
    }
    # Only when declared: the IR of a plan without them stays as it was (docs/ir.md).
    for key in ("sources", "generates"):
        patterns = get(key)
        if patterns:
            step_ir[key] = list(patterns)
    # Only when given: the IR of a plan without them is byte for byte what it was before.
    for key in _PLACEMENT_KEYS:
        value = get(key)
        if value is not None:
            step_ir[key] = dict(sorted(value.items())) if key == "resources" else value
    return step_ir


# Where a step may run (docs/distributed.md); in the IR only when the plan says.
_PLACEMENT_KEYS = ("resources", "executor")


def _first(value: Any, default: Any) -> Any:
    return default if value is None else value
