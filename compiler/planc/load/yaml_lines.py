"""Block YAML read line by line: the fast path of planc.load for the YAML plans are written in.

Loading from parser events costs ~10 µs per plan line, most of it in libyaml building a Python
object for every event and in turning those into nodes: ~9 s for a 100k-step plan. Plans are
nearly always block mappings and sequences holding one key, list entry, or one-line flow list or
mapping of scalars per line, and literal block scalars (`command: |`); this module reads that
subset with a regex match or two per line into the very nodes the event path builds (values,
spans, text columns).

It accepts only what it fully understands. On anything else (nested flow collections, anchors,
aliases, tags, folded or multi-line plain scalars, a literal block's `+` or indentation
indicator or a line of spaces in it, escapes, tabs, CR, directives, several documents,
quoted keys, a duplicate key, a value the loader would report on ...) it raises `Unsupported`
and the event path loads the text as before, so every diagnostic still comes from there. Tests
compare the two paths on the repository's plans and on generated documents.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from typing import Any

from planc.diagnostics import Span
from planc.nodes import MapNode, Node, Scalar, ScalarNode, SeqNode


class Unsupported(Exception):
    """The text is outside the subset read here: the event path must load it."""


# A plain scalar's value, as the event path resolves it: (text, whether it is a key). It must
# raise Unsupported where the event path would report a problem.
Resolve = Callable[[str, bool], Scalar]

# Characters that the YAML reader refuses or counts as line breaks, tabs (never allowed in
# indentation), CR and BOM: any one of them sends the whole text to the event path. The pattern
# for non-ASCII text takes milliseconds to compile, so only a text that needs it compiles it.
_UNUSUAL_ASCII = re.compile("[^\n\x20-\x7e]")


@cache
def _unusual_character() -> re.Pattern[str]:
    return re.compile(
        "[^\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
    )


# A line holding a key: its indentation, perhaps a list entry's dash, the key (a plain word),
# then `:` and a space or the end of the line. Most lines of a plan are one.
_KEY_LINE = re.compile(r"( *)(?:- +)?([A-Za-z0-9_][A-Za-z0-9_.\-/]*):(?: +|$)")
# How a plain scalar may start: not with an indicator, except `-` before a word character.
_PLAIN_START = re.compile(r"[^\s\-?:,\[\]{}#&*!|>'\"%@`]|-[A-Za-z0-9_./\-]")
# An item of a flow collection, then spaces and `,` or a closing bracket: a key (a plain word,
# `:` and a space) in a mapping, and a double-quoted, single-quoted or plain scalar. A plain
# scalar here has no flow indicator, `:`, `#` or quote.
_FLOW_ITEM = re.compile(
    r" *(?:([A-Za-z0-9_][A-Za-z0-9_.\-/]*): +)?"
    r"(?:\"([^\"\\]*)\"|'([^']*(?:''[^']*)*)'"
    r"|((?:[^\s\-?:,\[\]{}#&*!|>'\"%@`]|-[A-Za-z0-9_./\-])[^,\[\]{}#:'\"]*?))"
    r" *([,\]}])"
)
# `[^']*(?:''[^']*)*` rather than `(?:[^']|'')*`: the same language, but the alternation costs
# the regex engine ~130 bytes of backtracking state per character (4 GB for a 31 MB string).
_SINGLE_QUOTED = re.compile(r"'([^']*(?:''[^']*)*)'")
_DOUBLE_QUOTED = re.compile(r'"([^"\\]*)"')  # an escape is left to the event path
# What may follow a quoted scalar or a flow list on its line: spaces, then perhaps a comment.
_LINE_END = re.compile(r"(?: +#.*| *)$")
# A literal block scalar's header: `|` (clip: one final line break) or `|-` (strip: none).
_LITERAL_HEADER = re.compile(r"\|(-?)(?: +#.*| *)$")
# Plans nest about five levels; deeper documents are left to the event path and its depth limit.
_MAX_DEPTH = 32
_MAX_KEY_LENGTH = 128  # libyaml refuses implicit keys over 1024 characters


def read(text: str, resolve: Resolve) -> MapNode:
    """The root mapping of `text`; raises Unsupported when the event path must load it."""
    if (_UNUSUAL_ASCII if text.isascii() else _unusual_character()).search(text):
        raise Unsupported
    lines = text.split("\n")
    reader = _Reader(resolve, lines)
    read_to = 0  # the lines up to this one were read with the key whose block scalar they hold
    for number, line in enumerate(lines, start=1):
        if number <= read_to:
            continue
        match = _KEY_LINE.match(line)
        if match is not None:
            read_to = reader.key_line(number, line, match)
            continue
        body = line.lstrip(" ")
        if body and body[0] != "#":  # not blank, not only a comment
            reader.entry_line(number, line, len(line) - len(body))
    return reader.finish()


class _Frame:
    """An open block collection."""

    __slots__ = ("col", "indent", "indentless", "items", "keys", "line", "mapping", "pending")

    def __init__(self, mapping: bool, indent: int, line: int, indentless: bool = False) -> None:
        self.mapping = mapping
        self.indent = indent  # the column (0-based) of its keys or dashes
        # A sequence at its parent key's own column (YAML's indentless sequence).
        self.indentless = indentless
        self.line = line
        self.col = indent + 1
        self.items: list[Any] = []  # (key, value) pairs or nodes
        self.keys: set[str] = set()
        self.pending: ScalarNode | None = None  # a key whose value starts on a later line


class _Reader:
    def __init__(self, resolve: Resolve, lines: list[str]) -> None:
        self.resolve = resolve
        self.lines = lines
        self.stack: list[_Frame] = []
        self.root: MapNode | None = None
        self.plain_keys: set[str] = set()  # keys repeat on every step: each is resolved once
        # One str object per distinct text: keys, ids and values repeat through a plan, and
        # each slice of a line is a new object (a 100k-step plan has ~1M repeats, ~50 MB).
        self.strings: dict[str, str] = {}

    def key_line(self, number: int, line: str, match: re.Match[str]) -> int:
        """A line holding a key (matched by _KEY_LINE), perhaps after a list entry's dash; the
        number of the last line its value takes."""
        indent, col = match.end(1), match.start(2)
        if col != indent:
            # `- key: value` starts a mapping whose keys are in the column of this first one.
            self._place(number, indent, entry=True)
            if len(self.stack) >= _MAX_DEPTH:
                raise Unsupported
            frame = _Frame(True, col, number)
            self.stack.append(frame)
        else:
            top = self.stack[-1] if self.stack else None
            if top is not None and top.indent == indent and top.mapping and top.pending is None:
                frame = top  # the next key of the mapping of the line before: the common case
            else:
                frame = self._place(number, indent, entry=False)
        key = self._key_node(match.group(2), number, col, frame.keys)
        start = match.end()
        if start == len(line) or line[start] == "#":
            frame.pending = key
        elif line[start] == "|":
            literal, last = self._literal(number, line, start, frame.indent)
            frame.items.append((key, literal))
            return last
        else:
            frame.items.append((key, self._value(number, line, start)))
        return number

    def entry_line(self, number: int, line: str, indent: int) -> None:
        """Any other line with content: it must be a list entry holding a value."""
        if not _is_entry(line, indent):
            raise Unsupported
        frame = self._place(number, indent, entry=True)
        start = _skip_spaces(line, indent + 1)
        if start == len(line) or line[start] == "#" or _is_entry(line, start):
            raise Unsupported  # an empty entry, or a list directly in a list
        frame.items.append(self._value(number, line, start))

    def finish(self) -> MapNode:
        while self.stack:
            self._close()
        if self.root is None:
            raise Unsupported
        return self.root

    # -- structure ---------------------------------------------------------------------------

    def _place(self, number: int, indent: int, entry: bool) -> _Frame:
        """The collection a line at `indent` belongs to, once the ones it ends are closed."""
        stack = self.stack
        if not stack:
            if self.root is not None or indent != 0 or entry:
                raise Unsupported  # the document is one mapping starting in the first column
            stack.append(_Frame(True, 0, number))
            return stack[0]
        while True:
            top = stack[-1]
            if top.pending is not None:
                if indent > top.indent or (indent == top.indent and entry):
                    if len(stack) >= _MAX_DEPTH:
                        raise Unsupported
                    frame = _Frame(not entry, indent, number, indentless=indent == top.indent)
                    stack.append(frame)
                    return frame
                self._add_null(top)
            if indent == top.indent and top.mapping != entry:
                return top
            if indent < top.indent or (indent == top.indent and top.indentless):
                self._close()  # a sequence at its key's column ends at the next key
                if not stack:
                    raise Unsupported
                continue
            raise Unsupported  # deeper than the items, or the wrong kind of item

    def _close(self) -> None:
        frame = self.stack.pop()
        if frame.pending is not None:
            self._add_null(frame)
        last = frame.items[-1]
        end: Span = (last[1] if frame.mapping else last).span
        span = Span(frame.line, frame.col, end.end_line, end.end_col)
        node: Node
        if frame.mapping:
            node = MapNode(tuple(frame.items), span)
        else:
            node = SeqNode(tuple(frame.items), span)
        if not self.stack:
            assert isinstance(node, MapNode)
            self.root = node
            return
        parent = self.stack[-1]
        if parent.mapping:
            parent.items.append((parent.pending, node))
            parent.pending = None
        else:
            parent.items.append(node)

    @staticmethod
    def _add_null(frame: _Frame) -> None:
        """A key with nothing after it: null, placed (as libyaml marks it) right after the key."""
        key = frame.pending
        assert key is not None
        null = ScalarNode(None, key.line, key.end_col, key.line, key.end_col + 1)
        frame.items.append((key, null))
        frame.pending = None

    # -- lines -------------------------------------------------------------------------------

    def _key_node(self, name: str, number: int, col: int, keys: set[str]) -> ScalarNode:
        """The key `name` written at `col`, added to the mapping's `keys`."""
        if name not in self.plain_keys:
            if len(name) > _MAX_KEY_LENGTH or self.resolve(name, True) != name:
                raise Unsupported  # too long for an implicit key, or not a string
            self.plain_keys.add(name)
        if name in keys:
            raise Unsupported  # a duplicate key: the event path reports it
        keys.add(name)
        name = self.strings.setdefault(name, name)
        return ScalarNode(name, number, col + 1, number, col + 1 + len(name), col + 1)

    def _value(self, number: int, line: str, start: int) -> Node:
        """The scalar or flow collection starting at `start`, which must end the line."""
        first = line[start]
        node: Node
        if first == "[" or first == "{":
            node, end = self._flow(number, line, start)
        elif first == "'" or first == '"':
            node, end = self._quoted(number, line, start)
        else:
            return self._plain(number, line, start)
        if _LINE_END.match(line, end) is None:
            raise Unsupported
        return node

    def _literal(self, number: int, line: str, start: int, parent: int) -> tuple[ScalarNode, int]:
        """The literal block scalar whose header is at `start` of line `number`, and the number
        of its last line. Its content starts at the first line with content, which must be
        indented deeper than `parent` (the column of its key); it goes on while lines are empty
        or indented at least as deep. libyaml ends its span where the next token starts: the
        start of the line that ends it, or the end of the text."""
        header = _LITERAL_HEADER.match(line, start)
        if header is None:
            raise Unsupported  # folded, `|+`, an indentation indicator, text after the `|`
        lines = self.lines
        indent = 0  # of the content, set by its first line
        last = 0  # the index of the last line with content
        index = number  # lines[number] is the line after the header
        while index < len(lines):
            text = lines[index]
            if text:
                body = text.lstrip(" ")
                if not body:
                    raise Unsupported  # a line of spaces: content or not, by its length
                depth = len(text) - len(body)
                if depth < (indent or parent + 1):
                    break
                indent = indent or depth
                last = index
            index += 1
        if not indent:
            raise Unsupported  # an empty block scalar
        value = "\n".join([text[indent:] for text in lines[number : last + 1]])
        if not header.group(1) and last + 1 < len(lines):
            value += "\n"  # clip: the line break after the last line with content
        if index < len(lines):
            end_line, end_col = index + 1, 1
        else:
            end_line, end_col = len(lines), len(lines[-1]) + 1
        return ScalarNode(value, number, start + 1, end_line, end_col), index

    def _plain(self, number: int, line: str, start: int) -> ScalarNode:
        if _PLAIN_START.match(line, start) is None:
            raise Unsupported
        comment = line.find(" #", start)
        raw = line[start : len(line) if comment < 0 else comment].rstrip(" ")
        if ": " in raw or raw.endswith(":"):
            raise Unsupported  # a second key on the line: a YAML error
        return self._plain_node(number, raw, start)

    def _plain_node(self, number: int, raw: str, start: int) -> ScalarNode:
        value = self.resolve(raw, False)
        text_col = None
        if isinstance(value, str):
            value = self.strings.setdefault(value, value)
            text_col = start + 1
        return ScalarNode(value, number, start + 1, number, start + 1 + len(raw), text_col)

    def _quoted(self, number: int, line: str, start: int) -> tuple[ScalarNode, int]:
        """A single- or double-quoted scalar, and where it ends."""
        single = line[start] == "'"
        match = (_SINGLE_QUOTED if single else _DOUBLE_QUOTED).match(line, start)
        if match is None:
            raise Unsupported  # it goes on to the next line, or has an escape
        inner = match.group(1)
        value = inner.replace("''", "'") if single else inner
        value = self.strings.setdefault(value, value)
        end = match.end()
        # The text column holds when every character of the value is written as is.
        text_col = start + 2 if len(value) == len(inner) else None
        return ScalarNode(value, number, start + 1, number, end + 1, text_col), end

    def _flow(self, number: int, line: str, start: int) -> tuple[Node, int]:
        """A flow list or mapping of scalars on one line, and where it ends."""
        if len(self.stack) >= _MAX_DEPTH:
            raise Unsupported
        mapping = line[start] == "{"
        close = "}" if mapping else "]"
        items: list[Any] = []  # (key, value) pairs or scalars
        keys: set[str] = set()
        end = _skip_spaces(line, start + 1)  # where the closing bracket is
        if end == len(line) or line[end] != close:  # not empty
            while True:
                match = _FLOW_ITEM.match(line, end)
                if match is None or (match.start(1) >= 0) != mapping:
                    raise Unsupported  # (a trailing comma, or a line break, is no item either)
                value = self._flow_scalar(number, match)
                if mapping:
                    key = self._key_node(match.group(1), number, match.start(1), keys)
                    items.append((key, value))
                else:
                    items.append(value)
                end = match.end()
                if match.group(5) != ",":
                    if match.group(5) != close:
                        raise Unsupported
                    end -= 1
                    break
        # libyaml's end mark is the column after the bracket; the event path makes a point span
        # of it.
        span = Span(number, start + 1, number, end + 3)
        node = MapNode(tuple(items), span) if mapping else SeqNode(tuple(items), span)
        return node, end + 1

    def _flow_scalar(self, number: int, match: re.Match[str]) -> ScalarNode:
        """The scalar of a _FLOW_ITEM match."""
        if match.start(4) >= 0:
            return self._plain_node(number, match.group(4), match.start(4))
        single = match.start(3) >= 0
        group = 3 if single else 2
        inner = match.group(group)
        value = inner.replace("''", "'") if single else inner
        value = self.strings.setdefault(value, value)
        begin, end = match.start(group) - 1, match.end(group) + 1  # with the quotes
        text_col = begin + 2 if len(value) == len(inner) else None
        return ScalarNode(value, number, begin + 1, number, end + 1, text_col)


def _is_entry(line: str, at: int) -> bool:
    """Whether a list entry (`-` then a space or the end of the line) starts at `at`."""
    return line.startswith("-", at) and (len(line) == at + 1 or line[at + 1] == " ")


def _skip_spaces(line: str, at: int) -> int:
    while at < len(line) and line[at] == " ":
        at += 1
    return at
