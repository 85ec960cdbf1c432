"""The typed IR (planrun/core/ir_types.py): read from and written back to the very document."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from planrun.core.ir import canonical_json, parse_ir
from planrun.core.ir_types import IRPlan, OnFailure
from planrun.core.trigger_rules import RULES, TriggerRule

ROOT = Path(__file__).parents[2]
GOLDEN = sorted((ROOT / "tests" / "golden" / "valid").glob("*.ir.json"))


def test_there_are_golden_irs() -> None:
    assert len(GOLDEN) >= 3


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.name)
def test_to_json_gives_back_the_document_byte_for_byte(path: Path) -> None:
    data = path.read_bytes()
    ir = parse_ir(data, str(path))
    body = {k: v for k, v in json.loads(data).items() if k != "digest"}
    assert ir.model.to_json() == body
    assert canonical_json(IRPlan.from_json(body).to_json()) == canonical_json(body)


def test_the_enums_are_the_rule_table_and_the_schema() -> None:
    from planrun.core.ir import ir_schema

    step = ir_schema()["definitions"]["step"]["properties"]
    assert [rule.value for rule in TriggerRule] == list(RULES) == step["trigger_rule"]["enum"]
    assert [policy.value for policy in OnFailure] == step["on_failure"]["enum"]
    assert TriggerRule("all_done").is_cleanup and not TriggerRule.ALL_SUCCESS.is_cleanup
    assert (
        not TriggerRule.NONE_FAILED.needs_dependencies and TriggerRule.ONE_DONE.needs_dependencies
    )
