"""Emission: the IR dict → canonical JSON bytes with its digest (docs/ir.md)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

from planrun.core.ir import canonical_text as _dumps


def emit(ir_without_digest: dict[str, Any]) -> bytes:
    """Byte-identical for identical input: sorted keys, fixed separators, one final newline.

    Equal to `planrun.core.ir.canonical_json` of the IR with its digest (a test checks it), but each
    top-level value is serialised once: the digest covers the members without `digest`, and the
    file is the same members with `digest` spliced in at its sorted place. The digest is taken
    piece by piece and the file joined once, so no other copy of the text is made: for a
    100k-step plan each copy of its 70 MB would add to the peak memory.
    """
    members = {key: _dumps(value).encode("utf-8") for key, value in ir_without_digest.items()}
    digest = hashlib.sha256()
    for piece in _object(members):
        digest.update(piece)
    members["digest"] = _dumps("sha256:" + digest.hexdigest()).encode("utf-8")
    return b"".join([*_object(members), b"\n"])


def _object(members: dict[str, bytes]) -> Iterator[bytes]:
    """The JSON object of these members, in pieces."""
    for i, key in enumerate(sorted(members)):
        yield (b"," if i else b"{") + _dumps(key).encode("utf-8") + b":"
        yield members[key]
    yield b"}"
