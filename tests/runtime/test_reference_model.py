"""Random plans through the real planrun, checked against a small reference model of
docs/semantics.md written here, independently of runtime/planrun/core/semantics.py.

Runs use -j1, so the documented start order (fallbacks and retries first, then the longest
remaining path, then source order) makes abort cancellations deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import run_plan

FAIL = ("failed", "timed_out")


@dataclass
class Spec:
    id: str
    deps: list[str]
    rule: str
    on_failure: str
    critical: bool
    fallback: str | None
    outcome: str  # "ok" | "fail"
    condition: bool | None  # None: no condition
    is_fallback: bool = False
    dependents: list[str] = field(default_factory=list)
    teardown_for: str | None = None  # one of `deps`: semantics.md §5b


# docs/semantics.md §1, written out rule by rule (planrun reads one table instead).
CLEANUP = ("all_done", "one_failed", "one_done", "all_failed", "none_skipped",
           "all_done_min_one_success")  # fmt: skip
EARLY = ("one_failed", "one_success", "one_done")
WITH_DEPS = (*CLEANUP[1:], "none_failed_min_one_success", "one_success", "all_skipped")


def rule_met(rule: str, ok: int, tolerated: int, failed: int, skipped: int, n: int) -> bool:
    """`failed` counts untolerated failures, upstream_failed and cancellations by an abort."""
    return {
        "all_success": ok + tolerated == n,
        "all_done": True,
        "none_failed": ok + tolerated + skipped == n,
        "none_failed_min_one_success": ok + tolerated + skipped == n and ok > 0,
        "one_failed": failed + tolerated > 0,
        "one_success": ok > 0,
        "one_done": ok + failed + tolerated > 0,
        "all_failed": failed + tolerated == n,
        "all_skipped": skipped == n,
        "none_skipped": skipped == 0,
        "all_done_min_one_success": ok > 0,
    }[rule]


def reference(specs: list[Spec]) -> tuple[dict[str, str], str]:
    by_id = {s.id: s for s in specs}
    for s in specs:
        for d in s.deps:
            by_id[d].dependents.append(s.id)
    path: dict[str, int] = {}
    for s in reversed(specs):
        path[s.id] = 1 + max((path[d] for d in s.dependents), default=0)
    status = {s.id: "pending" for s in specs}
    recovered: set[str] = set()
    aborting = False
    ready: list[tuple[int, int, int, str]] = []
    queued: set[str] = set()
    waiting: dict[str, list[str]] = {}

    def tolerated(d: str) -> bool:
        return status[d] in FAIL and (by_id[d].on_failure == "continue" or d in recovered)

    def settled(d: str) -> bool:
        spec = by_id[d]
        if status[d] in ("pending", "running"):
            return False
        needs_fallback = status[d] in FAIL and spec.on_failure == "fallback_step"
        return not needs_fallback or status[spec.fallback or ""] not in ("pending", "running")

    def counts(deps: list[str]) -> tuple[int, int, int, int, int]:
        ok = sum(status[d] == "success" for d in deps)
        tol = sum(tolerated(d) for d in deps)
        # No interrupts here: every cancellation comes from an abort, which a failure caused.
        bad = ("upstream_failed", "cancelled")
        failed = sum((status[d] in FAIL and not tolerated(d)) or status[d] in bad for d in deps)
        skipped = sum(status[d] == "skipped" for d in deps)
        return ok, tol, failed, skipped, len(deps)

    def enqueue(step_id: str, urgent: bool) -> None:
        if step_id not in queued:
            queued.add(step_id)
            ready.append((0 if urgent else 1, -path[step_id], specs.index(by_id[step_id]), step_id))

    def decide_all() -> None:
        changed = True
        while changed:
            changed = False
            for s in specs:
                if status[s.id] != "pending" or s.is_fallback or s.id in queued:
                    continue
                if aborting and s.rule not in CLEANUP and s.teardown_for is None:
                    status[s.id] = "cancelled"
                    changed = True
                elif s.teardown_for is not None and all(settled(d) for d in s.deps):
                    # Runs if and only if its setup succeeded, whatever the others did.
                    setup = status[s.teardown_for]
                    if setup != "success":
                        blocked = counts([s.teardown_for])[2] > 0
                        status[s.id] = "upstream_failed" if blocked else "skipped"
                        changed = True
                    elif s.condition is False:
                        status[s.id] = "skipped"
                        changed = True
                    else:
                        enqueue(s.id, False)
                elif s.teardown_for is not None:
                    continue
                elif all(settled(d) for d in s.deps):
                    ok, tol, failed, skipped, n = counts(s.deps)
                    if not rule_met(s.rule, ok, tol, failed, skipped, n):
                        status[s.id] = "upstream_failed" if failed else "skipped"
                        changed = True
                    elif s.condition is False:
                        status[s.id] = "skipped"
                        changed = True
                    else:
                        enqueue(s.id, False)
                elif s.rule in EARLY and s.condition is None:
                    ok, tol, failed, skipped, _ = counts([d for d in s.deps if settled(d)])
                    # Met by the dependencies settled so far: it does not wait for the others.
                    if rule_met(s.rule, ok, tol, failed, skipped, len(s.deps)):
                        enqueue(s.id, False)

    decide_all()
    while True:
        ready.sort()
        candidates = [e for e in ready if status[e[3]] == "pending"]
        if not candidates:
            for s in specs:
                if s.is_fallback and status[s.id] == "pending":
                    status[s.id] = "skipped"
            break
        entry = candidates[0]
        ready.remove(entry)
        current = by_id[entry[3]]
        status[current.id] = "success" if current.outcome == "ok" else "failed"
        if status[current.id] == "failed":
            if current.on_failure == "fallback_step" and current.fallback:
                fallback = current.fallback
                if status[fallback] == "pending":
                    waiting.setdefault(fallback, []).append(current.id)
                    enqueue(fallback, True)
                elif status[fallback] == "success":
                    recovered.add(current.id)
            elif current.on_failure == "abort" and current.critical:
                aborting = True
                for s in specs:
                    cleanup = s.rule in CLEANUP or s.is_fallback or s.teardown_for is not None
                    if status[s.id] == "pending" and not cleanup:
                        status[s.id] = "cancelled"
        if current.is_fallback and status[current.id] == "success":
            recovered.update(waiting.pop(current.id, []))
        decide_all()

    if any(status[s.id] in FAIL and not tolerated(s.id) for s in specs) or any(
        v in ("cancelled", "upstream_failed") for v in status.values()
    ):
        outcome = "failed"
    else:
        outcome = "success"
    return status, outcome


@st.composite
def plans(draw: st.DrawFn) -> list[Spec]:
    count = draw(st.integers(2, 7))
    fallback_count = draw(st.integers(0, 2))
    fallback_ids = [f"fb{i}" for i in range(fallback_count)]
    specs: list[Spec] = []
    for i in range(count):
        earlier = [s.id for s in specs]
        deps = draw(st.lists(st.sampled_from(earlier), unique=True, max_size=3)) if earlier else []
        rules = ["all_success", "all_done", "none_failed"]
        if deps:
            rules += WITH_DEPS
        policies = ["abort", "skip_dependents", "continue"] + (
            ["fallback_step"] if fallback_ids else []
        )
        on_failure = draw(st.sampled_from(policies))
        specs.append(
            Spec(
                id=f"s{i}",
                deps=deps,
                rule=draw(st.sampled_from(rules)),
                teardown_for=draw(st.sampled_from([None, None, None, *deps[:1]])),
                on_failure=on_failure,
                critical=draw(st.booleans()),
                fallback=draw(st.sampled_from(fallback_ids))
                if on_failure == "fallback_step"
                else None,
                outcome=draw(st.sampled_from(["ok", "ok", "fail"])),
                condition=draw(st.sampled_from([None, None, True, False])),
            )
        )
    for fallback_id in fallback_ids:
        specs.append(
            Spec(
                id=fallback_id,
                deps=[],
                rule="all_success",
                on_failure=draw(st.sampled_from(["abort", "continue", "skip_dependents"])),
                critical=draw(st.booleans()),
                fallback=None,
                outcome=draw(st.sampled_from(["ok", "fail"])),
                condition=None,
                is_fallback=any(s.fallback == fallback_id for s in specs),
            )
        )
    return specs


def to_plan(specs: list[Spec]) -> dict[str, Any]:
    steps = []
    for s in specs:
        step: dict[str, Any] = {
            "id": s.id,
            "command": "true" if s.outcome == "ok" else "false",
            "depends_on": s.deps,
            "on_failure": s.on_failure,
            "critical": s.critical,
        }
        if s.teardown_for is None:
            step["trigger_rule"] = s.rule
        else:  # a teardown takes no trigger_rule
            step["teardown_for"] = s.teardown_for
        if s.fallback:
            step["fallback"] = s.fallback
        if s.condition is not None:
            step["condition"] = (
                "env.PLANRUN_REF_ON == '1'" if s.condition else "env.PLANRUN_REF_ON == '0'"
            )
        steps.append(step)
    return {
        "plan_id": "REF",
        "globals": {"default_timeout_sec": 30, "env": {"PLANRUN_REF_ON": "1"}},
        "steps": steps,
    }


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(specs=plans())
def test_planrun_agrees_with_the_reference_model(tmp_path_factory: Any, specs: list[Spec]) -> None:
    # Unused fallback steps are plain steps in the plan (nobody names them): drop them.
    named = {s.fallback for s in specs if s.fallback}
    specs = [s for s in specs if not (s.id.startswith("fb") and s.id not in named)]
    expected, outcome = reference([Spec(**{**s.__dict__, "dependents": []}) for s in specs])
    tmp_path: Path = tmp_path_factory.mktemp("ref")
    result = run_plan(tmp_path, to_plan(specs), max_concurrency=1)
    assert result.statuses == expected
    assert result.summary["status"] == outcome
    assert result.exit_code == (0 if outcome == "success" else 1)
