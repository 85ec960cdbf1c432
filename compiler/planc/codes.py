"""The one registry of diagnostic codes (`planc explain`, docs/diagnostics.md).

One convention: a module that reports diagnostics, or the catalogue of its stage
(`planc.codes_frontend`, `planc.codes_conditions`, `planc.analysis.codes`), declares
`CODES: dict[str, CodeDoc]`, code → (one-line summary, explanation with a small example), and is
listed in `_sources()`. A code is lowercase words joined by `-`. The registry is built when this
module is imported and refuses a code declared twice (one would silently win) or misnamed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

CodeDoc = tuple[str, str]

CODES: dict[str, CodeDoc] = {
    "internal-error": (
        "planc itself failed",
        "A bug in planc, not in your plan: planc prints one line and exits 3. Please report it"
        " with the plan that triggers it.",
    ),
}

_CODE_NAME = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")


class CodeRegistryError(Exception):
    """Two tables declare one code, or a code or its summary breaks the convention."""


def register(tables: Iterable[tuple[str, Mapping[str, CodeDoc]]]) -> dict[str, CodeDoc]:
    """Every code of `tables` (name, CODES), sorted by code."""
    merged: dict[str, CodeDoc] = {}
    declared_by: dict[str, str] = {}
    for source, table in tables:
        for code, (summary, explanation) in table.items():
            if code in declared_by:
                raise CodeRegistryError(
                    f"diagnostic code `{code}` is declared by both {declared_by[code]} and {source}"
                )
            if not _CODE_NAME.fullmatch(code) or not summary or "\n" in summary:
                raise CodeRegistryError(f"{source}: `{code}` breaks the code convention")
            declared_by[code] = source
            merged[code] = (summary, explanation)
    return dict(sorted(merged.items()))


def _sources() -> list[tuple[str, Mapping[str, CodeDoc]]]:
    # Imported here: the rule modules import much of planc, which must not need this module.
    from planc import codes_conditions, codes_frontend, fragments, matrix
    from planc.analysis import codes as codes_analysis
    from planc.rules import RULE_MODULES

    modules = [codes_frontend, fragments, matrix, *RULE_MODULES, codes_conditions, codes_analysis]
    tables = [(module.__name__, getattr(module, "CODES", None)) for module in modules]
    return [(__name__, CODES)] + [(name, table) for name, table in tables if table is not None]


REGISTRY: dict[str, CodeDoc] = register(_sources())


def all_codes() -> dict[str, CodeDoc]:
    return dict(REGISTRY)
