"""Stage 1: plan text (YAML 1.2 or strict JSON) → positioned nodes, refusing anything ambiguous.

Every problem becomes a positioned Diagnostic raised in a DiagnosticError; no other exception
escapes. YAML is read as parser events (never composed or constructed), so anchors, aliases and
tags are refused before they can expand or execute, and nesting is bounded before anything deep
is built. The block YAML that plans are usually written in is read line by line first
(planc.yaml_lines), into the same nodes, and left to the events on anything unusual.
"""

from __future__ import annotations

import gc
import json
import math
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

from planc import yaml_lines
from planc.diagnostics import Diagnostic, DiagnosticError, Span, error
from planc.nodes import Document, MapNode, Node, Scalar, ScalarNode, SeqNode
from planrun.reads import MAX_INPUT_BYTES, SURROGATE, InputTooLarge, read_bounded

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

_BOM = "\ufeff"
_NOWHERE = Span(1, 1)


def load_file(path: str) -> Document:
    """Read and load the plan at `path`."""
    try:
        data = read_bounded(path)
    except InputTooLarge as exc:
        raise DiagnosticError([too_large(path, exc.size)]) from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise DiagnosticError(
            [error(path, Span(1, 1), "io-error", f"cannot read the plan file: {reason}")]
        ) from None
    return load_document(path, data)


def load_document(path: str, data: bytes) -> Document:
    """Parse `data` (the bytes of the file at `path`) into positioned nodes."""
    if len(data) > MAX_PLAN_BYTES:
        raise DiagnosticError([too_large(path, len(data))])
    _check_items(path, data)
    text = _decode(path, data)
    if not text.strip():
        raise DiagnosticError([error(path, Span(1, 1), "empty-plan", "the plan file is empty")])
    loader: _Loader = _JsonLoader(path, text) if _is_json(path, text) else _YamlLoader(path, text)
    try:
        with gc_paused():
            try:
                root = loader.load()
            except _FastPathFailed:
                loader = _YamlLoader(path, text, pure=True)
                root = loader.load()
    except (RecursionError, ValueError, UnicodeError, AssertionError) as exc:
        # Defensive: the loaders are designed never to raise these, but a parser bug must still
        # come out as a diagnostic rather than a traceback.
        loader.report.add(loader.position(), "load-error", f"cannot load the plan: {exc!r}")
        raise DiagnosticError(loader.report.diagnostics) from None
    loader.report.raise_if_any()
    if not isinstance(root, MapNode):
        raise DiagnosticError(
            [
                error(
                    path,
                    root.span,
                    "not-a-mapping",
                    f"the plan must be a mapping of keys to values, got {_kind(root)}",
                    hint="start the file with `plan_id: ...` and `steps:`",
                )
            ]
        )
    steps = root.get("steps")
    if isinstance(steps, SeqNode) and len(steps.items) > MAX_STEPS:
        message = f"the plan has {len(steps.items)} steps; the limit is {MAX_STEPS}"
        hint = "split it into several plans"
        raise DiagnosticError([error(path, steps.span, "too-many-steps", message, hint)])
    return Document(path, text, root)


def _check_items(path: str, data: bytes) -> None:
    """Refuse, before parsing, a file with more possible nodes than MAX_ITEMS (a cheap upper
    bound: a comma or bracket inside a string counts too)."""
    items = sum(data.count(char) for char in (b"\n", b",", b"[", b"{"))
    if items > MAX_ITEMS:
        message = (
            f"the plan has {items} lines, commas and opening brackets; the limit is {MAX_ITEMS}"
        )
        raise DiagnosticError([error(path, Span(1, 1), "too-many-items", message)])


@contextmanager
def gc_paused() -> Iterator[None]:
    """Suspend the cyclic garbage collector for a block that builds millions of objects.

    Nodes and plain values are acyclic, and for a large plan the collector's repeated passes
    over them would roughly double the time of loading or validating it.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def too_large(path: str, size: int | None) -> Diagnostic:
    limit = f"{MAX_PLAN_BYTES} bytes (32 MiB)"
    message = (
        f"the plan file is larger than the limit of {limit}"  # a device or a pipe
        if size is None
        else f"the plan file is {size} bytes; the limit is {limit}"
    )
    return error(path, Span(1, 1), "file-too-large", message)


def _decode(path: str, data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        col = len(data[line_start : exc.start].decode("utf-8")) + 1
        raise DiagnosticError(
            [
                error(
                    path,
                    Span(line, col),
                    "invalid-utf8",
                    f"the file is not valid UTF-8: byte 0x{data[exc.start]:02X} cannot appear here",
                    hint="save the plan as UTF-8",
                )
            ]
        ) from None
    return text[1:] if text.startswith(_BOM) else text


def _is_json(path: str, text: str) -> bool:
    extension = os.path.splitext(path)[1].lower()
    if extension == ".json":
        return True
    if extension in (".yaml", ".yml"):
        return False
    return text.lstrip().startswith("{")


def _kind(node: Node) -> str:
    if isinstance(node, MapNode):
        return "a mapping"
    if isinstance(node, SeqNode):
        return "a list"
    if node.value is None:
        return "null"
    return f"the scalar {node.value!r}"


@dataclass
class _Report:
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


class _Refusing(_Report):
    """The report of the YAML fast path: a problem sends the text to the event path instead."""

    def add(self, span: Span, code: str, message: str, hint: str | None = None) -> None:
        raise yaml_lines.Unsupported


class _Loader(ABC):
    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.text = text
        self.report = _Report(path)

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

    def report_non_finite(self, span: Span, written: str) -> None:
        self.report.add(
            span,
            "non-finite-number",
            f"`{_shorten(written)}` is not a finite number",
            hint="plans accept only finite numbers",
        )

    def report_too_large(self, span: Span, written: str) -> None:
        self.report.add(
            span,
            "number-too-large",
            f"the integer `{_shorten(written)}` has more than {MAX_INT_DIGITS} digits",
        )

    def check_depth(self, depth: int, span: Span) -> None:
        if depth > MAX_DEPTH:
            self.report.fatal(
                span, "too-deep", f"the plan nests deeper than {MAX_DEPTH} levels here"
            )


# --------------------------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------------------------

# One regex match per token, with the whitespace and any comma in front of it, so that a
# pretty-printed plan costs one loop iteration per key or value. Keys carry their colon.
_JSON_TOKEN = re.compile(
    r"""[ \t\n\r]*(,)?[ \t\n\r]*(?:
      ("[^"\\\x00-\x1f]*")[ \t]*:
    | ("[^"\\\x00-\x1f]*")
    | (-?(?:0|[1-9][0-9]*))(?![.eE0-9])
    | ([{\[])
    | ([}\]])
    | (true|false|null)
    | (-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)(?![.eE0-9])
    | ("(?:[^"\\\x00-\x1f]|\\.)*")
    | (:)
    | (NaN|-?Infinity)
    | (-?[0-9][0-9a-zA-Z.+-]*)
    | (//|/\*)
    | ([^ \t\n\r])
    )""",
    re.VERBOSE | re.DOTALL,
)
(
    _KEY_COLON,
    _STRING,
    _INT,
    _OPEN,
    _CLOSE,
    _LITERAL,
    _FLOAT,
    _ESCAPED,
    _COLON,
    _NON_FINITE,
    _BAD_NUMBER,
    _COMMENT,
    _STRAY,
) = range(2, 15)
_LITERALS: dict[str, Scalar] = {"true": True, "false": False, "null": None}
# Strings with escapes go to the C decoder.
_STRING_DECODER = json.JSONDecoder()
_DECODER_MESSAGES = {
    "Unterminated string starting at": "unterminated string",
    "Invalid control character at": "control character inside a string (escape it, e.g. \\n)",
    "Invalid \\escape": "invalid escape sequence in a string",
    "Invalid \\uXXXX escape": "invalid \\u escape in a string",
}

# Parser states: what the next token may be. _ITEM and _KEY follow a comma, which is how a
# closing bracket there is recognised as a trailing comma.
_VALUE, _ITEM, _VALUE_OR_CLOSE, _KEY, _KEY_OR_CLOSE, _AFTER_KEY, _COMMA_OR_CLOSE, _DONE = range(8)
_EXPECTED = {
    _VALUE: "a value",
    _ITEM: "a value",
    _VALUE_OR_CLOSE: "a value or `]`",
    _KEY: "a key in double quotes",
    _KEY_OR_CLOSE: "a key in double quotes or `}`",
    _AFTER_KEY: "`:`",
    _COMMA_OR_CLOSE: "`,` or a closing bracket",
    _DONE: "the end of the file",
}
_VALUE_STATES = frozenset({_VALUE, _ITEM, _VALUE_OR_CLOSE})
_KEY_STATES = frozenset({_KEY, _KEY_OR_CLOSE})
_CLOSE_STATES = frozenset({_VALUE_OR_CLOSE, _KEY_OR_CLOSE, _COMMA_OR_CLOSE})

# An open container: its items, whether it is an object, the parent's pending key, the keys seen
# so far, and where it opened.
_Frame = tuple[list[Any], bool, ScalarNode | None, dict[str, ScalarNode], int, int]


class _JsonSyntaxError(Exception):
    def __init__(self, pos: int, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.pos = pos
        self.message = message
        self.hint = hint


class _JsonLoader(_Loader):
    """Strict RFC 8259 JSON with a position for every value; iterative, so depth cannot recurse.

    Raw newlines can only occur in whitespace, so line tracking only looks at the whitespace
    in front of each token.
    """

    def __init__(self, path: str, text: str) -> None:
        super().__init__(path, text)
        self.pos = 0

    def position(self) -> Span:
        return _point(self.text, min(self.pos, len(self.text)))

    def load(self) -> Node:
        try:
            return self._scan()
        except _JsonSyntaxError as exc:
            self.pos = exc.pos
            self.report.fatal(self.position(), "json-syntax", exc.message, exc.hint)

    def _scan(self) -> Node:
        # The hot loop of loading: a 100k-step plan is millions of tokens, so the common tokens
        # are handled inline on local variables and the rare ones in methods.
        text = self.text
        line, line_start = 1, 0
        state = _VALUE
        stack: list[_Frame] = []
        items: list[Any] = []
        is_object = False
        key: ScalarNode | None = None
        seen: dict[str, ScalarNode] = {}
        open_line = open_col = 0
        root: Node | None = None
        for m in _JSON_TOKEN.finditer(text):
            group = m.lastindex or _STRAY
            start = self.pos = m.start(group)
            ws = m.start()
            if start != ws:
                newlines = text.count("\n", ws, start)
                if newlines:
                    line += newlines
                    line_start = text.rfind("\n", ws, start) + 1
            col = start - line_start + 1
            if m.start(1) >= 0:
                if state != _COMMA_OR_CLOSE:
                    raise self._unexpected(m.start(1), state)
                state = _KEY if is_object else _ITEM
            node: Node
            if group == _KEY_COLON:
                if state not in _KEY_STATES:
                    raise self._unexpected(start, state)
                written = m.group(_KEY_COLON)
                name = written[1:-1]
                key = ScalarNode(name, line, col, line, col + len(written), col + 1)
                if name in seen:
                    self.check_key(key, seen)
                else:
                    seen[name] = key
                state = _VALUE
                continue
            if state in _KEY_STATES and group in (_STRING, _ESCAPED):
                # A key whose colon is not on the same line.
                key = self._string(m, group, line, col)
                self.check_key(key, seen)
                state = _AFTER_KEY
                continue
            if group == _STRING:
                written = m.group(_STRING)
                node = ScalarNode(written[1:-1], line, col, line, col + len(written), col + 1)
            elif group == _INT:
                node = self._int(m.group(_INT), line, col)
            elif group == _OPEN:
                if state not in _VALUE_STATES:
                    raise self._unexpected(start, state)
                self.check_depth(len(stack) + 1, Span(line, col))
                stack.append((items, is_object, key, seen, open_line, open_col))
                items, is_object, key, seen = [], m.group(_OPEN) == "{", None, {}
                open_line, open_col = line, col
                state = _KEY_OR_CLOSE if is_object else _VALUE_OR_CLOSE
                continue
            elif group == _CLOSE:
                if state in (_ITEM, _KEY):
                    raise _JsonSyntaxError(m.start(1), "trailing comma before a closing bracket")
                if state not in _CLOSE_STATES or is_object != (m.group(_CLOSE) == "}"):
                    raise self._unexpected(start, state)
                span = Span(open_line, open_col, line, col + 1)
                node = MapNode(tuple(items), span) if is_object else SeqNode(tuple(items), span)
                items, is_object, key, seen, open_line, open_col = stack.pop()
                state = _VALUE
            elif group == _COLON:
                if state != _AFTER_KEY:
                    raise self._unexpected(start, state)
                state = _VALUE
                continue
            else:
                node = self._rare_token(m, group, line, col, state)
            if state not in _VALUE_STATES:
                raise self._unexpected(start, state)
            if stack:
                items.append((key, node) if is_object else node)
                state = _COMMA_OR_CLOSE
            else:
                root = node
                state = _DONE
        if state != _DONE or root is None:
            expected = _EXPECTED[state]
            raise _JsonSyntaxError(len(text), f"unexpected end of file, expected {expected}")
        return root

    def _string(self, m: re.Match[str], group: int, line: int, col: int) -> ScalarNode:
        if group != _ESCAPED:
            written = m.group(group)
            return ScalarNode(written[1:-1], line, col, line, col + len(written), col + 1)
        written = m.group(_ESCAPED)
        try:
            value = _STRING_DECODER.decode(written)
        except json.JSONDecodeError as exc:
            raise self._decoder_error(exc, m.start(_ESCAPED)) from None
        span = Span(line, col, line, col + len(written))
        self.check_string(value, span)
        # Escapes always make the source longer than the value, so equal lengths mean none.
        return ScalarNode.at(value, span, col + 1 if len(written) == len(value) + 2 else None)

    def _int(self, written: str, line: int, col: int) -> ScalarNode:
        span = Span(line, col, line, col + len(written))
        if len(written) > MAX_INT_DIGITS and len(written.lstrip("-")) > MAX_INT_DIGITS:
            self.report_too_large(span, written)
            return ScalarNode.at(None, span)
        return ScalarNode.at(int(written), span)

    def _rare_token(
        self, m: re.Match[str], group: int, line: int, col: int, state: int
    ) -> ScalarNode:
        start = m.start(group)
        written = m.group(group)
        if group == _COMMENT:
            raise _JsonSyntaxError(start, "comments are not allowed in JSON")
        if group == _BAD_NUMBER:
            raise _JsonSyntaxError(start, f"invalid number `{_shorten(written)}`")
        if group == _STRAY or state not in _VALUE_STATES:
            raise self._unexpected(start, state)
        if group == _ESCAPED:
            return self._string(m, group, line, col)
        span = Span(line, col, line, col + len(written))
        if group == _LITERAL:
            return ScalarNode.at(_LITERALS[written], span)
        value = float(written) if group == _FLOAT else math.inf
        if math.isinf(value):
            self.report_non_finite(span, written)
            return ScalarNode.at(None, span)
        return ScalarNode.at(value, span)

    def _decoder_error(self, exc: json.JSONDecodeError, offset: int) -> _JsonSyntaxError:
        pos = offset + exc.pos
        if pos < len(self.text) and self.text[pos] in "\r\n":
            return _JsonSyntaxError(
                pos,
                "unterminated string: a string must end on the line where it starts",
                "write \\n for a line break inside a string",
            )
        return _JsonSyntaxError(pos, _DECODER_MESSAGES.get(exc.msg, exc.msg))

    def _unexpected(self, pos: int, state: int) -> _JsonSyntaxError:
        char = self.text[pos]
        if char == '"':
            # An unmatched quote: the string is unterminated or holds a raw control character.
            try:
                _STRING_DECODER.raw_decode(self.text, pos)
            except json.JSONDecodeError as exc:
                return self._decoder_error(exc, 0)
        hint = None
        if char == "'":
            hint = "JSON strings and keys use double quotes"
        elif char.isalpha() or char == "_":
            hint = "strings and keys must be in double quotes"
        found = f"`{char}`" if char.isprintable() else f"character U+{ord(char):04X}"
        expected = _EXPECTED[state]
        return _JsonSyntaxError(pos, f"unexpected {found}, expected {expected}", hint)


# --------------------------------------------------------------------------------------------
# YAML
# --------------------------------------------------------------------------------------------

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


@dataclass
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
    from ruamel.yaml.error import MarkedYAMLError, YAMLError
    from ruamel.yaml.events import (
        AliasEvent,
        CollectionStartEvent,
        DocumentStartEvent,
        MappingEndEvent,
        MappingStartEvent,
        ScalarEvent,
        SequenceEndEvent,
    )
    from ruamel.yaml.reader import ReaderError


def _import_ruamel() -> None:
    """Bind ruamel's names in this module. Deferred: JSON plans and the block YAML that
    planc.yaml_lines reads never need ruamel, whose import is most of `planc check`'s start-up
    on a small plan (issue 17)."""
    global YAML, MarkedYAMLError, YAMLError, ReaderError
    global AliasEvent, CollectionStartEvent, DocumentStartEvent, MappingEndEvent
    global MappingStartEvent, ScalarEvent, SequenceEndEvent
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError
    from ruamel.yaml.events import (
        AliasEvent,
        CollectionStartEvent,
        DocumentStartEvent,
        MappingEndEvent,
        MappingStartEvent,
        ScalarEvent,
        SequenceEndEvent,
    )
    from ruamel.yaml.reader import ReaderError


class _FastPathFailed(Exception):
    """libyaml refused the text: the pure parser must give the verdict (see _events)."""


def _events(text: str, pure: bool) -> Iterator[Any]:
    """The parser events of `text`, as ruamel's pure-Python YAML 1.2 parser produces them.

    libyaml (ruamel.yaml.clib), where installed, parses ten times faster with the same event
    classes and marks, but it scans some plain scalars by YAML 1.1 rules (`a: [http://x]` is an
    error there) and words its errors differently. So it only serves as a fast path: when it
    raises, `_FastPathFailed` makes the caller start again with the pure parser, whose verdict
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
    except YAMLError as exc:
        raise _FastPathFailed from exc


class _YamlLoader(_Loader):
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
        except ReaderError as exc:
            self._reader_error(exc)
        except MarkedYAMLError as exc:
            self._syntax_error(exc)
        except YAMLError as exc:
            self.report.fatal(self.position(), "yaml-syntax", f"invalid YAML: {exc}")
        if self.root is None:
            self.report.fatal(Span(1, 1), "empty-plan", "the plan file has no content")
        return self.root

    def _read_lines(self) -> Node | None:
        """The fast path (planc.yaml_lines), or None when the events must be read.

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
        if isinstance(event, ScalarEvent):
            self._scalar(event)
        elif isinstance(event, CollectionStartEvent):
            self._open(event)
        elif isinstance(event, (MappingEndEvent, SequenceEndEvent)):
            self._close(event)
        elif isinstance(event, AliasEvent):
            self._alias(event)
        elif isinstance(event, DocumentStartEvent):
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

    def _scalar(self, event: ScalarEvent) -> None:
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
                self.report_too_large(span, raw)
                return None
            return int(match.group(kind), base)
        value = float("nan") if kind == "special" else float(raw)
        if kind == "special" or math.isinf(value):
            self.report_non_finite(span, raw)
            return None
        return value

    def _text_col(self, event: ScalarEvent, raw: str) -> int | None:
        start, end = event.start_mark, event.end_mark
        if start.line != end.line or (event.style or None) not in (None, "'", '"'):
            return None
        quote = 1 if event.style else 0
        if self.text[start.index + quote : end.index - quote] != raw:
            return None
        return int(start.column) + 1 + quote

    def _open(self, event: CollectionStartEvent) -> None:
        self._check_properties(event)
        span = _mark_span(event.start_mark)
        self.check_depth(len(self.stack) + 1, span)
        is_mapping = isinstance(event, MappingStartEvent)
        self.stack.append(_YamlFrame(span.line, span.col, is_mapping, bool(event.flow_style)))

    def _close(self, event: MappingEndEvent | SequenceEndEvent) -> None:
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

    def _alias(self, event: AliasEvent) -> None:
        span = _event_span(event)
        self.report.add(
            span,
            "yaml-alias",
            f"aliases (`*{event.anchor}`) are not allowed in plans",
            hint="write the value out in full where it is needed",
        )
        self._attach(ScalarNode.at(None, span))

    def _check_properties(self, event: ScalarEvent | CollectionStartEvent) -> None:
        if event.anchor is None and event.tag is None:
            return
        pos = event.start_mark.index
        for _ in range(2):  # at most an anchor and a tag, in either order
            match = _PROPERTY.match(self.text, pos)
            if match is None:
                break
            self._report_property(match.group(0), _point(self.text, match.start()))
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
                f"YAML tags (`{_shorten(written)}`) are not allowed in plans",
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
        what = _kind(node) if not isinstance(node, ScalarNode) else _scalar_kind(node.value)
        self.report.add(
            node.span,
            "non-string-key",
            f"keys must be strings; this key is {what}",
            hint="quote the key, e.g. '1': or 'true':",
        )
        return ScalarNode.at(str(node.value) if isinstance(node, ScalarNode) else "", node.span)

    def _reader_error(self, exc: ReaderError) -> NoReturn:
        span = _point(self.text, min(int(exc.position), len(self.text)))
        character = exc.character
        code = ord(character) if isinstance(character, str) else int(character)
        self.report.fatal(
            span, "yaml-syntax", f"the character U+{code:04X} is not allowed in a YAML file"
        )

    def _syntax_error(self, exc: MarkedYAMLError) -> NoReturn:
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


def _point(text: str, pos: int) -> Span:
    line_start = text.rfind("\n", 0, pos) + 1
    return Span(text.count("\n", 0, pos) + 1, pos - line_start + 1)


def _shorten(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
