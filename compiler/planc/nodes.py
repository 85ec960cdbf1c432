"""Positioned document nodes: what `load` makes of YAML or JSON text, read by every later stage."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import NamedTuple

from planc.diagnostics import Span
from planrun.core.byvalue import ByValue

Scalar = str | int | float | bool | None


class ScalarNode(NamedTuple):
    """A scalar and where it is written (1-based; end exclusive, as in a Span).

    A 100k-step plan has 1.3M scalars, so this is as cheap as an immutable value gets: a named
    tuple is made four times faster than a frozen dataclass, and the position is kept as four
    ints rather than a Span object (which would cost ~90 MB more); `span` makes one."""

    value: Scalar
    line: int
    col: int
    end_line: int
    end_col: int
    # Column (1-based, in the file) where the string's characters start, when every character of
    # the value maps one-to-one onto the source line (plain or quoted without escapes, single
    # line). None when that mapping does not hold; positions inside the string then fall back to
    # the node's own span.
    text_col: int | None = None

    @classmethod
    def at(cls, value: Scalar, span: Span, text_col: int | None = None) -> ScalarNode:
        return cls(value, span.line, span.col, span.end_line, span.end_col, text_col)

    @property
    def span(self) -> Span:
        return Span(self.line, self.col, self.end_line, self.end_col)

    def position_of(self, offset: int, length: int = 1) -> Span:
        """The file span of characters [offset, offset+length) of this string value."""
        if self.text_col is None:
            return self.span
        col = self.text_col + offset
        return Span(self.line, col, self.line, col + max(length, 1))


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class SeqNode(ByValue):
    items: tuple[Node, ...]
    span: Span


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class MapNode(ByValue):
    # Keys keep their own node so a diagnostic about a key points at the key, not its value.
    entries: tuple[tuple[ScalarNode, Node], ...]
    span: Span
    _index: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for i, (key, _) in enumerate(self.entries):
            self._index.setdefault(str(key.value), i)

    def get(self, key: str) -> Node | None:
        i = self._index.get(key)
        return None if i is None else self.entries[i][1]

    def key_node(self, key: str) -> ScalarNode | None:
        i = self._index.get(key)
        return None if i is None else self.entries[i][0]

    def keys(self) -> list[str]:
        return [str(k.value) for k, _ in self.entries]


Node = ScalarNode | SeqNode | MapNode


@dataclass(frozen=True, eq=False, repr=False)
class Document(ByValue):
    path: str
    text: str
    root: Node

    @cached_property
    def plain(self) -> object:
        """The tree as plain values, made once: the schema checks it and the model keeps it."""
        return to_plain(self.root)


def to_plain(node: Node) -> object:
    """The node tree as plain Python values (for JSON Schema validation and lowering)."""
    if isinstance(node, ScalarNode):
        return node.value
    if isinstance(node, SeqNode):
        return [to_plain(item) for item in node.items]
    return {str(k.value): to_plain(v) for k, v in node.entries}


def node_at(root: Node, path: list[str | int]) -> Node:
    """The deepest node reachable along a JSON-pointer-like path (stops where the path breaks)."""
    node = root
    for part in path:
        if isinstance(node, MapNode) and isinstance(part, str) and node.get(part) is not None:
            child = node.get(part)
            assert child is not None
            node = child
        elif isinstance(node, SeqNode) and isinstance(part, int) and 0 <= part < len(node.items):
            node = node.items[part]
        else:
            break
    return node


def string_scalars(node: Node) -> Iterator[ScalarNode]:
    """The string scalars in `node` (not the keys), in the order they are written."""
    if isinstance(node, ScalarNode) and isinstance(node.value, str):
        yield node
    elif isinstance(node, SeqNode):
        for item in node.items:
            yield from string_scalars(item)
    elif isinstance(node, MapNode):
        for _, value in node.entries:
            yield from string_scalars(value)


def map_strings(node: Node, change: Callable[[ScalarNode], str]) -> Node:
    """`node` with each string scalar (not the keys) replaced by `change(scalar)`; a changed one
    loses its character positions, so diagnostics inside it point at the whole scalar."""
    if isinstance(node, ScalarNode):
        if not isinstance(node.value, str):
            return node
        text = change(node)
        return node if text == node.value else node._replace(value=text, text_col=None)
    if isinstance(node, SeqNode):
        return SeqNode(tuple(map_strings(item, change) for item in node.items), node.span)
    return MapNode(tuple((k, map_strings(v, change)) for k, v in node.entries), node.span)


def with_entries(
    node: MapNode, changes: dict[str, Node | None], span: Span | None = None
) -> MapNode:
    """`node` with the values of some keys replaced (None drops the key); new keys come last.
    The new key nodes of added keys sit at the mapping's start."""
    entries = [(k, changes.get(str(k.value), v)) for k, v in node.entries]
    kept: list[tuple[ScalarNode, Node]] = [(k, v) for k, v in entries if v is not None]
    present = {str(k.value) for k, _ in node.entries}
    for key, value in changes.items():
        if key not in present and value is not None:
            kept.append((ScalarNode.at(key, node.span), value))
    return MapNode(tuple(kept), span or node.span)
