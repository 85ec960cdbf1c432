"""docs/plan-reference.md is generated from the plan JSON Schema and must not drift from it."""

from __future__ import annotations

import importlib.util
import json
from types import ModuleType

from support import REPO, planc_cli


def _generator() -> ModuleType:
    path = REPO / "docs" / "plan_reference.py"
    spec = importlib.util.spec_from_file_location("plan_reference", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_plan_reference_is_current() -> None:
    expected = _generator().generate()
    actual = (REPO / "docs" / "plan-reference.md").read_text(encoding="utf-8")
    assert actual == expected, (
        "docs/plan-reference.md is stale: run `python docs/plan_reference.py`"
    )


def test_plan_reference_is_generated_from_the_schema_planc_publishes() -> None:
    done = planc_cli("schema")
    assert done.returncode == 0, done.stderr
    published = json.loads(done.stdout)
    on_disk = json.loads((REPO / "compiler" / "planc" / "plan.schema.json").read_text())
    assert published == on_disk


def test_every_schema_key_is_documented() -> None:
    schema = json.loads((REPO / "compiler" / "planc" / "plan.schema.json").read_text())
    text = (REPO / "docs" / "plan-reference.md").read_text(encoding="utf-8")
    objects = [schema, schema["properties"]["globals"], *schema["definitions"].values()]
    for obj in objects:
        for key in obj["properties"]:
            assert f"| `{key}` |" in text, key
