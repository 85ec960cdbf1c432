"""The views stay optional: a headless run (--json, plain lines, library use) loads no rich and
no web code; only `planrun.views.style` and `.tail` (plain text helpers) come along. Nor does a
local run load anything of Dask (the dask extra, docs/distributed.md)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from support import write_plan
from viewkit import sample_plan

PROBE = textwrap.dedent(
    """
    import json, sys
    result_path, mode, plan, state = sys.argv[1:5]
    if mode == "library":
        import io
        from planrun import plan_loader, runner
        from planrun.executor import RunOptions
        ir = plan_loader.load_runnable(plan, io.StringIO())
        output = runner.Output(out=io.StringIO(), err=io.StringIO())
        code = runner.run(ir, state, RunOptions(), "normal", output)
    else:
        sys.argv = ["planrun", plan, "--state-dir", state, *(["--json"] if mode == "json" else [])]
        if mode == "exec":
            sys.argv = ["planrun", "exec", "--state-dir", state, "--", "true"]
        from planrun.cli import main
        try:
            main()
        except SystemExit as exit:
            code = exit.code
    heavy = sorted(
        name for name in sys.modules
        if name.split(".")[0] in ("rich", "pygments", "markdown_it", "dask", "distributed")
        or name in ("planrun.dask_launcher", "planrun.dask_worker", "planrun.agent")
        or name in ("http.server", "socketserver")
        or (name.startswith("planrun.views.") and name not in ("planrun.views.style", "planrun.views.tail"))
    )
    with open(result_path, "w") as handle:
        json.dump({"code": code, "heavy": heavy}, handle)
    """
)


@pytest.mark.parametrize("mode", ["json", "lines", "library", "exec"])
def test_a_headless_run_imports_no_rich_and_no_web_code(tmp_path: Path, mode: str) -> None:
    plan = write_plan(tmp_path, sample_plan())
    result_path = tmp_path / "result.json"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(result_path), mode, str(plan), str(tmp_path / "state")],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(result_path.read_text())
    assert result == {"code": 0, "heavy": []}


def test_the_views_commands_import_lazily() -> None:
    probe = "import sys, planrun.cli; print(sorted(m for m in sys.modules if m.startswith(('rich', 'planrun.views.'))))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "['planrun.views.style', 'planrun.views.tail']"
