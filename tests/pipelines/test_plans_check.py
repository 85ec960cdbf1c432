"""Every plan in plans/*.yaml passes `planc check` with no errors and only the warnings listed."""

from __future__ import annotations

import json

import pytest
from pipelines_support import PLANS
from support import REPO, planc_cli

YAML_PLANS = sorted(p.name for p in PLANS.glob("*.yaml"))

# Warnings a plan is allowed to have, each with the reason it is justified. Empty: none.
JUSTIFIED_WARNINGS: dict[str, set[str]] = {}


def test_the_pipelines_are_all_there() -> None:
    assert set(YAML_PLANS) >= {
        "safe-merge.yaml",
        "checkin.yaml",
        "doc-ids.yaml",
        "phases.yaml",
        "ai-codegen.yaml",
        "quickstart.yaml",
    }


@pytest.mark.parametrize("name", YAML_PLANS)
def test_plan_checks_clean(name: str) -> None:
    done = planc_cli("check", "--format", "json", f"plans/{name}", cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    diagnostics = report["diagnostics"] if isinstance(report, dict) else report
    errors = [d for d in diagnostics if d["severity"] == "error"]
    warnings = {d["code"] for d in diagnostics if d["severity"] == "warning"}
    assert errors == []
    assert warnings <= JUSTIFIED_WARNINGS.get(name, set()), diagnostics


@pytest.mark.parametrize("name", YAML_PLANS)
def test_plan_compiles(name: str) -> None:
    done = planc_cli("compile", f"plans/{name}", cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["ir_version"] == 1
