"""The fast parser of the condition language: recursive descent over the same grammar.

Lark's LALR parser (planc.conditions_lark) reads a condition 4-6 times slower than this one,
with or without a parse tree (`transformer=`), and takes ~40 ms to build: ~1 s of a 100k-step
plan's compile. Conditions are short, so this recursive-descent parser of the same grammar reads
a valid one directly into the AST, with the same actions, and the same tokens: its token table
(planc.condition_tokens) is generated from the grammar. On anything it does not accept it gives
up, and Lark parses the text again and words the syntax error. So it must never accept a text
that Lark refuses, nor build a different AST (tests compare the two)."""

from __future__ import annotations

import re

from planc import condition_tokens
from planc.condition_syntax import (
    TreeBuilder,
    compare,
    flatten,
    list_literal,
    negate,
    parenthesised,
)
from planrun.core.conditions import And, Expr, Literal, Or, Value

# Lark's basic lexer tries one union of the terminals' patterns, in the order of
# planc.condition_tokens (generated from the grammar), and takes the first alternative that
# matches (not the longest). Keywords are lexed as PATH and re-typed when the whole word is
# one, which gives them word boundaries.
_TOKEN = re.compile(
    "|".join(f"(?P<{name}>{pattern})" for name, pattern in condition_tokens.TERMINALS)
    + r"|(?P<UNKNOWN>[\s\S])"  # a character no terminal matches: Lark words the error
)
# Parentheses are the parser's only recursion (five frames a level); deeper nesting is rare
# enough to leave to Lark, whose parser is iterative.
_FAST_MAX_PARENS = 32

_Token = tuple[str, str, int]  # terminal name, text, offset


class _GiveUp(Exception):
    """The fast parser does not accept the text: Lark decides."""


class _Parser:
    def __init__(self, tokens: list[_Token], actions: TreeBuilder) -> None:
        self.tokens = tokens
        self.next = 0
        self.actions = actions

    @classmethod
    def parse(cls, text: str, actions: TreeBuilder) -> Expr | None:
        """The AST of `text`, or None when Lark must parse it."""
        if text.count("(") > _FAST_MAX_PARENS:
            return None
        tokens: list[_Token] = []
        for match in _TOKEN.finditer(text):
            kind = match.lastgroup
            if kind in condition_tokens.IGNORED:
                continue
            if kind == "UNKNOWN" or kind is None:
                return None
            written = match.group()
            if kind == "PATH":
                kind = condition_tokens.KEYWORDS.get(written, kind)
            tokens.append((kind, written, match.start()))
        tokens.append(("$END", "", len(text)))
        parser = cls(tokens, actions)
        try:
            ast = parser._or()
            parser._expect("$END")
        except _GiveUp:
            return None
        return ast

    def _peek(self) -> str:
        return self.tokens[self.next][0]

    def _take(self) -> _Token:
        token = self.tokens[self.next]
        self.next += 1
        return token

    def _expect(self, kind: str) -> int:
        found, _, offset = self._take()
        if found != kind:
            raise _GiveUp
        return offset

    # One method per grammar rule; `a or b or c` pairs left to right, as the LALR parser does.

    def _or(self) -> Expr:
        node = self._and()
        while self._peek() == "OR":
            self.next += 1
            node = flatten(Or, node, self._and())
        return node

    def _and(self) -> Expr:
        node = self._not()
        while self._peek() == "AND":
            self.next += 1
            node = flatten(And, node, self._not())
        return node

    def _not(self) -> Expr:
        starts: list[int] = []  # `not not x` without recursion
        while self._peek() == "NOT":
            starts.append(self._take()[2])
        node = self._comparison()
        for start in reversed(starts):
            node = negate(start, node)
        return node

    def _comparison(self) -> Expr:
        left = self._atom()
        kind, written, _ = self.tokens[self.next]
        if kind == "COMPARE_OP":
            self.next += 1
            return compare(written, left, self._atom())
        if kind == "IN":
            self.next += 1
            return compare("in", left, self._in_rhs())
        if kind == "NOT":
            self.next += 1
            self._expect("IN")
            return compare("not in", left, self._in_rhs())
        return left

    def _in_rhs(self) -> Expr:
        return self._list() if self._peek() == "LSQB" else self._atom()

    def _atom(self) -> Expr:
        kind, written, offset = self._take()
        if kind == "PATH":
            return self.actions.reference(written, offset)
        if kind == "LPAR":
            inner = self._or()
            return parenthesised(inner, offset, self._expect("RPAR"))
        return self._literal(kind, written, offset)

    def _list(self) -> Expr:
        start = self._expect("LSQB")
        items: list[Expr] = []
        if self._peek() != "RSQB":
            items.append(self._literal(*self._take()))
            while self._peek() == "COMMA":
                self.next += 1
                if self._peek() == "RSQB":  # a trailing comma
                    break
                items.append(self._literal(*self._take()))
        return list_literal(start, self._expect("RSQB"), items)

    def _literal(self, kind: str, written: str, offset: int) -> Expr:
        if kind == "STRING":
            return self.actions.string(written, offset)
        if kind == "INT":
            return self.actions.int_(written, offset)
        if kind == "FLOAT":
            return self.actions.float_(written, offset)
        if kind in _KEYWORD_VALUES:
            return Literal(_KEYWORD_VALUES[kind], offset=offset, length=len(written))
        raise _GiveUp


_KEYWORD_VALUES: dict[str, Value] = {"TRUE": True, "FALSE": False, "NULL": None}


def parse(text: str, builder: TreeBuilder) -> Expr | None:
    """The AST of `text` built with `builder`, or None when Lark must parse it."""
    return _Parser.parse(text, builder)
