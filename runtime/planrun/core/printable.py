"""Text from a plan, a step or the state dir made safe to print on a terminal or in a CI log
(docs/views.md, "Untrusted text"); planc and every planrun view use it."""

from __future__ import annotations

import re

# What a terminal or a CI log reader would act on rather than show: C0 controls but the tab (ESC
# starts colour, cursor and OSC sequences such as a window title or a hyperlink; a newline lets
# a value forge a line of its own, e.g. a GitHub `::error`), DEL, C1 controls (0x9B is a
# one-byte CSI), bidirectional overrides (text shown in another order than it is) and the lone
# surrogates of bytes that were not UTF-8.
_UNPRINTABLE = re.compile(
    "[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)


def printable(text: str) -> str:
    """`text` (from a plan, a step or the state dir) made safe to print: every character a
    terminal would act on is written as a Python escape (`\\x1b`, `\\n`, `\\u202e`). The one place
    planrun and planc make outside text printable (docs/views.md, "Untrusted text")."""
    if _UNPRINTABLE.search(text) is None:
        return text
    return _UNPRINTABLE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char == "\n":
        return "\\n"
    if char == "\r":
        return "\\r"
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # os.fsdecode's stand-in for a byte that is not UTF-8
        code -= 0xDC00
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


# How GitHub's toolkit (@actions/core, command.ts) escapes a workflow command's message and its
# property values; the runner decodes them. planc's `--format github` and planrun under GitHub
# Actions both use these.
_GITHUB_DATA = str.maketrans({"%": "%25", "\r": "%0D", "\n": "%0A"})
_GITHUB_PROPERTY = str.maketrans({"%": "%25", "\r": "%0D", "\n": "%0A", ":": "%3A", ",": "%2C"})


def github_data(text: str) -> str:
    """A workflow command's message: one line whatever the text holds."""
    return text.translate(_GITHUB_DATA)


def github_property(text: str) -> str:
    """A workflow command's property value (`file=`, `title=`)."""
    return text.translate(_GITHUB_PROPERTY)
