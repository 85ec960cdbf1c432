"""Start-up cost (issue 17): `planrun IR.json` and `planc check` import only what their path needs.

Each probe runs the real program in a fresh interpreter (`planrun.__main__` / `planc.__main__`,
as the installed scripts do) and reports which modules it loaded. A module coming back on the
path fails the test with its name; docs/benchmarks.md says what each one costs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

PROBE = textwrap.dedent(
    """
    import json, sys
    result_path, program, *argv = sys.argv[1:]
    sys.argv = [program, *argv]
    main = __import__(program + ".__main__", fromlist=["main"]).main
    try:
        main()
    except SystemExit as exit:
        code = exit.code
    with open(result_path, "w") as handle:
        json.dump({"code": code, "modules": sorted(sys.modules)}, handle)
    """
)

# Never on `planrun IR.json`: the compiler, schema validation (only for an invalid IR), YAML,
# the condition grammar, rich and the views, the web UI, `planrun exec` and `planrun watch`,
# what only --resume, --only/--from/--force or a GitHub job summary need.
RUN_NEVER = (
    "planc", "jsonschema", "ruamel", "lark", "rich", "pygments", "markdown_it", "http.server",
    "socketserver", "planrun.supervise", "planrun.watch", "planrun.watch_paths", "planrun.api",
    "planrun.secrecy", "planrun.resume", "planrun.selection", "html",
)  # fmt: skip
# Never on `planc check`: the runtime's store and process control, rich, the web UI.
CHECK_NEVER = (
    "rich", "pygments", "http.server", "socketserver", "planrun.store", "planrun.executor",
    "planrun.process", "planrun.runner", "planrun.views", "planrun.dry_run",
)  # fmt: skip
# Not on `planc check` of a usual YAML plan (block YAML, a literal block scalar, a condition the
# fast parser reads): ruamel, jsonschema (for an invalid plan), the Lark grammars, the JSON loader,
# the IR writer and verifier, difflib (suggestions for mistakes), and the analyses of what the plan
# does not have (a deadline, cleanup resources, invariants) with what they need of planrun.
USUAL_CHECK_NEVER = (
    "ruamel", "jsonschema", "lark", "planc.conditions_lark", "planc.load.json_loader",
    "planc.emit", "planrun.core.ir", "difflib", "planc.invariants", "planc.analysis.bound",
    "planc.analysis.cleanup", "planc.analysis.invariants", "planc.analysis.prover",
    "planrun.core.bound", "planrun.core.semantics",
)  # fmt: skip
USUAL_PLAN = """\
plan_id: USUAL
globals:
  max_concurrency: 2
  default_timeout_sec: 600
steps:
  - id: fetch
    command: git
    args: [fetch, --quiet]
    timeout_sec: 120
  - id: lint
    command: ruff
    args: [check, .]
    depends_on: [fetch]
  - id: tests
    shell: true
    command: |
      set -eu
      pytest -q
    depends_on: [lint]
    timeout_sec: 900
  - id: publish
    command: twine
    args: [upload, dist]
    depends_on: [tests]
    trigger_rule: all_done
    condition: "steps.tests.status == 'success' and steps.lint.status != 'failed'"
"""


def _probe(tmp_path: Path, program: str, *argv: str) -> dict[str, object]:
    result_path = tmp_path / "modules.json"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(result_path), program, *argv],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(result_path.read_text())
    return result


def _loaded(modules: object, roots: tuple[str, ...]) -> list[str]:
    assert isinstance(modules, list)
    return [m for m in modules if any(m == r or m.startswith(r + ".") for r in roots)]


def _plan(tmp_path: Path, steps: int) -> Path:
    plan = {
        "plan_id": "STARTUP",
        "globals": {"default_timeout_sec": 60},
        "steps": [
            {"id": f"s{i}", "command": "true", "depends_on": [f"s{i - 1}"] if i else []}
            for i in range(steps)
        ],
    }
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan), encoding="utf-8")
    return path


def test_planrun_of_an_ir_file_loads_no_compiler_schema_yaml_or_views(tmp_path: Path) -> None:
    plan = _plan(tmp_path, 1)
    ir = tmp_path / "plan.ir.json"
    compiled = subprocess.run(
        [sys.executable, "-m", "planc", "compile", str(plan), "-o", str(ir)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert compiled.returncode == 0, compiled.stderr
    result = _probe(tmp_path, "planrun", str(ir), "-q", "--state-dir", str(tmp_path / "state"))
    assert result["code"] == 0
    assert _loaded(result["modules"], RUN_NEVER) == []
    views = [m for m in _loaded(result["modules"], ("planrun.views",)) if m != "planrun.views"]
    assert views == ["planrun.views.style", "planrun.views.tail"]


def test_planc_check_loads_no_runtime_store_process_control_or_views(tmp_path: Path) -> None:
    plan = _plan(tmp_path, 10)
    result = _probe(tmp_path, "planc", "check", str(plan))
    assert result["code"] == 0
    assert _loaded(result["modules"], CHECK_NEVER) == []


def test_planc_check_of_a_usual_yaml_plan_loads_only_what_it_needs(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(USUAL_PLAN, encoding="utf-8")
    result = _probe(tmp_path, "planc", "check", str(plan))
    assert result["code"] == 0
    assert _loaded(result["modules"], CHECK_NEVER + USUAL_CHECK_NEVER) == []
    # The control: the same plan with what the analyses read loads them, and still no Lark for
    # an invariant the fast path reads.
    plan.write_text(
        USUAL_PLAN.replace("  default_timeout_sec: 600\n", "  default_timeout_sec: 600\n"
                           "  deadline_sec: 7200\n  cleanup_required: [lock]\n")
        .replace("    args: [fetch, --quiet]\n", "    args: [fetch, --quiet]\n"
                 "    provides: [lock]\n")
        + "invariants:\n  - publish requires tests.success and lint.success and fetch.success\n",
        encoding="utf-8",
    )  # fmt: skip
    result = _probe(tmp_path, "planc", "check", str(plan))
    loaded = _loaded(result["modules"], USUAL_CHECK_NEVER)
    assert {"planc.analysis.bound", "planc.analysis.cleanup", "planc.analysis.invariants"} <= set(
        loaded
    )
    assert "lark" not in loaded
