"""The limits of a plan, and what the JSON and YAML loaders share: their report of problems and
the checks every node goes through (keys, strings, numbers, depth)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import NoReturn

from planc.diagnostics import Diagnostic, DiagnosticError, Span, error
from planc.nodes import MapNode, Node, ScalarNode, SeqNode
from planrun.core.reads import MAX_INPUT_BYTES, SURROGATE

# The one input limit of planc and planrun (32 MiB), plans included.
MAX_PLAN_BYTES = MAX_INPUT_BYTES
# A plan is about five levels deep; the cap keeps every later (recursive) stage safe.
MAX_DEPTH = 64
# Longer integers are never meaningful in a plan and are slow to convert.
MAX_INT_DIGITS = 50
# Past this many problems the file is clearly not a plan; more output would only be noise.
MAX_DIAGNOSTICS = 100
# Memory grows with what a plan holds, not with its bytes: 31 MB of `[1,1,…]` or of `k: v` lines
# built 3 GB of nodes, and 500,000 one-line steps far more in the later stages. These two
# bounds keep `planc check` of any accepted file under 1 GiB (tests/compiler/test_limits.py); a
# 100,000-step plan (benchmarks/compile_scale.py) counts about 950,000 items.
MAX_ITEMS = 1_200_000  # lines, commas and opening brackets: each node needs at least one
MAX_STEPS = 100_000


def kind(node: Node) -> str:
    if isinstance(node, MapNode):
        return "a mapping"
    if isinstance(node, SeqNode):
        return "a list"
    if node.value is None:
        return "null"
    return f"the scalar {node.value!r}"


@dataclass(eq=False, repr=False)
class Report:
    path: str
    diagnostics: list[Diagnostic] = field(default_factory=list)

    def add(self, span: Span, code: str, message: str, hint: str | None = None) -> None:
        self.diagnostics.append(error(self.path, span, code, message, hint))
        if len(self.diagnostics) >= MAX_DIAGNOSTICS:
            self.raise_if_any()

    def fatal(self, span: Span, code: str, message: str, hint: str | None = None) -> NoReturn:
        self.diagnostics.append(error(self.path, span, code, message, hint))
        self.diagnostics.sort(key=Diagnostic.sort_key)
        raise DiagnosticError(self.diagnostics)

    def raise_if_any(self) -> None:
        if self.diagnostics:
            self.diagnostics.sort(key=Diagnostic.sort_key)
            raise DiagnosticError(self.diagnostics)


# What a number a plan cannot hold is told: the message (of the number as written) and the hint.
_NUMBER_PROBLEMS = {
    "non-finite-number": ("`{}` is not a finite number", "plans accept only finite numbers"),
    "number-too-large": (f"the integer `{{}}` has more than {MAX_INT_DIGITS} digits", None),
}


class Loader(ABC):
    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.text = text
        self.report = Report(path)

    @abstractmethod
    def load(self) -> Node:
        """The root node; problems go to self.report, fatal ones raise DiagnosticError."""

    @abstractmethod
    def position(self) -> Span:
        """Where the loader is now, for errors that carry no position of their own."""

    def check_key(self, key: ScalarNode, seen: dict[str, ScalarNode]) -> None:
        name = str(key.value)
        first = seen.get(name)
        if first is None:
            seen[name] = key
            return
        self.report.add(
            key.span,
            "duplicate-key",
            f"duplicate key `{name}` (first written at line {first.span.line}, "
            f"column {first.span.col})",
            hint="a key may appear only once in a mapping; remove or rename one of them",
        )

    def check_string(self, value: str, span: Span) -> None:
        if SURROGATE.search(value):
            self.report.add(
                span,
                "invalid-unicode",
                "the string contains an unpaired surrogate escape (\\ud800-\\udfff)",
                hint="escape characters outside the BMP as a surrogate pair, or write them as is",
            )

    def report_number(self, code: str, span: Span, written: str) -> None:
        """A number a plan cannot hold (`non-finite-number`, `number-too-large`)."""
        message, hint = _NUMBER_PROBLEMS[code]
        self.report.add(span, code, message.format(shorten(written)), hint)

    def check_depth(self, depth: int, span: Span) -> None:
        if depth > MAX_DEPTH:
            self.report.fatal(
                span, "too-deep", f"the plan nests deeper than {MAX_DEPTH} levels here"
            )


def point(text: str, pos: int) -> Span:
    line_start = text.rfind("\n", 0, pos) + 1
    return Span(text.count("\n", 0, pos) + 1, pos - line_start + 1)


def shorten(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
