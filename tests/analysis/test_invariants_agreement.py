"""The proof of invariants agrees with brute force: for random plans of up to 12 steps and random
invariants, `planc`'s verdict (and the size of its smallest counterexample) equals what an
exhaustive enumeration of every combination of outcomes finds (docs/invariants.md).

The reference is written here, independently of planc.analysis.invariants and of planrun's
semantics module: it evaluates the steps in source (topological) order with the rule table
written out in tests/runtime/test_reference_model.py. Its model is the proof's without timing:
no first interrupts (`Prover(interrupts=False)`), no critical aborts, no rules that fire early,
guards over ancestors (settled when the step starts). tests/analysis/test_invariants.py covers
timing (aborts, interrupts, a step that does not wait) case by case.
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from planc.analysis.invariants import Counterexample, Prover
from planc.pipeline import compile_bytes

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "runtime"))
from test_reference_model import rule_met  # the rule table, written out

RULES = ["all_success", "all_done", "none_failed", "none_failed_min_one_success", "all_failed",
         "all_skipped", "none_skipped", "all_done_min_one_success"]  # fmt: skip
NO_DEPS_RULES = ["all_success", "all_done", "none_failed"]
WORDS = ["success", "failed", "skipped", "upstream_failed"]


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[dict[str, Any], list[str]]:
    count = draw(st.integers(2, 10))
    fallbacks = [f"fb{i}" for i in range(draw(st.integers(0, 2)))]
    steps: list[dict[str, Any]] = []
    for i in range(count):
        earlier = [s["id"] for s in steps]
        deps = draw(st.lists(st.sampled_from(earlier), unique=True, max_size=3)) if earlier else []
        step: dict[str, Any] = {"id": f"s{i}", "command": "true", "depends_on": deps}
        policy = draw(st.sampled_from(["abort", "skip_dependents", "continue",
                                       *(["fallback_step"] if fallbacks else [])]))  # fmt: skip
        step["on_failure"] = policy
        step["critical"] = False  # no abort: its timing is the example tests' business
        if policy == "fallback_step":
            step["fallback"] = draw(st.sampled_from(fallbacks))
        if deps and draw(st.integers(0, 4)) == 0:
            step["teardown_for"] = deps[0]
        else:
            step["trigger_rule"] = draw(st.sampled_from(RULES if deps else NO_DEPS_RULES))
        condition = draw(st.sampled_from(["none", "none", "env", "status"]))
        if condition == "env" or (condition == "status" and deps):
            step["condition"] = (
                "env.FLAG == '1'"
                if condition == "env"
                else f"steps.{deps[-1]}.status == '{draw(st.sampled_from(WORDS))}'"
            )
        steps.append(step)
    named = {s["fallback"] for s in steps if "fallback" in s}
    for fb in fallbacks:
        if fb in named:
            policy = draw(st.sampled_from(["continue", "skip_dependents", "abort"]))
            steps.append({"id": fb, "command": "true", "on_failure": policy, "critical": False})
    ordinary = [s["id"] for s in steps if s["id"] not in named]
    subjects = [sid for sid in ordinary if _ancestors(steps, sid)]
    invariants = []
    for _ in range(draw(st.integers(1, 3))):
        if not subjects:
            break
        subject = draw(st.sampled_from(subjects))
        above = sorted(_ancestors(steps, subject))
        terms = [
            f"{draw(st.sampled_from(above))}.{draw(st.sampled_from(WORDS))}"
            for _ in range(draw(st.integers(1, 3)))
        ]
        guard = terms[0]
        for term in terms[1:]:
            op = draw(st.sampled_from(["and", "or", "and not"]))
            guard = f"({guard}) {op} {term}"
        kind = draw(st.sampled_from(["requires", "after", "never"]))
        invariants.append(f"never {subject} when {guard}" if kind == "never" else
                          f"{subject} {kind} {guard}")  # fmt: skip
    plan = {"plan_id": "AGREE", "invariants": invariants, "steps": steps}
    return plan, invariants


def _ancestors(steps: list[dict[str, Any]], sid: str) -> set[str]:
    by_id = {s["id"]: s for s in steps}
    seen: set[str] = set()
    stack = list(by_id[sid].get("depends_on", []))
    while stack:
        current = stack.pop()
        if current not in seen:
            seen.add(current)
            stack.extend(by_id[current].get("depends_on", []))
    return seen


# --- the reference -------------------------------------------------------------------------------


def run_once(ir: dict[str, Any], fails: dict[str, bool], flag: dict[str, bool]) -> dict[str, str]:
    """Final statuses when each step that runs fails iff `fails[id]`, and each env condition
    is `flag[id]`. No interrupts, no critical aborts, no early rules: order does not matter."""
    steps = [s for s in ir["steps"] if not s["is_fallback"]]
    fallbacks = {s["id"]: s for s in ir["steps"] if s["is_fallback"]}
    status: dict[str, str] = {}

    def tolerated(d: str) -> bool:
        spec = by_id[d]
        if status[d] != "failed":
            return False
        if spec["on_failure"] == "continue":
            return True
        return spec["on_failure"] == "fallback_step" and status.get(spec["fallback"]) == "success"

    by_id = {s["id"]: s for s in ir["steps"]}
    for step in steps:
        sid, deps = step["id"], step["depends_on"]
        ok = sum(status[d] == "success" for d in deps)
        tol = sum(tolerated(d) for d in deps)
        bad = sum((status[d] == "failed" and not tolerated(d)) or status[d] == "upstream_failed"
                  for d in deps)  # fmt: skip
        skipped = sum(status[d] == "skipped" for d in deps)
        if step.get("teardown_for"):
            setup = step["teardown_for"]
            met = status[setup] == "success"
            blocked = status[setup] == "upstream_failed" or (
                status[setup] == "failed" and not tolerated(setup)
            )
        else:
            met = rule_met(step["trigger_rule"], ok, tol, bad, skipped, len(deps))
            blocked = bad > 0
        if not met:
            status[sid] = "upstream_failed" if blocked else "skipped"
            continue
        source = (step["condition"] or {}).get("source")
        if source is not None:
            if source.startswith("env."):
                holds = flag[sid]
            else:
                read, _, wanted = source.partition(".status == ")
                holds = status[read.removeprefix("steps.")] == wanted.strip("'")
            if not holds:
                status[sid] = "skipped"
                continue
        status[sid] = "failed" if fails[sid] else "success"
        if fails[sid] and step["on_failure"] == "fallback_step":
            fb = step["fallback"]
            if fb not in status:  # the first failure runs it; later ones share its result
                status[fb] = "failed" if fails[fb] else "success"
    for fb in fallbacks:
        status.setdefault(fb, "skipped")
    return status


def holds(guard: dict[str, Any], status: dict[str, str]) -> bool:
    if guard["kind"] == "status":
        wanted = guard["status"]
        value = status[guard["step"]]
        return value in ("failed", "timed_out") if wanted == "failed" else value == wanted
    if guard["kind"] == "not":
        return not holds(guard["operand"], status)
    values = [holds(o, status) for o in guard["operands"]]
    return all(values) if guard["kind"] == "and" else any(values)


def smallest_violation(ir: dict[str, Any], invariant: dict[str, Any]) -> int | None:
    """The fewest choices (a step that runs and fails, an env condition that is false) of any
    combination that starts the guarded step with its rule broken; None if there is none."""
    ids = [s["id"] for s in ir["steps"]]
    with_env = [
        s["id"] for s in ir["steps"] if s["condition"] and "env." in s["condition"]["source"]
    ]
    best: int | None = None
    for fails in itertools.product([False, True], repeat=len(ids)):
        failing = dict(zip(ids, fails, strict=True))
        for flags in itertools.product([True, False], repeat=len(with_env)):
            flag = dict(zip(with_env, flags, strict=True))
            status = run_once(ir, failing, flag)
            if status[invariant["step"]] not in ("success", "failed"):
                continue
            value = holds(invariant["guard"], status)
            if value == (invariant["kind"] != "never"):
                continue
            ran_and_failed = [
                s["id"] for s in ir["steps"] if status[s["id"]] == "failed" and not s["is_fallback"]
            ]
            evaluated_false = [
                sid for sid in with_env if not flag[sid] and status[sid] == "skipped"
            ]
            cost = len(ran_and_failed) + len(evaluated_false)
            best = cost if best is None else min(best, cost)
    return best


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(scenario=scenarios())
def test_the_proof_agrees_with_exhaustive_enumeration(
    scenario: tuple[dict[str, Any], list[str]],
) -> None:
    plan, _ = scenario
    compiled = compile_bytes("plan.json", json.dumps(plan).encode())
    assume(compiled.ir is not None)  # e.g. a condition the rule makes never true: refused
    assert compiled.ir is not None
    ir = json.loads(compiled.ir)
    prover = Prover(ir["steps"], interrupts=False)
    for invariant in ir["invariants"]:
        expected = smallest_violation(ir, invariant)
        found = prover.counterexample(invariant)
        assert found is None or isinstance(found, Counterexample), found
        assert (found is not None) == (expected is not None), (invariant["source"], found, plan)
        if isinstance(found, Counterexample):
            choices = [e for e in found.trace if " fails" in e or "condition of" in e]
            assert len(choices) == expected, (invariant["source"], found.trace, plan)
