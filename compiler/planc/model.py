"""SourcePlan / SourceStep: the schema-valid plan as typed values, each field with its span."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, NamedTuple

from planc.diagnostics import Span
from planc.nodes import Document, MapNode, Node, ScalarNode, SeqNode


class Ref(NamedTuple):
    """A step id (or resource name) written somewhere in the plan, with where it was written.

    The span is made only when asked for (rules ask when they report): the rules read every
    reference of every step."""

    name: str
    node: ScalarNode

    @property
    def span(self) -> Span:
        return self.node.span


@dataclass(frozen=True, eq=False, repr=False)
class SourceStep:
    index: int
    node: MapNode
    raw: dict[str, Any]

    @cached_property  # read by every rule, the graph and lowering
    def id(self) -> str:
        return str(self.raw["id"])

    @property
    def span(self) -> Span:
        return self.node.span

    def get(self, key: str, default: Any = None) -> Any:
        return self.raw.get(key, default)

    def has(self, key: str) -> bool:
        return key in self.raw

    def span_of(self, key: str) -> Span:
        """Where the value of `key` is written; the step itself when the key is absent."""
        value = self.node.get(key)
        return self.node.span if value is None else value.span

    def key_span(self, key: str) -> Span:
        node = self.node.key_node(key)
        return self.node.span if node is None else node.span

    def refs(self, key: str) -> list[Ref]:
        """A list-of-strings field (depends_on, provides, consumes) with each item's span."""
        seq = self.node.get(key)
        if not isinstance(seq, SeqNode):
            return []
        return [Ref(str(item.value), item) for item in seq.items if isinstance(item, ScalarNode)]

    def names(self, key: str) -> list[str]:
        """The same field as `refs`, without positions: the schema made every item a string."""
        value = self.raw.get(key)
        return value if isinstance(value, list) else []

    def scalar(self, key: str) -> ScalarNode | None:
        node = self.node.get(key)
        return node if isinstance(node, ScalarNode) else None

    @property
    def id_span(self) -> Span:
        return self.span_of("id")


@dataclass(frozen=True, eq=False, repr=False)
class SourcePlan:
    document: Document
    node: MapNode
    raw: dict[str, Any]
    steps: tuple[SourceStep, ...]

    @property
    def path(self) -> str:
        return self.document.path

    @property
    def globals(self) -> dict[str, Any]:
        value = self.raw.get("globals", {})
        return value if isinstance(value, dict) else {}

    @property
    def watch(self) -> dict[str, Any] | None:
        """The `watch:` section (`planrun watch`), None when the plan has none."""
        value = self.raw.get("watch")
        return value if isinstance(value, dict) else None

    def globals_span(self, key: str) -> Span:
        globals_node = self.node.get("globals")
        if isinstance(globals_node, MapNode):
            value = globals_node.get(key)
            if value is not None:
                return value.span
            return globals_node.span
        return self.node.span

    def span_of(self, key: str) -> Span:
        value = self.node.get(key)
        return self.node.span if value is None else value.span

    @cached_property
    def secret_names(self) -> frozenset[str]:
        """Every secret the plan declares, at plan level or on any step: none may leak."""
        names = set(self.raw.get("secrets") or [])
        for step in self.steps:
            names.update(step.get("secrets") or [])
        return frozenset(names)

    @cached_property
    def secret_params(self) -> frozenset[str]:
        """The params declared `secret: true`."""
        params = self.raw.get("params") or {}
        return frozenset(
            name for name, spec in params.items() if isinstance(spec, dict) and spec.get("secret")
        )


def build_model(document: Document) -> SourcePlan:
    """Wrap a schema-valid document; callers must have run schema validation first."""
    root = document.root
    assert isinstance(root, MapNode), "schema validation guarantees a mapping at the top"
    raw = document.plain
    assert isinstance(raw, dict)
    steps_node: Node | None = root.get("steps")
    steps: list[SourceStep] = []
    if isinstance(steps_node, SeqNode):
        # The plain values of each step are already inside `raw`: no second conversion.
        for index, (item, step_raw) in enumerate(zip(steps_node.items, raw["steps"], strict=True)):
            if isinstance(item, MapNode):
                assert isinstance(step_raw, dict)
                steps.append(SourceStep(index, item, step_raw))
    return SourcePlan(document, root, raw, tuple(steps))
