"""plans/python-gate.yaml end to end on a small project made here: the second run with no change
runs nothing, in well under a second; an edit re-runs only the gates whose sources include the
edited file; a lint error fails the gate and its stamp is not up to date afterwards."""

from __future__ import annotations

from pathlib import Path

from pipelines_support import run_pipeline

SOURCES = {
    "pyproject.toml": '[project]\nname = "calc"\nversion = "0"\n\n'
    '[tool.pytest.ini_options]\npythonpath = ["src"]\n',
    "src/calc/__init__.py": '"""A calculator."""\n\n\ndef add(a: int, b: int) -> int:\n'
    "    return a + b\n",
    "tests/test_calc.py": "from calc import add\n\n\ndef test_add() -> None:\n"
    "    assert add(2, 3) == 5\n",
}
GATES = {"ruff", "mypy", "pytest"}


def make_project(root: Path) -> Path:
    project = root / "project"
    for name, text in SOURCES.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text)
    return project


def ran(result: object) -> set[str]:
    return {e.step_id for e in result.events if e.type == "step_started"}  # type: ignore[attr-defined]


def test_the_gate_skips_what_is_up_to_date(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    params = {"project": str(project)}
    first = run_pipeline(tmp_path, "python-gate.yaml", params)
    assert first.exit_code == 0, first.output
    assert ran(first) == GATES

    second = run_pipeline(tmp_path, "python-gate.yaml", params)
    assert second.exit_code == 0, second.output
    assert ran(second) == set()
    assert set(second.reasons.values()) == {"up_to_date"}
    assert second.summary["duration_sec"] < 1.0  # planrun's run, interpreter start excluded

    test_file = project / "tests" / "test_calc.py"
    test_file.write_text(test_file.read_text() + "\n\ndef test_add_zero() -> None:\n"
                         "    assert add(0, 0) == 0\n")  # fmt: skip
    third = run_pipeline(tmp_path, "python-gate.yaml", params)
    assert third.exit_code == 0, third.output
    assert ran(third) == {"ruff", "pytest"}
    assert third.reasons["mypy"] == "up_to_date"
    started = {e.step_id: e.payload["why"] for e in third.events if e.type == "step_started"}
    assert started == dict.fromkeys(("ruff", "pytest"), "input tests/test_calc.py changed")

    module = project / "src" / "calc" / "__init__.py"
    module.write_text(module.read_text() + "import os\n")  # unused import: ruff fails
    fourth = run_pipeline(tmp_path, "python-gate.yaml", params)
    assert fourth.exit_code == 1
    assert fourth.statuses["ruff"] == "failed"
    assert GATES - {"ruff"} <= ran(fourth) | {
        s for s, st in fourth.statuses.items() if st == "cancelled"
    }

    module.write_text(module.read_text().replace("import os\n", ""))
    fifth = run_pipeline(tmp_path, "python-gate.yaml", params)
    assert fifth.exit_code == 0, fifth.output
    assert "ruff" in ran(fifth)  # it failed last time: its stamp is not its latest success
