"""Secret masking of output streams: every form of every secret becomes `***`, even when a
secret is split across two reads (docs/dataflow.md, "Secrets")."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from urllib.parse import quote, quote_plus

MASK = b"***"
# Shorter values cannot be masked without destroying the log (a secret `1` would hide every 1).
MIN_SECRET_LENGTH = 4


def secret_forms(value: str) -> set[bytes]:
    """The raw value, its base64 (padded and not) and its URL-encoded forms, as bytes."""
    raw = value.encode()
    encoded = base64.b64encode(raw)
    forms = {raw, encoded, encoded.rstrip(b"="), quote(value, safe="").encode()}
    forms.add(quote_plus(value, safe="").encode())
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


def patterns_for(names: Iterable[str], environ: Mapping[str, str]) -> tuple[bytes, ...]:
    """Every byte string to mask for the secrets `names`, longest first."""
    forms: set[bytes] = set()
    for name in names:
        value = environ.get(name)
        if value and len(value) >= MIN_SECRET_LENGTH:
            forms |= secret_forms(value)
    return tuple(sorted(forms, key=lambda form: (-len(form), form)))


def too_short_to_mask(names: Iterable[str], environ: Mapping[str, str]) -> list[str]:
    """The secrets set to a value too short to mask: they appear as is (planrun warns)."""
    return sorted(n for n in names if 0 < len(environ.get(n, "")) < MIN_SECRET_LENGTH)


class StreamMasker:
    """Masks a byte stream chunk by chunk. It holds back at most `longest - 1` bytes: a secret
    that starts before that point is wholly inside what it has seen, so it is always caught."""

    def __init__(self, patterns: tuple[bytes, ...]) -> None:
        self._regex = re.compile(b"|".join(re.escape(p) for p in patterns))
        self._keep = max(len(p) for p in patterns) - 1
        self._carry = b""

    def feed(self, chunk: bytes) -> bytes:
        data = self._carry + chunk
        cut = max(0, len(data) - self._keep)
        out: list[bytes] = []
        position = 0
        for match in self._regex.finditer(data):
            if match.start() >= cut:
                break
            out += (data[position : match.start()], MASK)
            position = match.end()
        emit_to = max(position, cut)
        out.append(data[position:emit_to])
        self._carry = data[emit_to:]
        return b"".join(out)

    def flush(self) -> bytes:
        data, self._carry = self._carry, b""
        return self._regex.sub(MASK, data)
