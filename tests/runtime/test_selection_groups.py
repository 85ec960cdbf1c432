"""`--only` / `--from` name a matrix (every instance) or a fan-out's instance (its fan-out step,
whose instances exist only once the list is read): docs/composition.md."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from support import collect, planrun_cli, write_plan

WRITE = "import os; open(os.environ['PLAN_OUTPUT'], 'a').write('tasks=[\"x\", \"y\"]\\n')"


def _plan(effects: Path) -> dict[str, Any]:
    def record(word: str) -> list[str]:
        return ["-c", f'echo "{word}" >> "{effects}"']

    return {
        "plan_id": "SELECT-GROUPS",
        "globals": {"default_timeout_sec": 30},
        "steps": [
            {"id": "setup", "command": "sh", "args": record("setup")},
            {"id": "test", "matrix": {"py": ["a", "b"]}, "command": "sh",
             "args": record("test-${{ matrix.py }}"), "depends_on": ["setup"]},
            {"id": "list", "command": sys.executable, "args": ["-c", WRITE], "provides": ["tasks"]},
            {"id": "each", "for_each": "${{ steps.list.outputs.tasks }}", "max_items": 4,
             "depends_on": ["list"], "command": "sh", "args": record("each-${{ item }}")},
            {"id": "after", "command": "sh", "args": record("after"), "depends_on": ["each"]},
        ],
    }  # fmt: skip


def _ran(effects: Path) -> list[str]:
    ran = sorted(effects.read_text().split()) if effects.exists() else []
    effects.unlink(missing_ok=True)
    return ran


def test_only_a_matrix_runs_every_instance(tmp_path: Path) -> None:
    effects = tmp_path / "effects"
    plan = write_plan(tmp_path, _plan(effects))
    assert planrun_cli(str(plan), "--state-dir", "s", cwd=tmp_path).returncode == 0
    assert _ran(effects) == ["after", "each-x", "each-y", "setup", "test-a", "test-b"]

    only = planrun_cli(str(plan), "--only", "test", "--state-dir", "s", cwd=tmp_path)

    assert only.returncode == 0, only.stderr
    assert _ran(effects) == ["test-a", "test-b"]
    run = collect(tmp_path / "s", 0)
    assert {s: run.reasons[s] for s in ("setup", "test-a", "test-b", "list", "each")} == {
        "setup": "reused",
        "test-a": None,
        "test-b": None,
        "list": "not_selected",
        "each": "not_selected",
    }


def test_from_a_fan_out_instance_runs_its_fan_out_step_and_what_follows(tmp_path: Path) -> None:
    effects = tmp_path / "effects"
    plan = write_plan(tmp_path, _plan(effects))
    assert planrun_cli(str(plan), "--state-dir", "s", cwd=tmp_path).returncode == 0
    _ran(effects)

    from_ = planrun_cli(str(plan), "--from", "each[1]", "--state-dir", "s", cwd=tmp_path)

    assert from_.returncode == 0, from_.stderr
    assert _ran(effects) == ["after", "each-x", "each-y"]
    assert collect(tmp_path / "s", 0).reasons["list"] == "reused"


def test_an_unknown_name_suggests_a_step_or_a_matrix(tmp_path: Path) -> None:
    plan = write_plan(tmp_path, _plan(tmp_path / "effects"))

    for name, hint in (("tst", "test"), ("each[x]", "each"), ("nope[0]", None)):
        done = planrun_cli(str(plan), "--only", name, "--state-dir", "s", cwd=tmp_path)
        assert done.returncode == 2
        suggestion = f"; did you mean `{hint}`?" if hint else ""
        assert f"no step `{name}` in this plan{suggestion}" in done.stderr
