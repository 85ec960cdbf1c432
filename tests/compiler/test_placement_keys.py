"""`resources` and `executor` on a step (docs/distributed.md): checked by the schema, in the IR
only when the plan gives them, so the IR of every other plan keeps its bytes."""

from __future__ import annotations

import json
from pathlib import Path

from support import planc_cli

PLAN = """\
plan_id: PLACED
version: "1.0"
globals:
  default_timeout_sec: 60
steps:
  - id: train
    command: "true"
    resources: {mem.gb: 2.5, gpu: 1}
  - id: push
    command: "true"
    executor: local
  - id: plain
    command: "true"
"""


def test_placement_keys_reach_the_ir_only_when_given(tmp_path: Path) -> None:
    (tmp_path / "plan.yaml").write_text(PLAN)
    done = planc_cli("compile", "plan.yaml", "-o", "ir.json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    train, push, plain = json.loads((tmp_path / "ir.json").read_text())["steps"]
    assert list(train["resources"].items()) == [("gpu", 1), ("mem.gb", 2.5)]  # sorted
    assert "executor" not in train
    assert push["executor"] == "local" and "resources" not in push
    assert "resources" not in plain and "executor" not in plain


def test_bad_placement_keys_are_positioned_errors(tmp_path: Path) -> None:
    bad = PLAN.replace("{mem.gb: 2.5, gpu: 1}", "{gpu: 0}").replace(
        "executor: local", "executor: remote"
    )
    (tmp_path / "plan.yaml").write_text(bad)
    done = planc_cli("check", "plan.yaml", cwd=tmp_path)
    assert done.returncode == 1
    assert "plan.yaml:8:22: error[out-of-range]: `resources.gpu` must be greater than 0" in (
        done.stdout + done.stderr
    )
    assert (
        "plan.yaml:11:15: error[invalid-value]: `executor` must be one of local; got the string"
        " 'remote'" in done.stdout + done.stderr
    )
