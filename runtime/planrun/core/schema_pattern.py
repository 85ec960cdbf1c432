"""JSON Schema's `pattern` keyword as the standard reads it, for planc's plan schema and
planrun's IR schema alike.

A schema pattern is an ECMA-262 regular expression, in which `$` matches only at the very end
of the string. Python's `$` also matches before a final newline, so `re.search("^[a-z]+$",
"a\\n")` succeeds and jsonschema (which does exactly that) accepts `id: "a\\n"`. Every pattern
check goes through `matcher()`, which turns each `$` into `\\Z`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any


@cache
def ecma_regex(pattern: str) -> re.Pattern[str]:
    """`pattern` compiled with ECMA-262 anchors: `$` outside a character class becomes `\\Z`;
    and ASCII classes, as `\\d` and `\\w` are in ECMA-262 without the `u` flag."""
    out: list[str] = []
    in_class = escaped = False
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "$":
            out.append(r"\Z")
            continue
        out.append(char)
    return re.compile("".join(out), re.ASCII)


def matcher(pattern: str) -> Callable[[str], bool]:
    """Whether a string matches the schema `pattern` (anywhere, as JSON Schema says)."""
    search = ecma_regex(pattern).search
    return lambda text: search(text) is not None


@cache
def ecma_draft7() -> Any:
    """jsonschema's Draft7Validator class with `pattern` read the ECMA-262 way (imported only
    when called: jsonschema is costly to import and only explains a refusal)."""
    from jsonschema import Draft7Validator, validators

    return validators.extend(Draft7Validator, {"pattern": _pattern})  # type: ignore[no-untyped-call]


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[Any]:
    from jsonschema.exceptions import ValidationError

    if isinstance(instance, str) and ecma_regex(pattern).search(instance) is None:
        yield ValidationError(f"{instance!r} does not match {pattern!r}")
