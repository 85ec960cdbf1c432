"""Generated documentation must match what generates it; every code must be documented."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from planc.codes import all_codes

ROOT = Path(__file__).resolve().parent.parent


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_generate", ROOT / "docs" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_diagnostics_doc_is_current() -> None:
    expected = _generator().diagnostics_doc()
    actual = (ROOT / "docs" / "diagnostics.md").read_text()
    assert actual == expected, "docs/diagnostics.md is stale: run `python docs/generate.py`"


def test_every_code_has_a_section() -> None:
    text = (ROOT / "docs" / "diagnostics.md").read_text()
    missing = [code for code in all_codes() if f"\n## {code}\n" not in text]
    assert missing == []
