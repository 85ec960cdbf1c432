"""docs/composition.md: every file it shows compiles clean (fragments through the plans that
include them), and every command it shows runs."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

from support import REPO, planc_cli, planrun_cli

DOC = REPO / "docs" / "composition.md"
FILE_BLOCK = re.compile(r"```yaml\n# file: (\S+)\n(.*?)```", re.DOTALL)
COMMAND = re.compile(r"^\$ (planc [^\n]*?)(?: {2,}#[^\n]*)?$", re.M)
RUN_COMMAND = re.compile(r"^\$ (planrun [^\n]*?)(?: {2,}#[^\n]*)?$", re.M)


def write_files(directory: Path) -> list[tuple[str, str]]:
    files: list[tuple[str, str]] = FILE_BLOCK.findall(DOC.read_text(encoding="utf-8"))
    for name, text in files:
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(text, encoding="utf-8")
    return files


def test_every_plan_in_the_doc_checks_clean(tmp_path: Path) -> None:
    files = write_files(tmp_path)
    assert len(files) == 4
    plans = [name for name, text in files if text.startswith("plan_id:")]
    assert plans == ["matrix.yaml", "components.yaml", "fanout.yaml"]
    for name in plans:
        done = planc_cli("check", name, cwd=tmp_path)
        assert (done.returncode, done.stdout, done.stderr) == (0, "", ""), name


def test_every_command_in_the_doc_runs() -> None:
    commands = COMMAND.findall(DOC.read_text(encoding="utf-8"))
    assert len(commands) == 5
    for command in commands:
        done = planc_cli(*shlex.split(command)[1:], cwd=REPO)
        assert done.returncode == 0, (command, done.stderr)
        assert done.stdout, command


def test_every_planrun_command_in_the_doc_runs_its_plan(tmp_path: Path) -> None:
    write_files(tmp_path)
    commands = RUN_COMMAND.findall(DOC.read_text(encoding="utf-8"))
    assert len(commands) == 2
    started: list[list[str]] = []
    for command in commands:
        done = planrun_cli(*shlex.split(command)[1:], "--json", cwd=tmp_path)
        assert done.returncode == 0, (command, done.stderr)
        events = [json.loads(line) for line in done.stdout.splitlines()]
        started.append([e["step_id"] for e in events if e["type"] == "step_started"])
    matrix = ["test-3.10-1", "test-3.11-1", "test-3.11-2", "test-3.12-1", "test-3.12-2"]
    assert sorted(started[0]) == sorted(["build", *matrix])  # the first run: build is needed
    assert sorted(started[1]) == sorted(["list_tasks", "build", "build[0]", "build[1]", "publish"])
