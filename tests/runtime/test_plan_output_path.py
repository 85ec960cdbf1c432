"""$PLAN_OUTPUT is an absolute path: a step in another directory can write it even when the
state dir is relative (the default `.planrun`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_a_step_in_another_directory_writes_its_outputs(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "p.yaml").write_text(
        "plan_id: OUT\nglobals: {default_timeout_sec: 60}\nsteps:\n"
        "  - id: make\n    cwd: sub\n    shell: true\n    provides: [where]\n"
        '    command: echo "where=$PWD" >> "$PLAN_OUTPUT"\n'
        "  - id: use\n    consumes: [where]\n    command: echo\n"
        '    args: ["${{ steps.make.outputs.where }}"]\n'
    )
    done = subprocess.run(
        [sys.executable, "-m", "planrun", "p.yaml"], cwd=tmp_path, capture_output=True,
        text=True, timeout=120, stdin=subprocess.DEVNULL, env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    logs = tmp_path / ".planrun" / "runs"
    (use,) = logs.glob("*/logs/use.1.stdout")
    assert use.read_text() == f"{tmp_path / 'sub'}\n"
