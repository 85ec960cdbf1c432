"""`${{ params.NAME }}`, `${{ steps.ID.outputs.NAME }}`, `${{ env.NAME }}` (docs/dataflow.md), and
`${{ item }}` in a fan-out step (docs/composition.md).

The one definition of the placeholder syntax: planc checks plans with `find`, planrun
substitutes with `substitute` just before a step starts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

from planrun.core.byvalue import ByValue

PLACEHOLDER = re.compile(r"\$\{\{(.*?)\}\}")
_REFERENCE = re.compile(
    r"\s*(?:"
    r"params\.(?P<param>[A-Za-z_][A-Za-z0-9_]*)"
    r"|steps\.(?P<step>[A-Za-z_][A-Za-z0-9_.\-]*?)\.outputs\.(?P<output>[A-Za-z_][A-Za-z0-9_.\-]*)"
    r"|env\.(?P<env>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<item>item)"
    r")\s*"
)


@dataclass(frozen=True, eq=False, repr=False)
class Reference(ByValue):
    kind: Literal["param", "output", "env", "item"]
    name: str
    step: str | None
    start: int  # the placeholder's position in the string, `${{` included
    end: int


@dataclass(frozen=True, eq=False, repr=False)
class Malformed(ByValue):
    text: str
    start: int
    end: int


def find(text: str) -> Iterator[Reference | Malformed]:
    """Every placeholder in `text`, in order."""
    for match in PLACEHOLDER.finditer(text):
        inner = _REFERENCE.fullmatch(match.group(1))
        if inner is None:
            yield Malformed(match.group(1).strip(), match.start(), match.end())
        elif inner.group("param"):
            yield Reference("param", inner.group("param"), None, match.start(), match.end())
        elif inner.group("item"):
            yield Reference("item", "item", None, match.start(), match.end())
        elif inner.group("env"):
            yield Reference("env", inner.group("env"), None, match.start(), match.end())
        else:
            name, step = inner.group("output"), inner.group("step")
            yield Reference("output", name, step, match.start(), match.end())
    tail = text.rfind("${{")
    if tail >= 0 and "}}" not in text[tail:]:
        yield Malformed(text[tail + 3 :].strip(), tail, len(text))


def substitute(text: str, resolve: Callable[[Reference], str]) -> str:
    """`text` with each placeholder replaced by `resolve(reference)`; the result is one string,
    whatever the values hold (nothing is split or parsed again)."""
    if "${{" not in text:
        return text
    parts: list[str] = []
    position = 0
    for found in find(text):
        if isinstance(found, Malformed):
            raise ValueError(f"malformed placeholder `${{{{ {found.text} }}}}`")
        parts.append(text[position : found.start])
        parts.append(resolve(found))
        position = found.end
    parts.append(text[position:])
    return "".join(parts)
