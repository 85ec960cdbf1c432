"""Emission: the IR dict → canonical JSON bytes with its digest (docs/ir.md)."""

from __future__ import annotations

from typing import Any

from planrun.ir import canonical_json, compute_digest


def emit(ir_without_digest: dict[str, Any]) -> bytes:
    """Byte-identical for identical input: sorted keys, fixed separators, one final newline."""
    frozen = {**ir_without_digest, "digest": compute_digest(ir_without_digest)}
    return canonical_json(frozen) + b"\n"
