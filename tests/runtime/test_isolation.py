"""planrun runs an IR with nothing of the compiler: no planc, no lark, no ruamel."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

from support import planc_cli

BLOCKER = textwrap.dedent(
    """
    import importlib.abc, sys

    class Refuse(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("planc", "lark", "ruamel", "plan_grammar"):
                raise ImportError(f"planrun imported {name}")
            return None

    sys.meta_path.insert(0, Refuse())
    sys.argv = ["planrun", *sys.argv[1:]]
    from planrun.cli import main
    main()
    """
)


def test_running_an_ir_imports_nothing_of_the_compiler(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        "plan_id: ISOLATED\nsteps:\n  - id: a\n    command: 'true'\n    timeout_sec: 10\n"
        "  - id: b\n    command: 'true'\n    depends_on: [a]\n    timeout_sec: 10\n"
        "    condition: steps.a.exit_code == 0\n"
    )
    ir = tmp_path / "plan.ir.json"
    assert planc_cli("compile", str(plan), "-o", str(ir)).returncode == 0
    result = subprocess.run(
        [sys.executable, "-c", BLOCKER, str(ir), "--state-dir", str(tmp_path / "state")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "run_finished" not in result.stderr  # human output, not the JSON stream
    assert "success" in result.stderr


def test_no_runtime_module_imports_the_compiler_outside_load_runnable() -> None:
    runtime = Path(__file__).resolve().parents[2] / "runtime" / "planrun"
    offenders = []
    for source in sorted(runtime.rglob("*.py")):
        tree = ast.parse(source.read_text())
        allowed: set[int] = set()
        for node in ast.walk(tree):
            # The one sanctioned place: compiling a plan file in memory when planc is installed.
            if isinstance(node, ast.FunctionDef) and node.name == "load_runnable":
                allowed.update(id(child) for child in ast.walk(node))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom) and id(node) not in allowed:
                names = (
                    [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                )
                if any(n.split(".")[0] in ("planc", "lark", "ruamel") for n in names):
                    offenders.append(f"{source.name}:{node.lineno}")
    assert offenders == []


def test_planrun_exec_builds_and_runs_its_ir_without_the_compiler(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", BLOCKER, "exec", "--state-dir", str(tmp_path / "state"), "--timeout",
         "10", "--", "sh", "-c", "echo supervised"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == "supervised\n"
    assert "success" in result.stderr
