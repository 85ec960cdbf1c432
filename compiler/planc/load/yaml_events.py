"""YAML plans: block YAML read line by line (yaml_lines) when it can be, else ruamel's parser
events, never composed or constructed: anchors, aliases and tags are refused before they can
expand or execute, and nesting is bounded before anything deep is built."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

import planc.load.yaml_lines as yaml_lines
from planc.diagnostics import Span
from planc.load.base import MAX_INT_DIGITS, Loader, Report, kind, point, shorten
from planc.nodes import MapNode, Node, Scalar, ScalarNode, SeqNode

_NOWHERE = Span(1, 1)

_YAML_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_YAML_BOOLS = {
    "true": True,
    "True": True,
    "TRUE": True,
    "false": False,
    "False": False,
    "FALSE": False,
}
# YAML 1.1 booleans that YAML 1.2 reads as strings: too easy to get the other meaning silently.
_AMBIGUOUS_BOOLS = frozenset({"yes", "no", "on", "off", "y", "n"})
# The YAML 1.2 core schema's number forms (a plain scalar matching none of them is a string).
_YAML_NUMBER = re.compile(
    r"""(?P<dec>[-+]?[0-9]+)
    | 0o(?P<oct>[0-7]+)
    | 0x(?P<hex>[0-9a-fA-F]+)
    | (?P<float>[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?)
    | (?P<special>[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))""",
    re.VERBOSE,
)
_INT_BASES = {"dec": 10, "oct": 8, "hex": 16}
_NUMBER_START = frozenset("0123456789+-.")
# An anchor (&name) or tag (!tag, !!tag, !<uri>) in front of a node.
_PROPERTY = re.compile(r"([&!])(?:<[^>\s]*>|[^\s,\[\]{}]*)")


@dataclass(eq=False, repr=False)
class _YamlFrame:
    line: int
    col: int
    is_mapping: bool
    flow: bool
    items: list[Any] = field(default_factory=list)
    key: ScalarNode | None = None
    seen: dict[str, ScalarNode] = field(default_factory=dict)


if TYPE_CHECKING:
    from ruamel.yaml import YAML
    from ruamel.yaml import error as ruamel_error
    from ruamel.yaml import events as ruamel_events
    from ruamel.yaml import reader as ruamel_reader


def _import_ruamel() -> None:
    """Bind ruamel's names in this module. Deferred: JSON plans and the block YAML that
    planc.load.yaml_lines reads never need ruamel, whose import is most of `planc check`'s
    start-up on a small plan (issue 17)."""
    global YAML, ruamel_error, ruamel_events, ruamel_reader
    from ruamel.yaml import YAML
    from ruamel.yaml import error as ruamel_error
    from ruamel.yaml import events as ruamel_events
    from ruamel.yaml import reader as ruamel_reader


class FastPathFailed(Exception):
    """libyaml refused the text: the pure parser must give the verdict (see _events)."""


def _events(text: str, pure: bool) -> Iterator[Any]:
    """The parser events of `text`, as ruamel's pure-Python YAML 1.2 parser produces them.

    libyaml (ruamel.yaml.clib), where installed, parses ten times faster with the same event
    classes and marks, but it scans some plain scalars by YAML 1.1 rules (`a: [http://x]` is an
    error there) and words its errors differently. So it only serves as a fast path: when it
    raises, `FastPathFailed` makes the caller start again with the pure parser, whose verdict
    and messages are the ones we keep. Events stream either way (no list of millions), and both
    parsers are iterative state machines: deep nesting cannot overflow the stack.
    """
    if not pure:
        try:
            from _ruamel_yaml import CParser
        except ImportError:
            pure = True
    if pure:
        # The safe parser: the same events as round-trip, without its costly comment tracking.
        yield from YAML(typ="safe", pure=True).parse(text)
        return
    parser = CParser(text)
    try:
        while parser.check_event():
            yield parser.get_event()
    except ruamel_error.YAMLError as exc:
        raise FastPathFailed from exc


class _Refusing(Report):
    """The report of the YAML fast path: a problem sends the text to the event path instead."""

    def add(self, span: Span, code: str, message: str, hint: str | None = None) -> None:
        raise yaml_lines.Unsupported


class YamlLoader(Loader):
    """YAML 1.2 built from ruamel's parser events, which come from an iterative state machine."""

    def __init__(self, path: str, text: str, pure: bool = False) -> None:
        super().__init__(path, text)
        self.pure = pure
        self.stack: list[_YamlFrame] = []
        self.root: Node | None = None
        self.documents = 0
        self.mark: Any = None
        self.previous_end: Any = None

    def position(self) -> Span:
        return Span(1, 1) if self.mark is None else _mark_span(self.mark)

    def load(self) -> Node:
        if not self.pure:
            root = self._read_lines()
            if root is not None:
                return root
        self._check_directives()
        _import_ruamel()
        try:
            for event in _events(self.text, self.pure):
                self.mark = event.start_mark
                self._event(event)
                self.previous_end = event.end_mark
        except ruamel_reader.ReaderError as exc:
            self._reader_error(exc)
        except ruamel_error.MarkedYAMLError as exc:
            self._syntax_error(exc)
        except ruamel_error.YAMLError as exc:
            self.report.fatal(self.position(), "yaml-syntax", f"invalid YAML: {exc}")
        if self.root is None:
            self.report.fatal(Span(1, 1), "empty-plan", "the plan file has no content")
        return self.root

    def _read_lines(self) -> Node | None:
        """The fast path (planc.load.yaml_lines), or None when the events must be read.

        Scalars are resolved by the same rules as on the event path, with a report that sends
        the text to the event path at the first problem, so that every diagnostic comes from
        there."""
        report, self.report = self.report, _Refusing(self.path)
        try:
            return yaml_lines.read(self.text, self._resolve_unreported)
        except yaml_lines.Unsupported:
            return None
        finally:
            self.report = report

    def _resolve_unreported(self, raw: str, is_key: bool) -> Scalar:
        # The span only serves a report, and this report refuses without one.
        return self._plain_value(raw, _NOWHERE, is_key)

    def _check_directives(self) -> None:
        """Directives can only come before the first document; ruamel gives them no position."""
        for number, line in enumerate(_leading_lines(self.text), start=1):
            if not line.startswith("%"):
                continue
            words = line[1:].split("#")[0].split()
            name, argument = [*words, "", ""][:2]
            span = Span(number, 1, number, len(line.rstrip()) + 1)
            if name == "YAML" and argument != "1.2":
                self.report.add(
                    span,
                    "yaml-version",
                    f"the plan declares YAML {argument or '(no version)'}; plans are YAML 1.2",
                    hint="remove the `%YAML` line (in YAML 1.2, yes/no/on/off are not booleans)",
                )
            elif name != "YAML":
                self.report.add(
                    span,
                    "yaml-directive",
                    f"the `%{name}` directive is not supported in plans",
                    hint="remove the line",
                )
        self.report.raise_if_any()

    def _event(self, event: Any) -> None:
        if isinstance(event, ruamel_events.ScalarEvent):
            self._scalar(event)
        elif isinstance(event, ruamel_events.CollectionStartEvent):
            self._open(event)
        elif isinstance(event, (ruamel_events.MappingEndEvent, ruamel_events.SequenceEndEvent)):
            self._close(event)
        elif isinstance(event, ruamel_events.AliasEvent):
            self._alias(event)
        elif isinstance(event, ruamel_events.DocumentStartEvent):
            self.documents += 1
            if self.documents > 1:
                self.report.fatal(
                    _mark_span(event.start_mark),
                    "multiple-documents",
                    "a plan file holds exactly one YAML document; a second one starts here",
                    hint="split the documents into separate plan files",
                )

    def _expecting_key(self) -> bool:
        return bool(self.stack) and self.stack[-1].is_mapping and self.stack[-1].key is None

    def _scalar(self, event: ruamel_events.ScalarEvent) -> None:
        self._check_properties(event)
        is_key = self._expecting_key()
        raw: str = event.value
        if event.style:  # libyaml reports a plain scalar as "", the pure parser as None
            span = _event_span(event)
            self.check_string(raw, span)
            self._attach(ScalarNode.at(raw, span, self._text_col(event, raw)))
            return
        if raw == "" and not self.stack:
            self.report.fatal(Span(1, 1), "empty-plan", "the plan file has no content")
        if is_key and raw == "<<":
            self.report.add(
                _event_span(event),
                "merge-key",
                "merge keys (`<<`) are not allowed in plans",
                hint="write the merged keys out in full",
            )
        # An empty value has its mark on the next token; point just after its key instead.
        span = _event_span(event) if raw else _mark_span(self.previous_end)
        value = self._plain_value(raw, span, is_key)
        text_col = self._text_col(event, raw) if isinstance(value, str) else None
        self._attach(ScalarNode.at(value, span, text_col))

    def _plain_value(self, raw: str, span: Span, is_key: bool) -> Scalar:
        # Nulls, booleans and the ambiguous words have at most five characters.
        if len(raw) > 5 and raw[0] not in _NUMBER_START:
            return raw
        if raw in _YAML_NULLS:
            return None
        boolean = _YAML_BOOLS.get(raw)
        if boolean is not None:
            return boolean
        if not is_key and raw.lower() in _AMBIGUOUS_BOOLS:
            self.report.add(
                span,
                "ambiguous-boolean",
                f"`{raw}` is ambiguous: YAML 1.1 reads it as a boolean, YAML 1.2 as a string",
                hint=f"quote it ('{raw}') if you mean the string, or write true/false",
            )
            return raw
        if raw[0] in _NUMBER_START:
            match = _YAML_NUMBER.fullmatch(raw)
            if match is not None:
                return self._number(match, raw, span)
        return raw

    def _number(self, match: re.Match[str], raw: str, span: Span) -> Scalar:
        kind = match.lastgroup or ""
        base = _INT_BASES.get(kind)
        if base is not None:
            digits = match.group(kind).lstrip("+-")
            if len(digits) > MAX_INT_DIGITS:
                self.report_number("number-too-large", span, raw)
                return None
            return int(match.group(kind), base)
        value = float("nan") if kind == "special" else float(raw)
        if kind == "special" or math.isinf(value):
            self.report_number("non-finite-number", span, raw)
            return None
        return value

    def _text_col(self, event: ruamel_events.ScalarEvent, raw: str) -> int | None:
        start, end = event.start_mark, event.end_mark
        if start.line != end.line or (event.style or None) not in (None, "'", '"'):
            return None
        quote = 1 if event.style else 0
        if self.text[start.index + quote : end.index - quote] != raw:
            return None
        return int(start.column) + 1 + quote

    def _open(self, event: ruamel_events.CollectionStartEvent) -> None:
        self._check_properties(event)
        span = _mark_span(event.start_mark)
        self.check_depth(len(self.stack) + 1, span)
        is_mapping = isinstance(event, ruamel_events.MappingStartEvent)
        self.stack.append(_YamlFrame(span.line, span.col, is_mapping, bool(event.flow_style)))

    def _close(self, event: ruamel_events.MappingEndEvent | ruamel_events.SequenceEndEvent) -> None:
        frame = self.stack.pop()
        end = _mark_span(event.end_mark) if frame.flow else self._last_child_end(frame)
        span = Span(frame.line, frame.col, end.end_line, end.end_col)
        if frame.is_mapping:
            self._attach(MapNode(tuple(frame.items), span))
        else:
            self._attach(SeqNode(tuple(frame.items), span))

    @staticmethod
    def _last_child_end(frame: _YamlFrame) -> Span:
        if not frame.items:
            return Span(frame.line, frame.col)
        last = frame.items[-1]
        node: Node = last[1] if frame.is_mapping else last
        return node.span

    def _alias(self, event: ruamel_events.AliasEvent) -> None:
        span = _event_span(event)
        self.report.add(
            span,
            "yaml-alias",
            f"aliases (`*{event.anchor}`) are not allowed in plans",
            hint="write the value out in full where it is needed",
        )
        self._attach(ScalarNode.at(None, span))

    def _check_properties(
        self, event: ruamel_events.ScalarEvent | ruamel_events.CollectionStartEvent
    ) -> None:
        if event.anchor is None and event.tag is None:
            return
        pos = event.start_mark.index
        for _ in range(2):  # at most an anchor and a tag, in either order
            match = _PROPERTY.match(self.text, pos)
            if match is None:
                break
            self._report_property(match.group(0), point(self.text, match.start()))
            pos = match.end()
            while pos < len(self.text) and self.text[pos] in " \t\r\n":
                pos += 1

    def _report_property(self, written: str, at: Span) -> None:
        span = Span(at.line, at.col, at.line, at.col + len(written))
        if written.startswith("&"):
            self.report.add(
                span,
                "yaml-anchor",
                f"anchors (`{written}`) are not allowed in plans",
                hint="write the value out in full at each place that needs it",
            )
        else:
            self.report.add(
                span,
                "yaml-tag",
                f"YAML tags (`{shorten(written)}`) are not allowed in plans",
                hint="remove the tag; quote the value if it must be a string",
            )

    def _attach(self, node: Node) -> None:
        if not self.stack:
            self.root = node
            return
        frame = self.stack[-1]
        if not frame.is_mapping:
            frame.items.append(node)
        elif frame.key is None:
            frame.key = self._key(node, frame)
        else:
            frame.items.append((frame.key, node))
            frame.key = None

    def _key(self, node: Node, frame: _YamlFrame) -> ScalarNode:
        if isinstance(node, ScalarNode) and isinstance(node.value, str):
            self.check_key(node, frame.seen)
            return node
        what = kind(node) if not isinstance(node, ScalarNode) else _scalar_kind(node.value)
        self.report.add(
            node.span,
            "non-string-key",
            f"keys must be strings; this key is {what}",
            hint="quote the key, e.g. '1': or 'true':",
        )
        return ScalarNode.at(str(node.value) if isinstance(node, ScalarNode) else "", node.span)

    def _reader_error(self, exc: ruamel_reader.ReaderError) -> NoReturn:
        span = point(self.text, min(int(exc.position), len(self.text)))
        character = exc.character
        code = ord(character) if isinstance(character, str) else int(character)
        self.report.fatal(
            span, "yaml-syntax", f"the character U+{code:04X} is not allowed in a YAML file"
        )

    def _syntax_error(self, exc: ruamel_error.MarkedYAMLError) -> NoReturn:
        mark = exc.problem_mark or exc.context_mark
        span = self.position() if mark is None else _mark_span(mark)
        problem = str(exc.problem or exc.context or "unreadable YAML").strip()
        hint = None
        if "\\t" in problem:
            hint = "YAML indentation uses spaces, not tabs"
        elif exc.context and exc.problem:
            hint = f"{exc.context}"
            if exc.context_mark is not None:
                hint += f" (line {exc.context_mark.line + 1}, column {exc.context_mark.column + 1})"
        self.report.fatal(span, "yaml-syntax", f"invalid YAML: {problem}", hint)


def _leading_lines(text: str) -> Iterator[str]:
    """The lines before the first content line: blank, comment and directive lines only."""
    start = 0
    while start < len(text):
        end = text.find("\n", start)
        end = len(text) if end < 0 else end
        line = text[start:end]
        stripped = line.strip()
        if stripped and not stripped.startswith("#") and not line.startswith("%"):
            return
        yield line
        start = end + 1


def _mark_span(mark: Any) -> Span:
    return Span(int(mark.line) + 1, int(mark.column) + 1)


def _event_span(event: Any) -> Span:
    start, end = event.start_mark, event.end_mark
    return Span(start.line + 1, start.column + 1, end.line + 1, end.column + 1)


def _scalar_kind(value: Scalar) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    return f"the number {value}"
