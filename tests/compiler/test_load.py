"""planc.load: text → positioned nodes, and every refusal with its exact code and position."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planc.diagnostics import Diagnostic, DiagnosticError, Span
from planc.load import MAX_DEPTH, MAX_DIAGNOSTICS, MAX_PLAN_BYTES, load_document, load_file
from planc.nodes import Document, MapNode, ScalarNode, SeqNode, to_plain

REPO = Path(__file__).resolve().parents[2]


def load(tmp_path: Path, name: str, content: str | bytes) -> Document:
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return load_file(str(path))


def problems(tmp_path: Path, name: str, content: str | bytes) -> list[Diagnostic]:
    with pytest.raises(DiagnosticError) as caught:
        load(tmp_path, name, content)
    return caught.value.diagnostics


def only(tmp_path: Path, name: str, content: str | bytes) -> Diagnostic:
    found = problems(tmp_path, name, content)
    assert len(found) == 1, [(d.code, d.message) for d in found]
    return found[0]


def where(diagnostic: Diagnostic) -> tuple[str, int, int]:
    return diagnostic.code, diagnostic.line, diagnostic.col


def value_at(doc: Document, *path: str | int) -> ScalarNode:
    node = doc.root
    for part in path:
        if isinstance(part, int):
            assert isinstance(node, SeqNode)
            node = node.items[part]
        else:
            assert isinstance(node, MapNode)
            child = node.get(part)
            assert child is not None
            node = child
    assert isinstance(node, ScalarNode)
    return node


# -- files and bytes ----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", ["checkin.json", "safe-merge.json"])
def test_seed_plans_load(seed: str) -> None:
    doc = load_file(str(REPO / "plans" / "seed" / seed))
    assert isinstance(doc.root, MapNode)
    assert doc.root.keys()[0] == "plan_id"


def test_missing_file_is_an_io_error(tmp_path: Path) -> None:
    with pytest.raises(DiagnosticError) as caught:
        load_file(str(tmp_path / "nope.yaml"))
    (diagnostic,) = caught.value.diagnostics
    assert where(diagnostic) == ("io-error", 1, 1)
    assert diagnostic.message == "cannot read the plan file: No such file or directory"


def test_directory_is_an_io_error(tmp_path: Path) -> None:
    with pytest.raises(DiagnosticError) as caught:
        load_file(str(tmp_path))
    assert caught.value.diagnostics[0].code == "io-error"


def test_oversized_file_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with open(path, "wb") as handle:
        handle.truncate(MAX_PLAN_BYTES + 1)  # sparse: nothing is written or read
    with pytest.raises(DiagnosticError) as caught:
        load_file(str(path))
    (diagnostic,) = caught.value.diagnostics
    assert where(diagnostic) == ("file-too-large", 1, 1)
    assert diagnostic.message == (
        "the plan file is 33554433 bytes; the limit is 33554432 bytes (32 MiB)"
    )


def test_oversized_bytes_are_refused() -> None:
    with pytest.raises(DiagnosticError) as caught:
        load_document("big.json", b" " * (MAX_PLAN_BYTES + 1))
    assert caught.value.diagnostics[0].code == "file-too-large"


@pytest.mark.parametrize("content", ["", "   \n\n", "\ufeff"])
def test_empty_file(tmp_path: Path, content: str) -> None:
    diagnostic = only(tmp_path, "p.yaml", content)
    assert where(diagnostic) == ("empty-plan", 1, 1)
    assert diagnostic.message == "the plan file is empty"


@pytest.mark.parametrize("content", ["# just a comment\n", "---\n", "--- # nothing\n...\n"])
def test_yaml_without_content_is_empty(tmp_path: Path, content: str) -> None:
    diagnostic = only(tmp_path, "p.yaml", content)
    assert where(diagnostic) == ("empty-plan", 1, 1)
    assert diagnostic.message == "the plan file has no content"


def test_latin1_bytes_are_invalid_utf8(tmp_path: Path) -> None:
    diagnostic = only(tmp_path, "p.yaml", b"plan_id: p\ndescription: caf\xe9\n")
    assert where(diagnostic) == ("invalid-utf8", 2, 17)
    assert diagnostic.message == "the file is not valid UTF-8: byte 0xE9 cannot appear here"
    assert diagnostic.hint == "save the plan as UTF-8"


def test_invalid_utf8_column_counts_characters(tmp_path: Path) -> None:
    diagnostic = only(tmp_path, "p.json", '{"a": "é€'.encode() + b'\xff"}')
    assert where(diagnostic) == ("invalid-utf8", 1, 10)


def test_bom_is_skipped(tmp_path: Path) -> None:
    doc = load(tmp_path, "p.yaml", "\ufeffplan_id: p\n")
    assert value_at(doc, "plan_id").span == Span(1, 10, 1, 11)
    assert not doc.text.startswith("\ufeff")


@pytest.mark.parametrize(
    ("name", "content", "code"),
    [
        ("plan", '  {"a": 1,}', "json-syntax"),  # sniffed as JSON: strict rules apply
        ("plan.txt", "a: [1,]\n", None),  # sniffed as YAML: a trailing comma is fine
        ("plan.YML", "a: 1\n", None),
        ("plan.yaml", '{"a": 1}', None),  # JSON is YAML
    ],
)
def test_format_is_chosen_by_extension_then_content(
    tmp_path: Path, name: str, content: str, code: str | None
) -> None:
    if code is None:
        load(tmp_path, name, content)
    else:
        assert only(tmp_path, name, content).code == code


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    diagnostic = only(tmp_path, "p.yaml", "- id: build\n  command: make\n")
    assert where(diagnostic) == ("not-a-mapping", 1, 1)
    assert diagnostic.message == "the plan must be a mapping of keys to values, got a list"
    assert only(tmp_path, "p.json", '"plan"').message == (
        "the plan must be a mapping of keys to values, got the scalar 'plan'"
    )


# -- JSON -----------------------------------------------------------------------------------------


def test_json_values_and_positions(tmp_path: Path) -> None:
    text = '{\n  "plan_id": "p",\n  "n": [1, -2.5, true, false, null, "a\\nb"]\n}\n'
    doc = load(tmp_path, "p.json", text)
    assert to_plain(doc.root) == {"plan_id": "p", "n": [1, -2.5, True, False, None, "a\nb"]}
    assert isinstance(doc.root, MapNode)
    assert doc.root.span == Span(1, 1, 4, 2)
    key = doc.root.key_node("plan_id")
    assert key is not None and key.span == Span(2, 3, 2, 12) and key.text_col == 4
    plan_id = value_at(doc, "plan_id")
    assert plan_id.span == Span(2, 14, 2, 17) and plan_id.text_col == 15
    assert value_at(doc, "n", 1).span == Span(3, 12, 3, 16)
    assert value_at(doc, "n", 5).text_col is None  # an escape breaks the 1:1 mapping
    seq = doc.root.get("n")
    assert seq is not None and seq.span == Span(3, 8, 3, 44)


def test_json_text_col_points_inside_the_string(tmp_path: Path) -> None:
    doc = load(tmp_path, "p.json", '{"condition": "steps.a.status == \'ok\'"}')
    condition = value_at(doc, "condition")
    assert condition.position_of(6, 1) == Span(1, 22, 1, 23)  # the `a`
    assert doc.text[21] == "a"


def test_json_key_with_colon_on_the_next_line(tmp_path: Path) -> None:
    doc = load(tmp_path, "p.json", '{"a"\n  :\n 1, "b\\u0041": 2}')
    assert to_plain(doc.root) == {"a": 1, "bA": 2}
    assert value_at(doc, "a").span == Span(3, 2, 3, 3)


def test_json_crlf_line_endings(tmp_path: Path) -> None:
    doc = load(tmp_path, "p.json", '{\r\n  "a": 1,\r\n  "b": 2\r\n}')
    assert value_at(doc, "b").span == Span(3, 8, 3, 9)


@pytest.mark.parametrize(
    ("text", "line", "col", "message"),
    [
        ('{"a": 1,}', 1, 8, "trailing comma before a closing bracket"),
        ('{"a": [1, 2,\n]}', 1, 12, "trailing comma before a closing bracket"),
        ('{"a": 1} // note', 1, 10, "comments are not allowed in JSON"),
        ('{"a": /* x */ 1}', 1, 7, "comments are not allowed in JSON"),
        ('{"a" 1}', 1, 6, "unexpected `1`, expected `:`"),
        ('{"a": 1 "b": 2}', 1, 9, 'unexpected `"`, expected `,` or a closing bracket'),
        ('{"a": 1', 1, 8, "unexpected end of file, expected `,` or a closing bracket"),
        ('{"a": [1}', 1, 9, "unexpected `}`, expected `,` or a closing bracket"),
        ('{"a": 1}\n{"b": 2}', 2, 1, "unexpected `{`, expected the end of the file"),
        ('{"a": 01}', 1, 7, "invalid number `01`"),
        ('{"a": 1.}', 1, 7, "invalid number `1.`"),
        ('{"a": +1}', 1, 7, "unexpected `+`, expected a value"),
        ('{"a": "x}', 1, 7, "unterminated string"),
        (
            '{"a": "x\n"}',
            1,
            9,
            "unterminated string: a string must end on the line where it starts",
        ),
        ('{"a": "x\ty"}', 1, 9, "control character inside a string (escape it, e.g. \\n)"),
        ('{"a": "x\\qy"}', 1, 9, "invalid escape sequence in a string"),
        ('{"a": "\\u12"}', 1, 9, "invalid \\u escape in a string"),
        ('{"a": True}', 1, 7, "unexpected `T`, expected a value"),
        ("{,}", 1, 2, "unexpected `,`, expected a key in double quotes or `}`"),
        ('{"a": 1,, "b": 2}', 1, 9, "unexpected `,`, expected a key in double quotes"),
        ("[1 2]", 1, 4, "unexpected `2`, expected `,` or a closing bracket"),
    ],
)
def test_json_syntax_errors(tmp_path: Path, text: str, line: int, col: int, message: str) -> None:
    diagnostic = only(tmp_path, "p.json", text)
    assert where(diagnostic) == ("json-syntax", line, col)
    assert diagnostic.message == message


def test_json_single_quotes_get_a_hint(tmp_path: Path) -> None:
    diagnostic = only(tmp_path, "p.json", "{'a': 1}")
    assert where(diagnostic) == ("json-syntax", 1, 2)
    assert diagnostic.message == "unexpected `'`, expected a key in double quotes or `}`"
    assert diagnostic.hint == "JSON strings and keys use double quotes"


def test_json_bare_word_gets_a_hint(tmp_path: Path) -> None:
    diagnostic = only(tmp_path, "p.json", '{"a": abc}')
    assert diagnostic.hint == "strings and keys must be in double quotes"


def test_json_duplicate_keys_are_all_reported(tmp_path: Path) -> None:
    text = '{\n "id": "a",\n "id": "b",\n "x": {"k": 1, "k": 2},\n "id": "c"\n}'
    found = problems(tmp_path, "p.json", text)
    assert [where(d) for d in found] == [
        ("duplicate-key", 3, 2),
        ("duplicate-key", 4, 16),
        ("duplicate-key", 5, 2),
    ]
    assert found[0].message == "duplicate key `id` (first written at line 2, column 2)"
    assert found[2].message == "duplicate key `id` (first written at line 2, column 2)"


@pytest.mark.parametrize("word", ["NaN", "Infinity", "-Infinity", "1e400", "-1.5E+999"])
def test_json_non_finite_numbers(tmp_path: Path, word: str) -> None:
    diagnostic = only(tmp_path, "p.json", '{"timeout_sec": ' + word + "}")
    assert where(diagnostic) == ("non-finite-number", 1, 17)
    assert diagnostic.message == f"`{word}` is not a finite number"


def test_json_integer_digit_limit(tmp_path: Path) -> None:
    fifty = "9" * 50
    assert value_at(load(tmp_path, "p.json", f'{{"a": -{fifty}}}'), "a").value == -int(fifty)
    diagnostic = only(tmp_path, "p.json", '{"a": ' + "1" * 10_000 + "}")
    assert where(diagnostic) == ("number-too-large", 1, 7)
    assert diagnostic.message == f"the integer `{'1' * 37}...` has more than 50 digits"


def test_json_several_value_problems_in_one_pass(tmp_path: Path) -> None:
    found = problems(tmp_path, "p.json", '{"a": NaN, "b": 1e999, "c": ' + "2" * 60 + "}")
    assert [d.code for d in found] == ["non-finite-number", "non-finite-number", "number-too-large"]


def test_json_deep_nesting_is_refused_without_recursion(tmp_path: Path) -> None:
    diagnostic = only(tmp_path, "p.json", '{"a": ' + "[" * 5000 + "]" * 5000 + "}")
    assert where(diagnostic) == ("too-deep", 1, 7 + MAX_DEPTH - 1)
    assert diagnostic.message == "the plan nests deeper than 64 levels here"


def test_json_nesting_up_to_the_limit_is_fine(tmp_path: Path) -> None:
    depth = MAX_DEPTH - 1  # the top-level object is the first level
    doc = load(tmp_path, "p.json", '{"a": ' + "[" * depth + "]" * depth + "}")
    nested: object = to_plain(doc.root)["a"]
    for _ in range(depth - 1):
        assert isinstance(nested, list) and len(nested) == 1
        nested = nested[0]
    assert nested == []


def test_json_lone_surrogate(tmp_path: Path) -> None:
    diagnostic = only(tmp_path, "p.json", '{"a": "x\\ud800"}')
    assert where(diagnostic) == ("invalid-unicode", 1, 7)


def test_json_surrogate_pair_is_fine(tmp_path: Path) -> None:
    doc = load(tmp_path, "p.json", '{"a": "\\ud83d\\ude80"}')
    assert value_at(doc, "a").value == "🚀"


# -- YAML -----------------------------------------------------------------------------------------


def test_yaml_values_and_positions(tmp_path: Path) -> None:
    text = (
        "plan_id: p\n"
        "steps:\n"
        "  - id: build\n"
        "    args: [a, 'b c', \"d\\te\"]\n"
        "    timeout_sec: 1.5\n"
        "    retries:\n"
        "    desc: |\n"
        "      two\n"
        "      lines\n"
    )
    doc = load(tmp_path, "p.yaml", text)
    assert to_plain(doc.root) == {
        "plan_id": "p",
        "steps": [
            {
                "id": "build",
                "args": ["a", "b c", "d\te"],
                "timeout_sec": 1.5,
                "retries": None,
                "desc": "two\nlines\n",
            }
        ],
    }
    assert value_at(doc, "plan_id").span == Span(1, 10, 1, 11)
    step = value_at(doc, "steps", 0, "id")
    assert step.span == Span(3, 9, 3, 14) and step.text_col == 9
    assert value_at(doc, "steps", 0, "args", 1).text_col == 16  # inside the quotes
    assert value_at(doc, "steps", 0, "args", 2).text_col is None  # an escape
    assert value_at(doc, "steps", 0, "desc").text_col is None  # a block scalar
    assert value_at(doc, "steps", 0, "retries").span.line == 6  # empty: next to its key
    assert isinstance(doc.root, MapNode)
    steps = doc.root.get("steps")
    assert isinstance(steps, SeqNode)
    assert steps.span.line == 3 and steps.span.col == 3
    assert steps.items[0].span.line == 3 and steps.items[0].span.col == 5


def test_yaml_text_col_of_a_quoted_condition(tmp_path: Path) -> None:
    doc = load(tmp_path, "p.yaml", "condition: \"steps.a.status == 'ok'\"\n")
    condition = value_at(doc, "condition")
    assert condition.text_col == 13
    assert condition.position_of(6) == Span(1, 19, 1, 20)
    assert doc.text[18] == "a"


def test_yaml_doubled_quote_breaks_text_col(tmp_path: Path) -> None:
    doc = load(tmp_path, "p.yaml", "a: 'it''s'\nb: plain text\nc: folded\n  plain\n")
    assert value_at(doc, "a").text_col is None
    assert value_at(doc, "b").text_col == 4
    assert value_at(doc, "c").text_col is None


@pytest.mark.parametrize(
    ("written", "value"),
    [
        ("~", None),
        ("null", None),
        ("NULL", None),
        ("true", True),
        ("False", False),
        ("42", 42),
        ("-7", -7),
        ("+5", 5),
        ("0755", 755),  # YAML 1.2: decimal, not octal
        ("0o17", 15),
        ("0x1F", 31),
        ("1.5", 1.5),
        ("1e3", 1000.0),
        (".5", 0.5),
        ("1_000", "1_000"),
        ("10m", "10m"),
        ("1:30", "1:30"),
        ("'42'", "42"),
        ('"true"', "true"),
        ("'yes'", "yes"),
        ("2024-01-01", "2024-01-01"),
    ],
)
def test_yaml_core_schema_scalars(tmp_path: Path, written: str, value: object) -> None:
    resolved = value_at(load(tmp_path, "p.yaml", f"a: {written}\n"), "a").value
    assert resolved == value and type(resolved) is type(value)


def test_yaml_1_1_directive(tmp_path: Path) -> None:
    diagnostic = only(tmp_path, "p.yaml", "# plan\n%YAML 1.1\n---\nplan_id: p\n")
    assert where(diagnostic) == ("yaml-version", 2, 1)
    assert diagnostic.message == "the plan declares YAML 1.1; plans are YAML 1.2"


def test_yaml_1_2_directive_is_accepted(tmp_path: Path) -> None:
    doc = load(tmp_path, "p.yaml", "%YAML 1.2\n---\nplan_id: p\n")
    assert to_plain(doc.root) == {"plan_id": "p"}
    assert value_at(doc, "plan_id").span.line == 3


@pytest.mark.parametrize("directive", ["%YAML 1.3", "%YAML 2.0", "%YAML"])
def test_other_yaml_versions(tmp_path: Path, directive: str) -> None:
    diagnostic = only(tmp_path, "p.yaml", f"{directive}\n---\nplan_id: p\n")
    assert where(diagnostic) == ("yaml-version", 1, 1)


def test_tag_directive(tmp_path: Path) -> None:
    diagnostic = only(tmp_path, "p.yaml", "%TAG !e! tag:example.com,2000:\n---\na: 1\n")
    assert where(diagnostic) == ("yaml-directive", 1, 1)
    assert diagnostic.message == "the `%TAG` directive is not supported in plans"


@pytest.mark.parametrize(
    ("value", "tag"),
    [
        ("!!python/object:os.system ls", "!!python/object:os.system"),
        ("!!python/object/apply:os.system [ls]", "!!python/object/apply:os.system"),
        ("!!str 1.0", "!!str"),
        ("!foo bar", "!foo"),
        ("!<tag:yaml.org,2002:int> 1", "!<tag:yaml.org,2002:int>"),
    ],
)
def test_tags_are_refused(tmp_path: Path, value: str, tag: str) -> None:
    diagnostic = only(tmp_path, "p.yaml", f"plan_id: p\ncommand: {value}\n")
    assert where(diagnostic) == ("yaml-tag", 2, 10)
    assert diagnostic.message == f"YAML tags (`{tag}`) are not allowed in plans"


def test_tag_on_a_collection(tmp_path: Path) -> None:
    diagnostic = only(tmp_path, "p.yaml", "env: !!map\n  A: b\n")
    assert where(diagnostic) == ("yaml-tag", 1, 6)


def test_anchor_and_alias(tmp_path: Path) -> None:
    found = problems(tmp_path, "p.yaml", "a: &shared {x: '1'}\nb: *shared\n")
    assert [where(d) for d in found] == [("yaml-anchor", 1, 4), ("yaml-alias", 2, 4)]
    assert found[0].message == "anchors (`&shared`) are not allowed in plans"
    assert found[1].message == "aliases (`*shared`) are not allowed in plans"


def test_anchor_and_tag_together(tmp_path: Path) -> None:
    found = problems(tmp_path, "p.yaml", "a: &x !!str b\n")
    assert [where(d) for d in found] == [("yaml-anchor", 1, 4), ("yaml-tag", 1, 7)]


def test_alias_bomb_is_refused_without_expanding(tmp_path: Path) -> None:
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for level in range(1, 30):
        refs = ", ".join([f"*a{level - 1}"] * 9)
        lines.append(f"a{level}: &a{level} [{refs}]")
    found = problems(tmp_path, "p.yaml", "\n".join(lines) + "\n")
    assert len(found) == MAX_DIAGNOSTICS
    assert {d.code for d in found} == {"yaml-anchor", "yaml-alias"}
    assert where(found[0]) == ("yaml-anchor", 1, 5)


def test_merge_key(tmp_path: Path) -> None:
    diagnostic = only(tmp_path, "p.yaml", "step:\n  <<: {retries: 2}\n  id: a\n")
    assert where(diagnostic) == ("merge-key", 2, 3)
    assert diagnostic.message == "merge keys (`<<`) are not allowed in plans"


def test_quoted_merge_key_is_a_plain_key(tmp_path: Path) -> None:
    doc = load(tmp_path, "p.yaml", "'<<': x\n")
    assert to_plain(doc.root) == {"<<": "x"}


@pytest.mark.parametrize(
    ("key", "what"),
    [
        ("1", "the number 1"),
        ("1.5", "the number 1.5"),
        ("true", "the boolean true"),
        ("null", "null"),
        ("~", "null"),
        ("[a]", "a list"),
        ("{a: 1}", "a mapping"),
    ],
)
def test_non_string_keys(tmp_path: Path, key: str, what: str) -> None:
    complex_key = key.startswith(("[", "{"))
    text = f"? {key}\n: x\n" if complex_key else f"plan_id: p\nenv:\n  {key}: x\n"
    diagnostic = only(tmp_path, "p.yaml", text)
    assert diagnostic.code == "non-string-key"
    assert diagnostic.message == f"keys must be strings; this key is {what}"


def test_non_string_key_position(tmp_path: Path) -> None:
    diagnostic = only(tmp_path, "p.yaml", "plan_id: p\nenv:\n  1: x\n")
    assert where(diagnostic) == ("non-string-key", 3, 3)


def test_empty_key_is_not_a_string(tmp_path: Path) -> None:
    assert only(tmp_path, "p.yaml", ": x\n").code == "non-string-key"


def test_yaml_duplicate_keys(tmp_path: Path) -> None:
    text = "plan_id: p\nsteps:\n  - id: a\n    command: x\n    command: z\nplan_id: q\n"
    found = problems(tmp_path, "p.yaml", text)
    assert [where(d) for d in found] == [("duplicate-key", 5, 5), ("duplicate-key", 6, 1)]
    assert found[0].message == "duplicate key `command` (first written at line 4, column 5)"


def test_multiple_documents(tmp_path: Path) -> None:
    diagnostic = only(tmp_path, "p.yaml", "plan_id: a\n---\nplan_id: b\n")
    assert where(diagnostic) == ("multiple-documents", 2, 1)


def test_document_end_marker_alone_is_fine(tmp_path: Path) -> None:
    doc = load(tmp_path, "p.yaml", "---\nplan_id: a\n...\n")
    assert to_plain(doc.root) == {"plan_id": "a"}


@pytest.mark.parametrize("word", ["yes", "no", "on", "off", "y", "n", "Yes", "NO", "On", "OFF"])
def test_ambiguous_booleans(tmp_path: Path, word: str) -> None:
    diagnostic = only(tmp_path, "p.yaml", f"shell: {word}\n")
    assert where(diagnostic) == ("ambiguous-boolean", 1, 8)
    assert diagnostic.message == (
        f"`{word}` is ambiguous: YAML 1.1 reads it as a boolean, YAML 1.2 as a string"
    )
    assert diagnostic.hint == f"quote it ('{word}') if you mean the string, or write true/false"


def test_env_debug_yes(tmp_path: Path) -> None:
    diagnostic = only(tmp_path, "p.yaml", "plan_id: p\nenv: {DEBUG: yes}\n")
    assert where(diagnostic) == ("ambiguous-boolean", 2, 14)
    assert diagnostic.hint == "quote it ('yes') if you mean the string, or write true/false"


def test_ambiguous_words_are_fine_quoted_or_as_keys(tmp_path: Path) -> None:
    doc = load(tmp_path, "p.yaml", "env: {DEBUG: 'yes', on: \"off\"}\nname: yesterday\n")
    assert to_plain(doc.root) == {"env": {"DEBUG": "yes", "on": "off"}, "name": "yesterday"}


@pytest.mark.parametrize("word", [".inf", "-.inf", "+.INF", ".nan", ".NaN", "1e400"])
def test_yaml_non_finite_numbers(tmp_path: Path, word: str) -> None:
    diagnostic = only(tmp_path, "p.yaml", f"timeout_sec: {word}\n")
    assert where(diagnostic) == ("non-finite-number", 1, 14)
    assert diagnostic.message == f"`{word}` is not a finite number"


def test_yaml_huge_integer(tmp_path: Path) -> None:
    diagnostic = only(tmp_path, "p.yaml", "retries: " + "7" * 10_000 + "\n")
    assert where(diagnostic) == ("number-too-large", 1, 10)
    assert only(tmp_path, "p.yaml", "retries: 0x" + "f" * 51 + "\n").code == "number-too-large"


def test_yaml_deep_flow_nesting_is_refused_without_recursion(tmp_path: Path) -> None:
    diagnostic = only(tmp_path, "p.yaml", "a: " + "[" * 5000 + "]" * 5000 + "\n")
    assert where(diagnostic) == ("too-deep", 1, 4 + MAX_DEPTH - 1)


def test_yaml_deep_block_nesting(tmp_path: Path) -> None:
    text = "".join(" " * level + f"k{level}:\n" for level in range(200)) + " " * 200 + "v\n"
    assert only(tmp_path, "p.yaml", text).code == "too-deep"


def test_yaml_syntax_error_position(tmp_path: Path) -> None:
    diagnostic = only(tmp_path, "p.yaml", "plan_id: p\ncommand: make\n  args: [all]\n")
    assert where(diagnostic) == ("yaml-syntax", 3, 7)
    assert diagnostic.message == "invalid YAML: mapping values are not allowed here"


def test_yaml_tab_indentation_hint(tmp_path: Path) -> None:
    diagnostic = only(tmp_path, "p.yaml", "plan_id: p\n\tsteps: []\n")
    assert where(diagnostic) == ("yaml-syntax", 2, 1)
    assert diagnostic.hint == "YAML indentation uses spaces, not tabs"


def test_yaml_unclosed_flow_sequence(tmp_path: Path) -> None:
    diagnostic = only(tmp_path, "p.yaml", "args: [a, b\nnext: 1\n")
    assert diagnostic.code == "yaml-syntax"
    assert diagnostic.line == 2


def test_yaml_control_character(tmp_path: Path) -> None:
    diagnostic = only(tmp_path, "p.yaml", "a: b\x00\n")
    assert where(diagnostic) == ("yaml-syntax", 1, 5)
    assert diagnostic.message == "the character U+0000 is not allowed in a YAML file"


def test_yaml_lone_surrogate(tmp_path: Path) -> None:
    diagnostic = only(tmp_path, "p.yaml", 'a: "x\\ud800"\n')
    assert where(diagnostic) == ("invalid-unicode", 1, 4)


def test_problems_are_sorted_by_position(tmp_path: Path) -> None:
    text = "b: *x\na: yes\nc: !!str q\n"
    found = problems(tmp_path, "p.yaml", text)
    assert [d.line for d in found] == [1, 2, 3]


# -- robustness ---------------------------------------------------------------------------------


@pytest.mark.parametrize("failure", [RecursionError, ValueError, UnicodeError])
@pytest.mark.parametrize(
    ("frame", "text"),
    [
        # The line-by-line fast path reads the plain plan; a folded scalar is left to the events.
        ("planc.load.yaml_lines._Frame", b"plan_id: p\nsteps:\n  - id: a\n"),
        (
            "planc.load.yaml_events._YamlFrame",
            b"plan_id: p\nsteps:\n  - id: a\n    command: >\n      x\n",
        ),
    ],
)
def test_unexpected_loader_failures_become_diagnostics(
    monkeypatch: pytest.MonkeyPatch, failure: type[Exception], frame: str, text: bytes
) -> None:
    def broken(*_args: object) -> None:
        raise failure("boom")

    monkeypatch.setattr(f"{frame}.__init__", broken)
    with pytest.raises(DiagnosticError) as caught:
        load_document("p.yaml", text)
    (diagnostic,) = caught.value.diagnostics
    assert where(diagnostic) == ("load-error", 1, 1)
    assert diagnostic.message == f"cannot load the plan: {failure.__name__}('boom')"


YAMLISH = st.text(alphabet=list("ab:-[]{}'\"!&*#%|>?,.\\ \n\t01yx~é\ufeff"), max_size=80)


@settings(max_examples=300, deadline=None)
@given(YAMLISH, st.sampled_from(["p.yaml", "p.json", "p"]))
def test_any_text_loads_or_fails_with_diagnostics(text: str, name: str) -> None:
    try:
        doc = load_document(name, text.encode("utf-8"))
    except DiagnosticError as exc:
        assert exc.diagnostics
        assert all(d.line >= 1 and d.col >= 1 for d in exc.diagnostics)
    else:
        assert isinstance(doc.root, MapNode)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=60), st.sampled_from(["p.yaml", "p.json"]))
def test_any_bytes_load_or_fail_with_diagnostics(data: bytes, name: str) -> None:
    try:
        load_document(name, data)
    except DiagnosticError as exc:
        assert exc.diagnostics


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**40), 10**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=5), JSON_VALUES, max_size=5), st.booleans())
def test_json_loads_what_json_dumps_writes(value: dict[str, object], indent: bool) -> None:
    text = json.dumps(value, indent=2 if indent else None, ensure_ascii=False)
    try:
        doc = load_document("p.json", text.encode("utf-8"))
    except DiagnosticError as exc:
        # Only lone surrogates, which hypothesis text may contain, are refused.
        assert {d.code for d in exc.diagnostics} == {"invalid-unicode"}
        return
    assert to_plain(doc.root) == value
