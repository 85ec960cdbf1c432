"""docs/composition.md: every file it shows compiles clean (fragments through the plans that
include them), and every command it shows runs."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from support import REPO, planc_cli

DOC = REPO / "docs" / "composition.md"
FILE_BLOCK = re.compile(r"```yaml\n# file: (\S+)\n(.*?)```", re.DOTALL)
COMMAND = re.compile(r"^\$ (planc [^\n]*?)(?: {2,}#[^\n]*)?$", re.M)


def test_every_plan_in_the_doc_checks_clean(tmp_path: Path) -> None:
    files = FILE_BLOCK.findall(DOC.read_text(encoding="utf-8"))
    assert len(files) == 4
    for name, text in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
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
