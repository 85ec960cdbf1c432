"""Secret masking: every form of every secret becomes `***` in output streams (even when a
secret is split across two reads) and in every text planrun records or prints
(docs/dataflow.md, "Secrets")."""

from __future__ import annotations

import base64
import functools
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

MASK = b"***"
# Shorter values cannot be masked without destroying the log (a secret `1` would hide every 1).
MIN_SECRET_LENGTH = 4
# The base64 of a secret inside a longer text (`user:TOKEN`, `TOKEN` + a newline) shares only
# the middle of the secret's own encoding; fragments shorter than this are too common to mask.
MIN_FRAGMENT_LENGTH = 8
# A form made only of these characters may be wrapped (`base64` breaks lines at 76 columns,
# PEM at 64): a line break may fall between any two of its characters.
_WRAPPABLE = re.compile(rb"[A-Za-z0-9+/=_-]+")
_LINE_BREAK = rb"(?:\r?\n)?"


def secret_forms(value: str) -> set[bytes]:
    """The raw value, its URL-encoded forms (`quote` with and without `safe="/"`, `quote_plus`),
    and its base64 and base64url forms, padded and not, as bytes. The base64 forms include the
    part of the encoding that stays the same when the secret is inside a longer text, at any of
    the three byte offsets base64 distinguishes."""
    raw = value.encode("utf-8", "surrogateescape")
    forms = {raw}
    for safe in ("", "/"):
        forms.add(quote(raw, safe=safe).encode())
        forms.add(quote_plus(raw, safe=safe).encode())
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        whole = encode(raw)
        forms |= {whole, whole.rstrip(b"=")}
        for offset in range(3):
            # Bytes before the secret change the first 4 characters, bytes after it the last
            # ones: what lies between is the secret's alone.
            encoded = encode(bytes(offset) + raw)
            start = 4 if offset else 0
            fragment = encoded[start : (offset + len(raw)) // 3 * 4]
            if len(fragment) >= MIN_FRAGMENT_LENGTH:
                forms.add(fragment)
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


def patterns_for(names: Iterable[str], environ: Mapping[str, str]) -> tuple[bytes, ...]:
    """Every byte string to mask for the secrets `names`, longest first."""
    return patterns_of(environ.get(name, "") for name in names)


def patterns_of(values: Iterable[str]) -> tuple[bytes, ...]:
    """Every byte string to mask for these secret values, longest first; values too short to
    mask are left out (planrun warns about them)."""
    forms: set[bytes] = set()
    for value in values:
        if len(value) >= MIN_SECRET_LENGTH:
            forms |= secret_forms(value)
    return tuple(sorted(forms, key=lambda form: (-len(form), form)))


@functools.lru_cache(maxsize=8)
def _compiled(patterns: tuple[bytes, ...]) -> tuple[re.Pattern[bytes], re.Pattern[str], int]:
    """The byte and text regexes of `patterns`, and the longest text one of them can match."""
    parts: list[bytes] = []
    longest = 0
    for form in patterns:
        if _WRAPPABLE.fullmatch(form) and len(form) > 1:
            parts.append(_LINE_BREAK.join(re.escape(form[i : i + 1]) for i in range(len(form))))
            longest = max(longest, 3 * len(form) - 2)  # a `\r\n` between every two characters
        else:
            parts.append(re.escape(form))
            longest = max(longest, len(form))
    source = b"|".join(parts)
    return re.compile(source), re.compile(source.decode("utf-8", "surrogateescape")), longest


def _mask_bytes(match: re.Match[bytes]) -> bytes:
    # A wrapped form keeps its line breaks: each line's fragment becomes `***`, so the line
    # structure of the log (and of a multi-line secret) stays.
    return re.sub(rb"[^\r\n]+", MASK, match.group())


def _mask_text(match: re.Match[str]) -> str:
    return re.sub(r"[^\r\n]+", "***", match.group())


class Masker:
    """Masks text: the one masker of reasons, messages, argv, outputs and every event payload
    (the executor applies it where events are recorded), built from the same patterns as the
    stream masker of the logs."""

    def __init__(self, patterns: tuple[bytes, ...]) -> None:
        self.patterns = patterns
        self._regex = _compiled(patterns)[1]

    def text(self, text: str) -> str:
        return self._regex.sub(_mask_text, text)

    def holds_secret(self, text: str) -> bool:
        return self._regex.search(text) is not None

    def payload(self, value: Any) -> Any:
        """`value` with every string in it masked (dicts, lists and tuples walked)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {key: self.payload(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.payload(item) for item in value]
        return value


class StreamMasker:
    """Masks a byte stream chunk by chunk. It holds back at most `longest - 1` bytes, where
    `longest` is the longest text a pattern can match (wrapped base64 included): a secret that
    starts before that point is wholly inside what it has seen, so it is always caught."""

    def __init__(self, patterns: tuple[bytes, ...]) -> None:
        self._regex, _, longest = _compiled(patterns)
        self._keep = longest - 1
        self._carry = b""

    def feed(self, chunk: bytes) -> bytes:
        data = self._carry + chunk
        cut = max(0, len(data) - self._keep)
        out: list[bytes] = []
        position = 0
        for match in self._regex.finditer(data):
            if match.start() >= cut:
                break
            out += (data[position : match.start()], _mask_bytes(match))
            position = match.end()
        emit_to = max(position, cut)
        out.append(data[position:emit_to])
        self._carry = data[emit_to:]
        return b"".join(out)

    def flush(self) -> bytes:
        data, self._carry = self._carry, b""
        return self._regex.sub(_mask_bytes, data)
