"""The terminals of grammar/condition.lark in the order Lark's basic lexer tries them (the first
that matches wins), and the keywords it re-types from PATH. Generated from the grammar by
`python -m planc.conditions_lark` for planc.conditions_fast: do not edit (a test checks it).
"""

# ruff: noqa: E501
# fmt: off
TERMINALS: tuple[tuple[str, str], ...] = (
    ('FLOAT', '-?(?:[0-9]+\\.[0-9]*(?:[eE][+-]?[0-9]+)?|\\.[0-9]+(?:[eE][+-]?[0-9]+)?|[0-9]+[eE][+-]?[0-9]+)'),
    ('STRING', '(?:\'(?:[^\'\\\\\n]|\\\\.)*\'|"(?:[^"\\\\\n]|\\\\.)*")'),
    ('PATH', '[A-Za-z_][A-Za-z0-9_.\\-]*'),
    ('INT', '-?[0-9]+'),
    ('__IGNORE_0', '[ \t\r\n]+'),
    ('COMPARE_OP', '(?:==|!=|<=|>=|<|>)'),
    ('COMMA', ','),
    ('LPAR', '\\('),
    ('LSQB', '\\['),
    ('RPAR', '\\)'),
    ('RSQB', '\\]'),
)
IGNORED = frozenset(['__IGNORE_0'])
KEYWORDS: dict[str, str] = {'false': 'FALSE', 'null': 'NULL', 'true': 'TRUE', 'and': 'AND', 'not': 'NOT', 'in': 'IN', 'or': 'OR'}
# fmt: on
