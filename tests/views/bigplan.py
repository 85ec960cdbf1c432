"""A 1,000-step plan shaped like a real build farm: 20 stages of 50 steps, each step depending
on two or three steps of the previous stage; a few steps fail (tolerated), a few retry."""

from __future__ import annotations

import random
from typing import Any


def big_plan(stages: int = 20, width: int = 50, seed: int = 4) -> dict[str, Any]:
    rng = random.Random(seed)
    steps: list[dict[str, Any]] = []
    for stage in range(stages):
        for i in range(width):
            step: dict[str, Any] = {"id": f"s{stage:02d}_{i:02d}", "command": "true"}
            if stage:
                parents = rng.sample(range(width), rng.choice((1, 2, 3)))
                step["depends_on"] = [f"s{stage - 1:02d}_{p:02d}" for p in sorted(parents)]
            roll = rng.random()
            if roll < 0.01:
                step.update(
                    command="sh",
                    args=["-c", "echo 'boom: broken' >&2; exit 2"],
                    on_failure="continue",
                )
            elif roll < 0.03:
                step.update(
                    command="sh",
                    args=["-c", 'test "$PLAN_ATTEMPT" -ge 2 || { echo flaky >&2; exit 1; }'],
                    retries=1,
                )
            steps.append(step)
    return {
        "plan_id": "BIG",
        "description": "1,000 steps in 20 stages",
        "globals": {"default_timeout_sec": 60, "max_concurrency": 8},
        "steps": steps,
    }
