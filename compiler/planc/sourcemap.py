"""Which file a position is in, once `include:` has joined several files into one node tree.

Every included file's nodes are loaded with their lines shifted by a multiple of LINE_BLOCK, so
the rules and lowering keep working on one tree with plain spans; diagnostics and IR locations
are mapped back to (file, line) here, at the end. A plan is at most 32 MiB, so no file has
LINE_BLOCK lines."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from planc.diagnostics import Diagnostic, Span
from planc.nodes import MapNode, Node, ScalarNode, SeqNode
from planrun.core.byvalue import ByValue

LINE_BLOCK = 1 << 26


@dataclass(frozen=True, eq=False, repr=False)
class SourceFile(ByValue):
    path: str
    text: str
    sha256: str
    included_from: tuple[int, int] | None  # (block, line) of the `include:` that brought it in


@dataclass(eq=False, repr=False)
class SourceMap:
    """Block 0 is the plan itself; block k (k ≥ 1) the k-th included file."""

    files: list[SourceFile] = field(default_factory=list)

    def file_of(self, line: int) -> tuple[SourceFile, int]:
        block = min(line // LINE_BLOCK, len(self.files) - 1)
        return self.files[block], line - block * LINE_BLOCK

    def remap(self, diagnostic: Diagnostic) -> Diagnostic:
        if diagnostic.span.line < LINE_BLOCK or len(self.files) < 2:
            return diagnostic
        source, line = self.file_of(diagnostic.span.line)
        shift = diagnostic.span.line - line
        span = Span(
            line, diagnostic.span.col, diagnostic.span.end_line - shift, diagnostic.span.end_col
        )
        return dataclasses.replace(
            diagnostic, path=source.path, span=span, message=diagnostic.message + self.chain(source)
        )

    def chain(self, source: SourceFile) -> str:
        """` (included from plan.yaml:12)`, through every level of nesting."""
        parts: list[str] = []
        current = source
        while current.included_from is not None:
            block, line = current.included_from
            current = self.files[block]
            parts.append(f"{current.path}:{line}")
        return f" (included from {', '.join(parts)})" if parts else ""

    def location(self, span: Span) -> str:
        source, line = self.file_of(span.line)
        return f"{source.path.replace(chr(92), '/')}:{line}:{span.col}"

    @property
    def sources(self) -> dict[str, str]:
        return {f.path: f.text for f in self.files}


def shift(node: Node, lines: int) -> Node:
    """`node` with every position moved down by `lines`."""
    if isinstance(node, ScalarNode):
        return node._replace(line=node.line + lines, end_line=node.end_line + lines)
    span = _shifted(node.span, lines)
    if isinstance(node, SeqNode):
        return SeqNode(tuple(shift(item, lines) for item in node.items), span)
    entries = tuple((shift(k, lines), shift(v, lines)) for k, v in node.entries)
    return MapNode(entries, span)  # type: ignore[arg-type]


def _shifted(span: Span, lines: int) -> Span:
    return Span(span.line + lines, span.col, span.end_line + lines, span.end_col)
