"""planc.load.yaml_lines, the line-by-line fast path of the YAML loader, against the event path.

Whatever the fast path accepts must load, through the parser events, into the very same nodes
(values and their types, spans, text columns, order) without any diagnostic; everything else
it must leave to the event path.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planc.diagnostics import DiagnosticError
from planc.load import yaml_events
from planc.nodes import MapNode, Node, SeqNode

REPO = Path(__file__).resolve().parents[2]


def shape(node: Node) -> object:
    """Everything a node says, with each value's type (1, 1.0 and True are all equal)."""
    if isinstance(node, MapNode):
        entries = tuple((shape(key), shape(value)) for key, value in node.entries)
        return ("map", node.span, entries)
    if isinstance(node, SeqNode):
        return ("seq", node.span, tuple(shape(item) for item in node.items))
    return (type(node.value).__name__, node.value, node.span, node.text_col)


def by_lines(text: str) -> object | None:
    """What the fast path makes of `text`, or None when it leaves it to the events."""
    root = yaml_events.YamlLoader("p.yaml", text)._read_lines()
    return None if root is None else shape(root)


def by_events(text: str) -> object:
    """What the event path makes of `text` (libyaml, then the pure parser if libyaml fails)."""
    loader = yaml_events.YamlLoader("p.yaml", text)
    loader._read_lines = lambda: None  # type: ignore[method-assign]
    try:
        return shape(loader.load())
    except yaml_events.FastPathFailed:
        return shape(yaml_events.YamlLoader("p.yaml", text, pure=True).load())


def assert_same_as_events(text: str) -> bool:
    """Whether the fast path read `text`; when it did, its nodes must be the event path's."""
    fast = by_lines(text)
    if fast is None:
        return False
    try:
        expected = by_events(text)
    except DiagnosticError as exc:
        pytest.fail(f"the fast path accepted a text the event path refuses: {exc}")
    assert fast == expected
    return True


def test_the_repository_plans_and_golden_files_load_the_same() -> None:
    paths = [*REPO.glob("plans/**/*.yaml"), *REPO.glob("tests/golden/**/*.yaml")]
    read = 0
    for path in paths:
        text = path.read_bytes().decode("utf-8", errors="replace")
        read += assert_same_as_events(text)
    assert read >= len(paths) // 2  # most of them are in the subset


@pytest.mark.parametrize(
    "text",
    [
        "a: |\n  x\n  y\nb: c\n",
        "a: |-\n  x\n\n    y\n\n\nb: c\n",  # deeper lines keep their spaces; blank lines
        "a: |\n\n  x\n\n# c\n",  # a leading blank line; a comment after the block ends it
        "a: | # c\n  x\n  # kept\n",
        "a: |\n  x",  # no final line break
        "a: |\n x\n",
        "s:\n  - id: a\n    command: |\n      set -e\n      echo hi\n    args: [x]\n  - b\n",
        "s:\n  - c: |\n     x\n",
    ],
)
def test_literal_block_scalars_load_the_same_on_both_paths(text: str) -> None:
    assert assert_same_as_events(text)


def test_the_benchmark_plans_are_read_by_the_fast_path() -> None:
    text = """\
plan_id: BENCH
version: "1.0"
description: Generated (3 steps, seed 1).
metadata:
  generator: benchmarks/compile_scale.py
globals:
  max_concurrency: 2
  env:
    BENCH: compile_scale
steps:
  - id: fetch_000000
    name: Fetch part 0
    command: "true"
    tags: [fetch, bench]
    on_failure: continue
  - id: build_000001
    args: ["--build", "part-1", "--verbose"]
    depends_on: [fetch_000000]
    retry_delay_sec: 0.5
    env:
      PART: "1"
    condition: "steps.fetch_000000.status == 'success'"
    ui_hints: {group: Build, weight: 10}
"""
    assert assert_same_as_events(text)


@pytest.mark.parametrize(
    "text",
    [
        "a: >-\n  x\n",  # folded block scalar
        "a: |+\n  x\n",  # a literal one keeping its final line breaks
        "a: |2\n  x\n",  # an indentation indicator
        "a: |\n  x\n  \n",  # a line of spaces in it
        "a: |\nb: c\n",  # an empty one
        "a: |x\n  y\n",
        "a:\n  - |\n    x\n",  # a list entry
        "a: b\n  c\n",  # multi-line plain scalar
        "a: 'b\n  c'\n",
        'a: "b\\n"\n',  # escape
        "a: &x b\n",
        "a: *x\n",
        "a: !!str b\n",
        "a:\tb\n",
        "a: b\r\n",
        "%YAML 1.2\n---\na: b\n",
        "---\na: b\n",
        "a: b\n---\nc: d\n",
        "a: b\na: c\n",  # duplicate key
        "a: yes\n",  # ambiguous boolean
        "a: .inf\n",
        "1: a\n",
        "true: a\n",
        "'a': b\n",
        "? a\n: b\n",
        "a: [b, [c]]\n",
        "a: [b,\n  c]\n",
        "a: [b, c,]\n",
        "a: {b: {c: d}}\n",
        "a: [http://x]\n",
        "a: b: c\n",
        "- a\n",
        "  a: b\n",
        "a:\n  - - b\n",
        "a:\n  -\n    b: c\n",
        "a: b\n  c: d\n",
        "a:\n    b: c\n  d: e\n",
        "",
        "# only a comment\n",
    ],
)
def test_what_the_fast_path_leaves_to_the_events(text: str) -> None:
    assert by_lines(text) is None


# -- generated documents ---------------------------------------------------------------------

# What the fast path reads, and what it must leave to the events (`odd` documents mix them in).
GOOD_KEYS = st.sampled_from(["id", "a", "b", "a-b", "a.b", "x/y", "_k", "1x", "yes", "on"])
ODD_KEYS = st.sampled_from(
    ["1", "0x1F", "true", "null", "<<", "'q'", '"k"', "a b", "k:", "-k", "é", "K" * 130]
)
GOOD_SCALARS = st.sampled_from(
    [
        *("a", "a b", "a#b", "a #c", "a  ", "x # c", "a:b", "a,b", "x]", "--x", "-1", "-.5"),
        *("1.5", "1e3", "0x1F", "0o7", "007", "~", "null", "Null", "true", "False", "---"),
        *("...", "é", "a\u00a0b", "☃", "😀 x", "'q'", "'it''s'", "''", '"q"', '""', "http://x"),
    ]
)
ODD_SCALARS = st.sampled_from(
    [
        *("a: b", "a:", "[x", "{", "-", "- x", "-#", ".inf", "yes", "No", "on", "y", "1" * 60),
        *('"a\\nb"', "'unterminated", "&a x", "*a", "!t x", "|", ">", "%x", "@x", "`x", "?x"),
        *("? x", ":x", "#c", "a\tb"),
    ]
)
SPACES = st.sampled_from(["", " ", "  "])
COMMENTS = st.sampled_from(["", " ", " # c", " #c"])


@st.composite
def key(draw: st.DrawFn, odd: bool) -> str:
    word = draw(st.one_of(GOOD_KEYS, ODD_KEYS) if odd else GOOD_KEYS)
    return word + str(draw(st.integers(0, 20))) * draw(st.booleans())  # rarely a duplicate


@st.composite
def scalar(draw: st.DrawFn, odd: bool) -> str:
    return draw(st.one_of(GOOD_SCALARS, ODD_SCALARS) if odd else GOOD_SCALARS)


@st.composite
def flow(draw: st.DrawFn, odd: bool) -> str:
    items = draw(st.lists(scalar(odd), max_size=4))
    gap = draw(SPACES)
    if draw(st.booleans()):
        colon = draw(st.sampled_from([": ", ":  ", ":"])) if odd else ": "
        pairs = [draw(key(odd)) + colon + item for item in items]
        return "{" + gap + ("," + gap).join(pairs) + gap + "}"
    return "[" + gap + ("," + draw(SPACES)).join(items) + gap + "]"


@st.composite
def value(draw: st.DrawFn, odd: bool) -> str:
    return draw(st.one_of(scalar(odd), flow(odd))) + draw(COMMENTS)


def literal_header(odd: bool) -> st.SearchStrategy[str]:
    return st.sampled_from(["|", "|-", *(["|+", "|2", ">", ">-", "|x"] if odd else [])])


@st.composite
def literal_lines(draw: st.DrawFn, indent: int, odd: bool) -> list[str]:
    """The content of a literal block scalar, its lines at `indent` or deeper, some blank."""
    words = ["x", "a: b", "- c", "# d", "e  ", "'f'", "[g]", "h #i", "---", "|"]
    lines = []
    for _ in range(draw(st.integers(1 if not odd else 0, 4))):
        if draw(st.integers(0, 3)) == 0:
            lines.append(draw(st.sampled_from(["", *([" " * indent, " "] if odd else [])])))
        else:
            deeper = draw(st.sampled_from([0, 0, 1, 3, *([-1] if odd else [])]))
            lines.append(" " * (indent + deeper) + draw(st.sampled_from(words)))
    if not odd and all(not line for line in lines):
        lines.append(" " * indent + "x")
    return lines


@st.composite
def block(draw: st.DrawFn, indent: int, depth: int, odd: bool) -> list[str]:
    """The lines of a block mapping or sequence whose items are in column `indent`."""
    pad = " " * indent
    lines: list[str] = []
    sequence = depth > 0 and draw(st.booleans())
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.integers(0, 4)) == 0:
            blank = ["", "   ", "# c", "  # c", pad + "#c", *(["#\t"] if odd else [])]
            lines.append(draw(st.sampled_from(blank)))
        head = pad + ("-" + draw(st.sampled_from([" ", "  "])) if sequence else "")
        if sequence and draw(st.booleans()):
            lines.append(head + draw(value(odd)))
            continue
        written = head + draw(key(odd)) + ":"
        if depth < 3 and draw(st.integers(0, 2)) == 0:
            # The value is a nested block, maybe an indentless list at the key's own column.
            lines.append(written + draw(COMMENTS))
            shift = draw(st.sampled_from([0, 1, 2, 4]))
            lines += draw(block(len(head) + shift, depth + 1, odd))
        elif draw(st.integers(0, 4)) == 0:
            lines.append(written + draw(st.sampled_from(["", " ", " # c"])))  # null
        elif draw(st.integers(0, 5)) == 0:
            lines.append(written + " " + draw(literal_header(odd)) + draw(COMMENTS))
            lines += draw(literal_lines(len(head) + draw(st.sampled_from([1, 2, 4])), odd))
        else:
            lines.append(written + draw(st.sampled_from([" ", "  "])) + draw(value(odd)))
        if sequence:
            # More keys of the mapping that the entry started, in its column.
            for _ in range(draw(st.integers(0, 2))):
                lines.append(" " * len(head) + draw(key(odd)) + ": " + draw(value(odd)))
    return lines


@st.composite
def documents(draw: st.DrawFn, odd: bool) -> str:
    lines = draw(block(0, 0, odd))
    if odd and draw(st.booleans()):  # a stray line somewhere
        at = draw(st.integers(0, len(lines)))
        lines.insert(at, draw(st.sampled_from([" " * draw(st.integers(0, 6)) + "x: b", "- z"])))
    return "\n".join(lines) + draw(st.sampled_from(["\n", "", "\n\n"]))


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents(odd=False))
def test_generated_documents_load_the_same_on_both_paths(text: str) -> None:
    assert_same_as_events(text)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents(odd=True))
def test_generated_odd_documents_load_the_same_on_both_paths(text: str) -> None:
    assert_same_as_events(text)


def test_the_fast_path_reads_most_generated_documents() -> None:
    """Guards the tests above: they must exercise the fast path, not only its refusals."""
    read = []

    @settings(max_examples=300, deadline=None, database=None, derandomize=True)
    @given(documents(odd=False))
    def count(text: str) -> None:
        read.append(assert_same_as_events(text))

    count()
    assert sum(read) > len(read) // 3
