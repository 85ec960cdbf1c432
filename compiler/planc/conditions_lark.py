"""The reference parser of the condition language: Lark's LALR parser of grammar/condition.lark.

`planc.conditions` reads valid conditions with its own fast parser and hands every text that
parser does not accept to this one, which decides, and words syntax errors from what the
grammar would have accepted. Imported only then: Lark and the grammar take ~90 ms to load.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from lark import Lark, Token, Transformer_NonRecursive
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken
from lark.lexer import BasicLexer, UnlessCallback

from planc.condition_syntax import (
    KEYWORDS,
    ConditionError,
    TreeBuilder,
    clip,
    compare,
    flatten,
    list_literal,
    negate,
    parenthesised,
)
from planrun.core.conditions import And, Expr, Literal, Or


def parse(text: str, actions: TreeBuilder) -> Expr | ConditionError:
    """The AST of `text` built with `actions`, or its syntax error."""
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as exc:
        return _syntax_error(text, exc)
    return _Builder(actions).transform(tree)


@cache
def _parser() -> Lark:
    # By resource name rather than import: the grammar is package data of `plan_grammar`.
    grammar = files("plan_grammar").joinpath("condition.lark").read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", lexer="basic", maybe_placeholders=True)


# ---------------------------------------------------------------------------------------------
# Syntax errors in words

_LITERAL_TERMINALS = frozenset({"STRING", "INT", "FLOAT", "TRUE", "FALSE", "NULL"})
_WORDS = (
    ("LSQB", "a list"),
    ("COMPARE_OP", "a comparison operator"),
    ("IN", "`in`"),
    ("AND", "`and`"),
    ("OR", "`or`"),
    ("COMMA", "`,`"),
    ("RSQB", "`]`"),
    ("RPAR", "`)`"),
    ("$END", "end of condition"),
)
_CHAR_HINTS = {
    "&": "write `and`",
    "|": "write `or`",
    "!": "write `not` (or `!=` to compare)",
    "=": "use `==` to compare",
}


# ---------------------------------------------------------------------------------------------
# The fast parser's token table (planc.condition_tokens), generated from the grammar


def token_table() -> str:
    """The source of planc.condition_tokens: the terminals of Lark's basic lexer for the
    grammar, in the order it tries them, and the keywords it re-types from PATH."""
    lexer = _parser().parser.lexer
    assert isinstance(lexer, BasicLexer), "the grammar is parsed with lexer='basic'"
    scanner = lexer._build_scanner()
    keywords: dict[str, str] = {}
    for callback in lexer.callback.values():
        assert isinstance(callback, UnlessCallback), "no user callbacks"
        keywords.update((t.pattern.value, t.name) for t in callback.scanner.terminals)
    terminals = "".join(
        f"    ({t.name!r}, {t.pattern.to_regexp()!r}),\n" for t in scanner.terminals
    )
    return (
        '"""The terminals of grammar/condition.lark in the order Lark\'s basic lexer tries them'
        " (the first\nthat matches wins), and the keywords it re-types from PATH. Generated from"
        " the grammar by\n`python -m planc.conditions_lark` for planc.conditions_fast: do not"
        ' edit (a test checks it).\n"""\n\n'
        "# ruff: noqa: E501\n# fmt: off\n"
        f"TERMINALS: tuple[tuple[str, str], ...] = (\n{terminals})\n"
        f"IGNORED = frozenset({sorted(lexer.ignore_types)!r})\n"
        f"KEYWORDS: dict[str, str] = {keywords!r}\n"
        "# fmt: on\n"
    )


def main() -> None:
    target = Path(__file__).with_name("condition_tokens.py")
    target.write_text(token_table(), encoding="utf-8")
    print(f"wrote {target}")


def _syntax_error(text: str, exc: UnexpectedInput) -> ConditionError:
    if isinstance(exc, UnexpectedCharacters):
        return _bad_character(text, _known(exc.pos_in_stream))
    assert isinstance(exc, UnexpectedToken), "the LALR parser raises only these two"
    token = exc.token
    expected = _expected(text[: _at(token)] if token.type != "$END" else text)
    if token.type == "$END":
        offset = len(text.rstrip())
        return ConditionError(
            offset,
            1,
            "condition-syntax",
            f"unexpected end of condition, expected {expected}",
            "every `(` needs a matching `)`" if "`)`" in expected else None,
        )
    value = str(token)
    return ConditionError(
        _at(token),
        len(value),
        "condition-syntax",
        f"unexpected `{clip(value)}`, expected {expected}",
        _token_hint(token, expected),
    )


def _bad_character(text: str, pos: int) -> ConditionError:
    ch = text[pos]
    if ch in "'\"":
        return ConditionError(
            pos,
            1,
            "condition-syntax",
            "unterminated string",
            f"close it with {ch} on the same line",
        )
    expected = _expected(text[:pos])
    return ConditionError(
        pos,
        1,
        "condition-syntax",
        f"unexpected character `{ch}`, expected {expected}",
        _CHAR_HINTS.get(ch),
    )


def _expected(prefix: str) -> str:
    """What could come next after `prefix`, in words.

    Lark's own "expected" set is taken after LALR reductions driven by the bad token, which
    can drop valid continuations (after `a == b)` it forgets `and`), so re-parse the good prefix
    and ask the parser which terminals it would accept there.
    """
    interactive = _parser().parse_interactive(prefix)
    interactive.exhaust_lexer()
    accepts: set[str] = interactive.accepts()  # type: ignore[no-untyped-call]
    words: list[str] = []
    if "PATH" in accepts:
        words.append("a value")
    elif accepts & _LITERAL_TERMINALS:
        words.append("a literal")
    for name, word in _WORDS:
        if name in accepts:
            words.append(word)
        # After an operand `not` can only start `not in` (before one, it is in "a value").
        if name == "IN" and "NOT" in accepts and "PATH" not in accepts:
            words.append("`not in`")
    return _join_words(words)


def _join_words(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _token_hint(token: Token, expected: str) -> str | None:
    if token.type == "COMPARE_OP" and "comparison" not in expected:
        return "comparisons do not chain: join two comparisons with `and`"
    lowered = str(token).lower()
    if token.type == "PATH" and lowered in KEYWORDS:
        return f"keywords are lowercase: write `{lowered}`"
    return None


# ---------------------------------------------------------------------------------------------
# Parse tree → AST (iterative: Lark's tree can be as deep as the text is long)


class _Builder(Transformer_NonRecursive[Token, Expr]):
    def __init__(self, actions: TreeBuilder) -> None:
        super().__init__()
        self.actions = actions

    def or_(self, c: list[Any]) -> Expr:
        return flatten(Or, c[0], c[2])

    def and_(self, c: list[Any]) -> Expr:
        return flatten(And, c[0], c[2])

    def not_(self, c: list[Any]) -> Expr:
        return negate(_at(c[0]), c[1])

    def compare(self, c: list[Any]) -> Expr:
        left, op, right = c
        return compare(str(op), left, right)

    def in_(self, c: list[Any]) -> Expr:
        return compare("in", c[0], c[2])

    def not_in(self, c: list[Any]) -> Expr:
        return compare("not in", c[0], c[3])

    def paren(self, c: list[Any]) -> Expr:
        return parenthesised(c[1], _at(c[0]), _at(c[2]))

    def list_(self, c: list[Any]) -> Expr:
        return list_literal(_at(c[0]), _at(c[-1]), c[1:-1])

    def true(self, c: list[Token]) -> Expr:
        return _keyword(c[0], True)

    def false(self, c: list[Token]) -> Expr:
        return _keyword(c[0], False)

    def null(self, c: list[Token]) -> Expr:
        return _keyword(c[0], None)

    def int_(self, c: list[Token]) -> Expr:
        return self.actions.int_(str(c[0]), _at(c[0]))

    def float_(self, c: list[Token]) -> Expr:
        return self.actions.float_(str(c[0]), _at(c[0]))

    def string(self, c: list[Token]) -> Expr:
        return self.actions.string(str(c[0]), _at(c[0]))

    def reference(self, c: list[Token]) -> Expr:
        return self.actions.reference(str(c[0]), _at(c[0]))


def _keyword(token: Token, value: bool | None) -> Expr:
    return Literal(value, offset=_at(token), length=len(token))


def _known(position: int | None) -> int:
    """Lark types positions as optional; its basic lexer always sets them."""
    assert position is not None
    return position


def _at(token: Token) -> int:
    return _known(token.start_pos)


if __name__ == "__main__":
    main()
