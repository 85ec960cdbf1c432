"""Golden files: every invalid plan's `planc check` output, and every valid plan's IR, byte for byte.

Regenerate after an intended change with `PLAN_UPDATE_GOLDEN=1 pytest tests/compiler/test_golden.py`
and review the diff like code.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from planc import commands
from planc.pipeline import compile_file

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
UPDATE = os.environ.get("PLAN_UPDATE_GOLDEN") == "1"
PLAN_SUFFIXES = (".yaml", ".yml", ".json")


def _plans(kind: str) -> list[Path]:
    folder = GOLDEN / kind
    return sorted(
        p for p in folder.iterdir() if p.suffix in PLAN_SUFFIXES and not p.name.endswith(".ir.json")
    )


def _check_golden(expected_path: Path, actual: str) -> None:
    if UPDATE:
        expected_path.write_text(actual, encoding="utf-8")
    assert expected_path.exists(), (
        f"missing golden file {expected_path.name}; run with PLAN_UPDATE_GOLDEN=1"
    )
    assert actual == expected_path.read_text(encoding="utf-8")


@pytest.mark.parametrize("plan", _plans("invalid"), ids=lambda p: p.name)
def test_invalid_plan_diagnostics(plan: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(plan.parent)
    out = io.StringIO()
    code = commands.check([plan.name], "text", False, out)
    assert code == 1, "an invalid golden plan must fail the check"
    _check_golden(plan.with_suffix(".out"), out.getvalue())


@pytest.mark.parametrize("plan", _plans("warn"), ids=lambda p: p.name)
def test_warning_only_plan_diagnostics(plan: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(plan.parent)
    out = io.StringIO()
    assert commands.check([plan.name], "text", False, out) == 0
    assert commands.check([plan.name], "text", True, io.StringIO()) == 1  # --strict
    _check_golden(plan.with_suffix(".out"), out.getvalue())


@pytest.mark.parametrize("plan", _plans("valid"), ids=lambda p: p.name)
def test_valid_plan_ir(plan: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(plan.parent)
    result = compile_file(plan.name)
    assert result.ir is not None, [d.message for d in result.diagnostics]
    _check_golden(plan.with_suffix(".ir.json"), result.ir.decode("utf-8"))


def test_there_are_at_least_sixty_invalid_plans() -> None:
    assert len(_plans("invalid")) >= 60
