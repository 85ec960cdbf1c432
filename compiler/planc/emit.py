"""Emission: the IR dict → canonical JSON bytes with its digest (docs/ir.md)."""

from __future__ import annotations

import hashlib
from typing import Any

from planrun.ir import canonical_text as _dumps


def emit(ir_without_digest: dict[str, Any]) -> bytes:
    """Byte-identical for identical input: sorted keys, fixed separators, one final newline.

    Equal to `planrun.ir.canonical_json` of the IR with its digest (a test checks it), but each
    top-level value is serialised once: the digest covers the members without `digest`, and the
    file is the same members with `digest` spliced in at its sorted place.
    """
    members = {key: _dumps(value) for key, value in ir_without_digest.items()}
    body = _object(members).encode("utf-8")
    members["digest"] = _dumps("sha256:" + hashlib.sha256(body).hexdigest())
    return _object(members).encode("utf-8") + b"\n"


def _object(members: dict[str, str]) -> str:
    return "{" + ",".join(f"{_dumps(key)}:{members[key]}" for key in sorted(members)) + "}"
