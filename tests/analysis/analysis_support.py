"""Helpers for the analysis tests: compile plans in memory, check them, generate big plans."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from planc.analysis import DEFAULT
from planc.pipeline import Compilation, compile_bytes
from planc.render import render

HERE = Path(__file__).resolve().parent
SAFE_MERGE = HERE / "plans" / "safe-merge.yaml"


def write(tmp_path: Path, plan: dict[str, Any] | str, name: str = "plan.yaml") -> Path:
    path = tmp_path / (name if isinstance(plan, str) else name.replace(".yaml", ".json"))
    text = plan if isinstance(plan, str) else json.dumps(plan, indent=2)
    path.write_text(text, encoding="utf-8")
    return path


def compile_ir(plan: dict[str, Any] | str, path: str | None = None) -> dict[str, Any]:
    """The IR of a plan given as a dict (compiled as JSON) or as YAML text."""
    text = plan if isinstance(plan, str) else json.dumps(plan)
    path = path or ("plan.yaml" if isinstance(plan, str) else "plan.json")
    result = compile_bytes(path, text.encode())
    assert result.ir is not None, render(result.diagnostics, {path: text}, "text")
    ir: dict[str, Any] = json.loads(result.ir)
    return ir


def check(
    plan: dict[str, Any] | str, analyses: tuple[str, ...] = DEFAULT, path: str | None = None
) -> tuple[Compilation, str]:
    """What `planc check --analyses=…` prints for this plan (a dict is checked as JSON)."""
    text = plan if isinstance(plan, str) else json.dumps(plan, indent=2)
    path = path or ("plan.yaml" if isinstance(plan, str) else "plan.json")
    result = compile_bytes(path, text.encode(), want_ir=False, analyses=analyses)
    return result, render(result.diagnostics, {path: text}, "text")


def codes(result: Compilation) -> list[str]:
    return [d.code for d in result.diagnostics]


def big_plan(steps: int, seed: int = 7) -> dict[str, Any]:
    """A generated plan with every feature the analyses read: fan-in from a window of earlier
    steps, timeouts, retries with backoff, conditions, fallbacks, one_failed alerts (leaves),
    none_failed joins, a lock in `cleanup_required` released by a teardown at the end. It
    checks without errors or warnings; run without failures, every step but the alerts and the
    fallbacks starts."""
    rng = random.Random(f"{seed}:{steps}")
    window = 64
    out: list[dict[str, Any]] = [
        {"id": "take_lock", "command": "true", "provides": ["lock"], "timeout_sec": 5}
    ]
    ids = ["take_lock"]  # what later steps may depend on: not the one_failed alerts, whose
    # usual skip would otherwise propagate through most of the plan
    fallbacks: list[dict[str, Any]] = []
    for i in range(1, steps - 1):
        sid = f"s{i:06d}"
        earlier = ids[max(0, len(ids) - window) :]
        deps = sorted(rng.sample(earlier, min(len(earlier), rng.randint(1, 3))))
        step: dict[str, Any] = {"id": sid, "command": "true", "depends_on": deps}
        kind = i % 10
        if kind == 1:
            step.update(retries=2, retry_delay_sec=1, retry_backoff=2, max_retry_delay_sec=3)
        elif kind == 2:
            step["on_failure"] = "continue"
        elif kind == 3:
            fallback = f"fb{i:06d}"
            step.update(on_failure="fallback_step", fallback=fallback)
            fallbacks.append({"id": fallback, "command": "true", "timeout_sec": 10})
        elif kind == 4 and step["depends_on"]:
            step["condition"] = f"steps.{deps[0]}.status == 'success' and env.FAST != '1'"
        elif kind == 5:
            step.update(trigger_rule="one_failed", timeout_sec=10)
        elif kind == 6:
            step["trigger_rule"] = "none_failed"
        elif kind == 7:
            step["on_failure"] = "skip_dependents"
        if i % 7 == 0:
            step["timeout_sec"] = 30 + i % 50
        out.append(step)
        if step.get("trigger_rule") != "one_failed":
            ids.append(sid)
    out.append(
        {
            "id": "release_lock",
            "command": "true",
            "consumes": ["lock"],
            "depends_on": [ids[-1]],
            "teardown_for": "take_lock",
            "timeout_sec": 5,
        }
    )
    return {
        "plan_id": f"BIG-{steps}",
        "globals": {
            "max_concurrency": 8,
            "default_timeout_sec": 60,
            "kill_grace_sec": 2,
            "deadline_sec": 10**9,
            "cleanup_required": ["lock"],
        },
        "steps": out + fallbacks,
    }
