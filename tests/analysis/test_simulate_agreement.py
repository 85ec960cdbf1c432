"""`planc simulate` and a real `planrun -j1` agree on every step status and the exit code.

Hypothesis generates small plans mixing every trigger rule, failure policy, fallbacks, retries,
conditions (on statuses, exit codes, attempts and the environment) and timeouts; chosen steps
exit 1 (`sh -c 'exit 1'`) or sleep past their timeout, the others run `true`. The plan is compiled
to IR, run by `python -m planrun IR.json -j1`, and replayed by `planc.analysis.simulate`; statuses,
attempts, recoveries, skip/cancel reasons and the exit code must agree.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from planc.analysis.simulate import simulate
from planc.pipeline import compile_bytes
from planrun.trigger_rules import NEEDS_DEPENDENCIES

# Every rule; the first three are the ones a step without dependencies may have.
RULES = ("all_success", "none_failed", "all_done", *sorted(NEEDS_DEPENDENCIES))
POLICIES = ("abort", "skip_dependents", "continue")
ENV_NAME = "PLANC_SIM_AGREEMENT_FLAG"


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[dict[str, Any], set[str], set[str], dict[str, str]]:
    count = draw(st.integers(1, 6))
    fallback_ids = [f"fb{i}" for i in range(draw(st.integers(0, 2)))]
    steps: list[dict[str, Any]] = []
    for i in range(count):
        sid = f"s{i}"
        earlier = [f"s{j}" for j in range(i)]
        deps = draw(st.lists(st.sampled_from(earlier), unique=True, max_size=3)) if earlier else []
        rules = RULES if deps else RULES[:3]
        policies = POLICIES + (("fallback_step",) if fallback_ids else ())
        step: dict[str, Any] = {
            "id": sid,
            "depends_on": deps,
            "trigger_rule": draw(st.sampled_from(rules)),
            "on_failure": draw(st.sampled_from(policies)),
            "critical": draw(st.booleans()),
            "retries": draw(st.sampled_from((0, 0, 1))),
        }
        if step["on_failure"] == "fallback_step":
            step["fallback"] = draw(st.sampled_from(fallback_ids))
        if deps and draw(st.integers(0, 4)) == 0:  # a teardown takes no trigger_rule
            step["teardown_for"] = deps[0]
            del step["trigger_rule"]
        if deps and draw(st.integers(0, 3)) == 0:
            read = draw(st.sampled_from(deps))
            step["condition"] = draw(
                st.sampled_from(
                    (
                        f"steps.{read}.status in ['success', 'failed', 'skipped']",
                        f"steps.{read}.exit_code == 1 or steps.{read}.status == 'success'",
                        f"steps.{read}.attempts >= 2 or steps.{read}.status != 'timed_out'",
                        f"env.{ENV_NAME} == 'on' or steps.{read}.status == 'cancelled'",
                    )
                )
            )
        elif draw(st.integers(0, 5)) == 0:
            step["condition"] = f"env.{ENV_NAME} != 'on'"
        steps.append(step)
    for fid in fallback_ids:
        steps.append(
            {
                "id": fid,
                "on_failure": draw(st.sampled_from(POLICIES)),
                "critical": draw(st.booleans()),
            }
        )
    ids = [s["id"] for s in steps]
    failing = set(draw(st.lists(st.sampled_from(ids), unique=True)))
    # Timeouts cost real time (0.2 s per attempt): a few, and only where nothing else fails.
    timing_out = set(draw(st.lists(st.sampled_from(ids), unique=True, max_size=1))) - failing
    env = {ENV_NAME: "on"} if draw(st.booleans()) else {}
    for step in steps:
        sid = step["id"]
        if sid in timing_out:
            step.update(command="sleep", args=["5"], timeout_sec=0.2)
        elif sid in failing:
            step.update(command="sh", args=["-c", "exit 1"])
        else:
            step["command"] = "true"
    plan = {
        "plan_id": "AGREE",
        "globals": {"default_timeout_sec": 20, "kill_grace_sec": 0, "max_concurrency": 3},
        "steps": steps,
    }
    return plan, failing, timing_out, env


def _compile(plan: dict[str, Any]) -> bytes | None:
    result = compile_bytes("plan.json", json.dumps(plan).encode())
    return result.ir


@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(scenarios())
def test_simulation_agrees_with_planrun(
    scenario: tuple[dict[str, Any], set[str], set[str], dict[str, str]],
) -> None:
    plan, failing, timing_out, env = scenario
    ir_bytes = _compile(plan)
    assume(ir_bytes is not None)  # e.g. a condition planc proves can never be true
    assert ir_bytes is not None
    ir = json.loads(ir_bytes)
    sim = simulate(ir, fail=failing, timeout=timing_out, env=env)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "plan.ir.json").write_bytes(ir_bytes)
        child_env = {k: v for k, v in os.environ.items() if k != ENV_NAME} | env
        ran = _planrun(work, child_env, "plan.ir.json", "-j1", "--state-dir", "state", "-q")
        # summary.json, as the planrun that ran the plan wrote it (docs/state.md).
        (summary_path,) = (work / "state" / "runs").glob("*/summary.json")
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    real = {sid: step["status"] for sid, step in summary["steps"].items()}
    simulated = {sid: report.status for sid, report in sim.steps.items()}
    context = f"plan={json.dumps(plan)}\nplanrun stderr:\n{ran.stderr}"
    assert simulated == real, context
    assert sim.exit_code == ran.returncode == summary["exit_code"], context
    for sid, report in sim.steps.items():
        step = summary["steps"][sid]
        assert report.attempts == step["attempts"], (sid, context)
        assert report.recovered_by == step["recovered_by"], (sid, context)
        if report.status in ("skipped", "cancelled"):
            assert report.reason == step["reason"], (sid, context)


def _planrun(work: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "planrun", *args],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
