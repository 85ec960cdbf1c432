"""Lowering: a checked plan → the typed IR (defaults resolved, topological order)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import planc
from planc.diagnostics import Span
from planc.graph import PlanGraph
from planc.matrix import Group
from planc.model import SourcePlan, SourceStep
from planc.rules.conditions import condition_ir
from planc.rules.invariants import invariants_ir
from planc.sourcemap import SourceMap
from planrun.core.ir_types import IRGlobals, IRPlan, IRStep, OnFailure
from planrun.core.reads import as_text
from planrun.core.trigger_rules import TriggerRule

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


@dataclass(eq=False, repr=False)
class Composition:
    """What includes and matrices left for the IR: the files read and the groups of steps."""

    sources: SourceMap = field(default_factory=SourceMap)
    groups: dict[str, Group] = field(default_factory=dict)


def lower(
    plan: SourcePlan,
    graph: PlanGraph,
    source_sha256: str,
    composition: Composition | None = None,
) -> IRPlan:
    """The IR without its digest. `graph` must be acyclic (the rules have passed)."""
    order = graph.topo_order()
    assert order is not None, "lowering needs an acyclic graph"
    composition = composition or Composition()
    position = {sid: i for i, sid in enumerate(order)}
    resolved_globals = _globals(plan)
    steps = [_step(plan, graph, graph.steps[sid], resolved_globals, position) for sid in order]
    if len(composition.sources.files) > 1:
        steps = [
            replace(step, location=composition.sources.location(graph.steps[step.id].span))
            for step in steps
        ]
    raw = plan.raw
    source: dict[str, Any] = {
        "path": as_text(plan.path.replace("\\", "/")),
        "sha256": source_sha256,
    }
    if len(composition.sources.files) > 1:
        files = {f.path.replace("\\", "/"): f.sha256 for f in composition.sources.files[1:]}
        source["includes"] = [{"path": p, "sha256": h} for p, h in files.items()]
    # Only plans that use them get `watch`, `groups` and `invariants`: every other plan's IR
    # stays byte for byte the same.
    return IRPlan(
        compiler={"name": "planc", "version": planc.__version__},
        source=source,
        plan={
            "id": raw["plan_id"],
            "version": str(raw.get("version", "")),
            "description": raw.get("description") or "",
            "metadata": raw.get("metadata") or {},
        },
        globals=resolved_globals,
        params=_params(plan),
        secrets=tuple(sorted(set(raw.get("secrets") or []))),
        steps=tuple(steps),
        watch=None if plan.watch is None else _watch(plan.watch),
        groups=_groups(plan, composition) or None,
        invariants=_tuple_or_none(invariants_ir(plan)),
    )


def _tuple_or_none(items: list[dict[str, Any]] | None) -> tuple[dict[str, Any], ...] | None:
    return None if items is None else tuple(items)


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


def _globals(plan: SourcePlan) -> IRGlobals:
    given = plan.globals
    resolved = {key: given.get(key, default) for key, default in GLOBAL_DEFAULTS.items()}
    return IRGlobals(**resolved, env=dict(given.get("env") or {}))


def _step(
    plan: SourcePlan,
    graph: PlanGraph,
    step: SourceStep,
    globals_: IRGlobals,
    position: dict[str, int],
) -> IRStep:
    # The plain values, read directly: this runs for every step of the plan.
    get = step.raw.get
    sid = step.id
    condition = get("condition")
    teardown_for = get("teardown_for")
    resources = get("resources")
    return IRStep(
        id=sid,
        index=step.index,
        name=get("name") or sid,
        description=get("description") or "",
        command=step.raw["command"],
        args=tuple(get("args") or ()),
        cwd=get("cwd") or ".",
        shell=bool(get("shell", False)),
        env={**globals_.env, **(get("env") or {})},
        secrets=tuple(sorted({*(plan.raw.get("secrets") or []), *(get("secrets") or [])})),
        depends_on=tuple(sorted(graph.deps[sid], key=position.__getitem__)),
        dependents=tuple(sorted(graph.dependents[sid], key=position.__getitem__)),
        timeout_sec=_first(get("timeout_sec"), globals_.default_timeout_sec),
        heartbeat_timeout_sec=_first(get("heartbeat_timeout_sec"), globals_.heartbeat_timeout_sec),
        retries=_first(get("retries"), globals_.default_retries),
        retry_delay_sec=_first(get("retry_delay_sec"), globals_.default_retry_delay_sec),
        retry_backoff=_first(get("retry_backoff"), 1),
        max_retry_delay_sec=get("max_retry_delay_sec"),
        critical=bool(get("critical", True)),
        # A teardown runs whatever the other dependencies did, once its setup succeeded.
        trigger_rule=TriggerRule.ALL_DONE
        if teardown_for
        else TriggerRule(get("trigger_rule") or TriggerRule.ALL_SUCCESS),
        condition=condition_ir(condition) if isinstance(condition, str) else None,
        on_failure=OnFailure(get("on_failure") or OnFailure.ABORT),
        fallback=get("fallback"),
        is_fallback=sid in graph.fallback_steps,
        provides=tuple(get("provides") or ()),
        consumes=tuple(get("consumes") or ()),
        tags=tuple(get("tags") or ()),
        ui_hints=get("ui_hints") or {},
        location=f"{as_text(plan.path)}:{step.span.line}:{step.span.col}",
        # Only when declared or given: the IR of a plan without them stays byte-identical
        # (docs/ir.md, docs/fingerprints.md, docs/distributed.md).
        teardown_for=teardown_for or None,
        sources=tuple(get("sources") or ()) or None,
        generates=tuple(get("generates") or ()) or None,
        resources=None if resources is None else dict(sorted(resources.items())),
        executor=get("executor"),
    )


def _first(value: Any, default: Any) -> Any:
    return default if value is None else value
