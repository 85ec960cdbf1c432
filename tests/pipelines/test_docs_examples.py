"""The plans shown in the guides check clean, and the getting-started plan runs as shown."""

from __future__ import annotations

import datetime
import re
from pathlib import Path

import pytest
from pipelines_support import run_pipeline
from support import REPO, planc_cli

GUIDES = ["docs/getting-started.md", "docs/script-to-plan.md"]
FENCE = re.compile(r"```yaml\n(.*?)```", re.DOTALL)


def plans_in(guide: str) -> list[str]:
    text = (REPO / guide).read_text(encoding="utf-8")
    return [block for block in FENCE.findall(text) if block.startswith("plan_id:")]


@pytest.mark.parametrize("guide", GUIDES)
def test_guide_plans_check_without_a_diagnostic(guide: str, tmp_path: Path) -> None:
    blocks = plans_in(guide)
    assert blocks, f"{guide} shows no plan"
    for number, block in enumerate(blocks):
        path = tmp_path / f"example{number}.yaml"
        path.write_text(block, encoding="utf-8")
        done = planc_cli("check", str(path))
        assert (done.returncode, done.stdout, done.stderr) == (0, "", ""), block


def test_getting_started_plan_runs_as_shown(tmp_path: Path) -> None:
    (hello,) = plans_in("docs/getting-started.md")
    work = tmp_path / "work"
    work.mkdir()
    plan = work / "hello.yaml"
    plan.write_text(hello, encoding="utf-8")
    before = datetime.date.today().isoformat()
    result = run_pipeline(tmp_path, plan, {"name": "Ada"}, "--workdir", str(work))
    after = datetime.date.today().isoformat()  # the run may straddle midnight

    assert result.exit_code == 0, result.output
    assert result.statuses == {"greet": "success", "today": "success", "note": "success"}
    assert (work / "note.txt").read_text(encoding="utf-8") in {
        f"Ada was greeted on {day}\n" for day in (before, after)
    }
