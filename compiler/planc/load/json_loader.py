"""Strict JSON plans: one regex token loop that builds positioned nodes (no recursion)."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from planc.diagnostics import Span
from planc.load.base import MAX_INT_DIGITS, Loader, point, shorten
from planc.nodes import MapNode, Node, Scalar, ScalarNode, SeqNode

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


class JsonLoader(Loader):
    """Strict RFC 8259 JSON with a position for every value; iterative, so depth cannot recurse.

    Raw newlines can only occur in whitespace, so line tracking only looks at the whitespace
    in front of each token.
    """

    def __init__(self, path: str, text: str) -> None:
        super().__init__(path, text)
        self.pos = 0

    def position(self) -> Span:
        return point(self.text, min(self.pos, len(self.text)))

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
            self.report_number("number-too-large", span, written)
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
            raise _JsonSyntaxError(start, f"invalid number `{shorten(written)}`")
        if group == _STRAY or state not in _VALUE_STATES:
            raise self._unexpected(start, state)
        if group == _ESCAPED:
            return self._string(m, group, line, col)
        span = Span(line, col, line, col + len(written))
        if group == _LITERAL:
            return ScalarNode.at(_LITERALS[written], span)
        value = float(written) if group == _FLOAT else math.inf
        if math.isinf(value):
            self.report_number("non-finite-number", span, written)
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
