"""Every diagnostic code with its summary and explanation (`planc explain`, docs/diagnostics.md)."""

from __future__ import annotations

from planc import codes_conditions, codes_frontend
from planc.analysis import codes as codes_analysis
from planc.rules import RULE_MODULES

CodeDoc = tuple[str, str]

PIPELINE_CODES: dict[str, CodeDoc] = {
    "io-error": (
        "the plan file cannot be read",
        "The path does not exist, is a directory, or is not readable by you.",
    ),
    "internal-error": (
        "planc itself failed",
        "A bug in planc, not in your plan: planc prints one line and exits 3. Please report it"
        " with the plan that triggers it.",
    ),
}


def all_codes() -> dict[str, CodeDoc]:
    merged: dict[str, CodeDoc] = dict(PIPELINE_CODES)
    merged.update(codes_frontend.CODES)
    for module in RULE_MODULES:
        merged.update(getattr(module, "CODES", {}))
    merged.update(codes_conditions.CODES)
    merged.update(codes_analysis.CODES)
    return dict(sorted(merged.items()))
