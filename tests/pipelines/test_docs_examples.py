"""The plans shown in the guides check clean, and the getting-started plan runs as shown."""

from __future__ import annotations

import datetime
import os
import re
import subprocess
import sys
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


# `$ planrun exec …` in a console block, then the lines it prints (up to the next `$ ` or fence).
EXEC_EXAMPLE = re.compile(
    r"^\$ (planrun exec [^\n]*?)(?: {2,}#[^\n]*)?\n((?:(?!\$ |```)[^\n]*\n)*)", re.M
)
EXEC_DOCS = ["README.md", "docs/cli.md", "docs/api.md"]


def exec_examples() -> list[tuple[str, str, str]]:
    found = []
    for doc in EXEC_DOCS:
        for block in re.findall(
            r"```console\n(.*?)```", (REPO / doc).read_text(encoding="utf-8"), re.S
        ):
            found += [(doc, command, shown) for command, shown in EXEC_EXAMPLE.findall(block)]
    return found


def test_the_docs_show_planrun_exec() -> None:
    assert {doc for doc, _, _ in exec_examples()} >= {"README.md", "docs/cli.md"}


@pytest.mark.parametrize(("doc", "command", "shown"), exec_examples())
def test_every_planrun_exec_example_runs_as_shown(
    tmp_path: Path, doc: str, command: str, shown: str
) -> None:
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "PLANRUN_STATE_DIR": str(tmp_path / "state"),
    }
    done = subprocess.run(
        command, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    if shown:
        assert done.stdout == shown
    assert "success" in done.stderr  # planrun's last line: the run and its outcome


def test_the_api_example_runs(tmp_path: Path) -> None:
    text = (REPO / "docs" / "api.md").read_text(encoding="utf-8")
    (program,) = re.findall(r"```python\n(.*?)```", text, re.S)
    (plan,) = [b for b in FENCE.findall(text) if b.startswith("plan_id:")]
    (tmp_path / "hello.yaml").write_text(plan, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-c", program], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert (
        lines[0]
        == "warning unused-provides hello.yaml 8 16 step `greet` provides `greeting`, which no step consumes or reads"
    )
    assert re.fullmatch(r"\S+ success 0", lines[1])
    assert lines[2] == "hello-Ada"
    assert [line.split()[1] for line in lines[3:]] == [
        "run_started",
        "step_started",
        "step_succeeded",
        "run_finished",
    ]
