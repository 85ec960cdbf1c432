"""The one registry of diagnostic codes: complete, and refusing a code declared twice."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import planc
from planc import codes
from planc.codes import CodeRegistryError, all_codes, register

GOLDEN = Path(__file__).parents[1] / "golden"


def test_a_code_declared_twice_is_refused() -> None:
    first = ("planc.one", {"io-error": ("the file cannot be read", "...")})
    second = ("planc.two", {"io-error": ("cannot read the plan", "...")})
    with pytest.raises(CodeRegistryError) as raised:
        register([first, second])
    assert str(raised.value) == (
        "diagnostic code `io-error` is declared by both planc.one and planc.two"
    )


@pytest.mark.parametrize("code", ["Io-error", "io_error", "io--error", "-io", "io-"])
def test_a_misnamed_code_is_refused(code: str) -> None:
    with pytest.raises(CodeRegistryError, match="breaks the code convention"):
        register([("planc.one", {code: ("summary", "explanation")})])


def test_a_summary_is_one_line() -> None:
    with pytest.raises(CodeRegistryError, match="`x-y` breaks the code convention"):
        register([("planc.one", {"x-y": ("two\nlines", "explanation")})])


def test_every_module_that_declares_codes_is_registered() -> None:
    """include-* and matrix-* were once declared in their modules but missing from the registry,
    so `planc explain` and docs/diagnostics.md did not know them."""
    sources = {name for name, _ in codes._sources()}
    declaring = set()
    for module_info in pkgutil.walk_packages(planc.__path__, "planc."):
        if module_info.name == "planc.__main__":
            continue
        module = importlib.import_module(module_info.name)
        if isinstance(getattr(module, "CODES", None), dict):
            declaring.add(module_info.name)
    assert declaring - sources == set()
    assert {"planc.fragments", "planc.matrix"} <= sources


def test_every_code_in_the_golden_outputs_is_registered() -> None:
    shown = {
        code
        for out in GOLDEN.glob("*/*.out")
        for code in re.findall(
            r"(?:error|warning)\[([a-z0-9-]+)\]", out.read_text(encoding="utf-8")
        )
    }
    assert shown
    assert shown - set(all_codes()) == set()
