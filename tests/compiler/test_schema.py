"""planc.schema: plan.schema.json, and every schema error as a positioned, human diagnostic."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft7Validator, validators

from planc.diagnostics import Diagnostic
from planc.load import load_document, load_file
from planc.schema import plan_schema, validate_document
from planrun.core.schema_check import compile_check
from planrun.core.schema_pattern import ecma_draft7, ecma_regex

REPO = Path(__file__).resolve().parents[2]
STEP = "plan_id: p\nsteps:\n  - id: build\n    command: make\n"


def check(tmp_path: Path, text: str, name: str = "p.yaml") -> list[Diagnostic]:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return validate_document(load_file(str(path)))


def only(tmp_path: Path, text: str, name: str = "p.yaml") -> Diagnostic:
    found = check(tmp_path, text, name)
    assert len(found) == 1, [(d.code, d.message) for d in found]
    return found[0]


def where(diagnostic: Diagnostic) -> tuple[str, int, int]:
    return diagnostic.code, diagnostic.line, diagnostic.col


def step_with(line: str) -> str:
    """The minimal valid plan, with one more line (or lines) in its step."""
    return STEP + "".join(f"    {part}\n" for part in line.split("\n"))


# -- valid plans --------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", ["checkin.json", "safe-merge.json"])
def test_seed_plans_are_valid(seed: str) -> None:
    assert validate_document(load_file(str(REPO / "plans" / "seed" / seed))) == []


def test_every_field_at_once_is_valid(tmp_path: Path) -> None:
    text = """\
plan_id: full
version: '2'
description: every field
metadata: {owner: me, nested: {deep: [1, {x: null}]}}
globals:
  max_concurrency: 2
  default_timeout_sec: 60
  default_retries: 1
  default_retry_delay_sec: 0.5
  heartbeat_timeout_sec: 30
  kill_grace_sec: 0
  env: {CI: 'true', _X1: ''}
steps:
  - id: build
    name: Build
    description: compile
    command: make
    args: [all, -j4]
    cwd: src
    shell: false
    env: {CC: gcc}
    depends_on: []
    timeout_sec: 0.1
    heartbeat_timeout_sec: 5
    retries: 100
    retry_delay_sec: 0
    retry_backoff: 1
    max_retry_delay_sec: 0
    critical: false
    condition: null
    trigger_rule: all_done
    on_failure: fallback_step
    fallback: rescue
    provides: [binary]
    consumes: []
    tags: [a, a]
    ui_hints: {anything: [goes]}
  - id: rescue.v-2_x
    command: ./rescue.sh
    condition: "env.CI == 'true'"
"""
    assert check(tmp_path, text) == []


def test_a_large_generated_plan_is_valid() -> None:
    steps = [
        {"id": f"s{i}", "command": "true", "depends_on": [f"s{i - 1}"] if i else []}
        for i in range(2000)
    ]
    data = json.dumps({"plan_id": "big", "steps": steps}).encode()
    assert validate_document(load_document("big.json", data)) == []


# -- unknown and missing keys -------------------------------------------------------------------


def test_misspelt_step_key(tmp_path: Path) -> None:
    diagnostic = only(tmp_path, step_with("depend_on: [x]"))
    assert where(diagnostic) == ("unknown-key", 5, 5)
    assert diagnostic.message == "unknown key `depend_on` in step `build`"
    assert diagnostic.hint == "did you mean `depends_on`?"


def test_unknown_top_level_key(tmp_path: Path) -> None:
    diagnostic = only(tmp_path, "plan_id: p\nstep: []\nsteps: [{id: a, command: b}]\n")
    assert where(diagnostic) == ("unknown-key", 2, 1)
    assert diagnostic.message == "unknown key `step` in the plan"
    assert diagnostic.hint == "did you mean `steps`?"


def test_unknown_key_without_a_close_match_lists_the_allowed_ones(tmp_path: Path) -> None:
    diagnostic = only(tmp_path, STEP + "globals: {zzz: 1}\n")
    assert where(diagnostic) == ("unknown-key", 5, 11)
    assert diagnostic.message == "unknown key `zzz` in `globals`"
    allowed = sorted(plan_schema()["properties"]["globals"]["properties"])
    assert "max_concurrency" in allowed
    assert diagnostic.hint == f"allowed keys: {', '.join(allowed)}"


def test_several_unknown_keys_each_get_a_diagnostic(tmp_path: Path) -> None:
    found = check(tmp_path, step_with("timeout: 5\nretry: 2"))
    assert [(d.code, d.line, d.hint) for d in found] == [
        ("unknown-key", 5, "did you mean `timeout_sec`?"),
        ("unknown-key", 6, "did you mean `retries`?"),
    ]


def test_metadata_and_ui_hints_are_free_form(tmp_path: Path) -> None:
    text = step_with("ui_hints: {x: {y: z}}") + "metadata: {anything: {goes: [1, true]}}\n"
    assert check(tmp_path, text) == []


def test_missing_command(tmp_path: Path) -> None:
    diagnostic = only(tmp_path, "plan_id: p\nsteps:\n  - id: build\n    args: [x]\n")
    assert where(diagnostic) == ("missing-key", 3, 5)
    assert diagnostic.message == "step `build` is missing the required key `command`"


def test_missing_step_id(tmp_path: Path) -> None:
    diagnostic = only(tmp_path, "plan_id: p\nsteps:\n  - command: make\n")
    assert where(diagnostic) == ("missing-key", 3, 5)
    assert diagnostic.message == "`steps[0]` is missing the required key `id`"


def test_missing_plan_id_and_steps(tmp_path: Path) -> None:
    found = check(tmp_path, "description: nothing else\n")
    assert [(d.code, d.line, d.col, d.message) for d in found] == [
        ("missing-key", 1, 1, "the plan is missing the required key `plan_id`"),
        ("missing-key", 1, 1, "the plan is missing the required key `steps`"),
    ]
    assert found[1].hint == "add at least one step under `steps:`"


# -- types --------------------------------------------------------------------------------------


def test_duration_with_a_unit(tmp_path: Path) -> None:
    diagnostic = only(tmp_path, step_with("timeout_sec: 10m"))
    assert where(diagnostic) == ("wrong-type", 5, 18)
    assert diagnostic.message == "`timeout_sec` must be a number, got the string '10m'"
    assert diagnostic.hint == "durations are numbers of seconds: write 600 for '10m'"


@pytest.mark.parametrize(
    ("value", "hint"),
    [
        ("1.5h", "durations are numbers of seconds: write 5400 for '1.5h'"),
        ("30s", "durations are numbers of seconds: write 30 for '30s'"),
        ("soon", "durations are numbers of seconds, e.g. 600"),
        ("'600'", "durations are numbers of seconds, e.g. 600"),
    ],
)
def test_duration_hints(tmp_path: Path, value: str, hint: str) -> None:
    assert only(tmp_path, step_with(f"retry_delay_sec: {value}")).hint == hint


@pytest.mark.parametrize(
    ("line", "message", "hint"),
    [
        (
            "retries: '3'",
            "`retries` must be an integer, got the string '3'",
            "remove the quotes: 3",
        ),
        ("retries: true", "`retries` must be an integer, got the boolean true", None),
        ("retries: 1.0", "`retries` must be an integer, got the number 1.0", "write 1"),
        ("retries: 1.5", "`retries` must be an integer, got the number 1.5", None),
        ("timeout_sec: true", "`timeout_sec` must be a number, got the boolean true", None),
        ("critical: 1", "`critical` must be true or false, got the number 1", None),
        (
            "shell: 'true'",
            "`shell` must be true or false, got the string 'true'",
            "write true or false, without quotes",
        ),
        (
            "env: {PORT: 8080}",
            "`env.PORT` must be a string, got the number 8080",
            "quote it: '8080'",
        ),
        ("env: {V: 1.10}", "`env.V` must be a string, got the number 1.1", "quote it: '1.10'"),
        ("env: {E: null}", "`env.E` must be a string, got null", None),
        ("args: [x, 1]", "`args[1]` must be a string, got the number 1", "quote it: '1'"),
        ("args: x", "`args` must be a list, got the string 'x'", None),
        ("env: [A]", "`env` must be a mapping, got a list", None),
        ("condition: 5", "`condition` must be a string or null, got the number 5", "quote it: '5'"),
        ("name: {a: b}", "`name` must be a string, got a mapping", None),
    ],
)
def test_wrong_types(tmp_path: Path, line: str, message: str, hint: str | None) -> None:
    diagnostic = only(tmp_path, step_with(line))
    assert diagnostic.code == "wrong-type"
    assert diagnostic.line == 5
    assert (diagnostic.message, diagnostic.hint) == (message, hint)


def test_wrong_type_points_at_the_value(tmp_path: Path) -> None:
    diagnostic = only(tmp_path, step_with("env: {A: 'x', PORT: 8080}"))
    assert where(diagnostic) == ("wrong-type", 5, 25)


def test_top_level_wrong_types(tmp_path: Path) -> None:
    found = check(tmp_path, "plan_id: 7\nversion: 1.10\nglobals: []\nsteps: build\n")
    assert [(d.line, d.message, d.hint) for d in found] == [
        (1, "`plan_id` must be a string, got the number 7", "quote it: '7'"),
        (2, "`version` must be a string, got the number 1.1", "quote it: '1.10'"),
        (3, "`globals` must be a mapping, got a list", None),
        (4, "`steps` must be a list, got the string 'build'", None),
    ]


def test_step_that_is_not_a_mapping(tmp_path: Path) -> None:
    diagnostic = only(tmp_path, "plan_id: p\nsteps:\n  - build\n")
    assert where(diagnostic) == ("wrong-type", 3, 5)
    assert diagnostic.message == "`steps[0]` must be a mapping, got the string 'build'"


def test_json_plan_positions(tmp_path: Path) -> None:
    text = '{"plan_id": "p",\n "steps": [{"id": "a", "command": "x", "timeout_sec": "10m"}]}'
    diagnostic = only(tmp_path, text, "p.json")
    assert where(diagnostic) == ("wrong-type", 2, 55)


# -- values -------------------------------------------------------------------------------------


def test_unknown_failure_policy(tmp_path: Path) -> None:
    diagnostic = only(tmp_path, step_with("on_failure: skip"))
    assert where(diagnostic) == ("invalid-value", 5, 17)
    assert diagnostic.message == (
        "`on_failure` must be one of abort, skip_dependents, continue, fallback_step;"
        " got the string 'skip'"
    )
    assert diagnostic.hint == "did you mean `skip_dependents`?"


def test_misspelt_trigger_rule(tmp_path: Path) -> None:
    diagnostic = only(tmp_path, step_with("trigger_rule: all_sucess"))
    assert diagnostic.code == "invalid-value"
    assert diagnostic.hint == "did you mean `all_success`?"


def test_enum_value_of_the_wrong_type(tmp_path: Path) -> None:
    diagnostic = only(tmp_path, step_with("trigger_rule: 3"))
    assert diagnostic.code == "invalid-value"
    assert diagnostic.hint is None


@pytest.mark.parametrize(
    ("written", "problem"),
    [
        ("'bad id'", "it contains ' '"),
        ("1abc", "it starts with '1'"),
        ("''", "it is empty"),
        ("é", "it starts with 'é'"),
        ("a/b", "it contains '/'"),
        ("a" * 129, "it has 129 characters"),
    ],
)
def test_invalid_step_ids(tmp_path: Path, written: str, problem: str) -> None:
    text = f"plan_id: p\nsteps:\n  - id: {written}\n    command: make\n"
    diagnostic = only(tmp_path, text)
    assert where(diagnostic) == ("invalid-id", 3, 9)
    value = written.strip("'")
    assert diagnostic.message == f"{value!r} is not a valid step id: {problem}"
    assert diagnostic.hint == (
        "step ids start with a letter or `_`, then letters, digits, `_`, `.` or `-`"
        " (at most 128 characters)"
    )


def test_invalid_fallback_id(tmp_path: Path) -> None:
    diagnostic = only(tmp_path, step_with("on_failure: fallback_step\nfallback: 'no way'"))
    assert where(diagnostic) == ("invalid-id", 6, 15)


def test_invalid_env_name(tmp_path: Path) -> None:
    diagnostic = only(tmp_path, STEP + "globals:\n  env: {OK: x, MY-VAR: z}\n")
    assert where(diagnostic) == ("invalid-env-name", 6, 16)
    assert diagnostic.message == "'MY-VAR' is not a valid environment variable name"
    assert diagnostic.hint == "names start with a letter or `_`, then letters, digits or `_`"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("retries: 500", "`retries` must be between 0 and 100, got 500"),
        ("retries: -1", "`retries` must be between 0 and 100, got -1"),
        ("timeout_sec: 0", "`timeout_sec` must be greater than 0, got 0"),
        ("heartbeat_timeout_sec: -2.5", "`heartbeat_timeout_sec` must be greater than 0, got -2.5"),
        ("retry_backoff: 0.5", "`retry_backoff` must be at least 1, got 0.5"),
        ("retry_delay_sec: -1", "`retry_delay_sec` must be at least 0, got -1"),
    ],
)
def test_out_of_range(tmp_path: Path, line: str, message: str) -> None:
    diagnostic = only(tmp_path, step_with(line))
    assert (diagnostic.code, diagnostic.line) == ("out-of-range", 5)
    assert diagnostic.message == message


def test_globals_out_of_range(tmp_path: Path) -> None:
    found = check(tmp_path, STEP + "globals: {max_concurrency: 0, kill_grace_sec: -1}\n")
    assert [(d.code, d.col, d.message) for d in found] == [
        ("out-of-range", 28, "`globals.max_concurrency` must be at least 1, got 0"),
        ("out-of-range", 47, "`globals.kill_grace_sec` must be at least 0, got -1"),
    ]


def test_duplicate_dependency(tmp_path: Path) -> None:
    diagnostic = only(tmp_path, step_with("depends_on: [a, b, a]"))
    assert where(diagnostic) == ("duplicate-item", 5, 24)
    assert diagnostic.message == "`depends_on` lists the string 'a' more than once"


def test_tags_may_repeat(tmp_path: Path) -> None:
    assert check(tmp_path, step_with("tags: [x, x]")) == []


@pytest.mark.parametrize(
    ("text", "line", "col", "message"),
    [
        ("plan_id: ''\nsteps: [{id: a, command: b}]\n", 1, 10, "`plan_id` must not be empty"),
        ("plan_id: p\nsteps: [{id: a, command: ''}]\n", 2, 26, "`command` must not be empty"),
        ("plan_id: p\nsteps: []\n", 2, 8, "`steps` must not be empty"),
    ],
)
def test_empty_values(tmp_path: Path, text: str, line: int, col: int, message: str) -> None:
    diagnostic = only(tmp_path, text)
    assert where(diagnostic) == ("empty-value", line, col)
    assert diagnostic.message == message


def test_no_steps_hint(tmp_path: Path) -> None:
    assert only(tmp_path, "plan_id: p\nsteps: []\n").hint == "a plan needs at least one step"


# -- fallback -----------------------------------------------------------------------------------


def test_fallback_policy_without_fallback(tmp_path: Path) -> None:
    diagnostic = only(tmp_path, step_with("on_failure: fallback_step"))
    assert where(diagnostic) == ("missing-key", 5, 17)
    assert diagnostic.message == "`on_failure: fallback_step` needs a `fallback` step id"


@pytest.mark.parametrize(
    ("lines", "line"), [("fallback: rescue", 5), ("on_failure: abort\nfallback: rescue", 6)]
)
def test_fallback_without_the_policy(tmp_path: Path, lines: str, line: int) -> None:
    diagnostic = only(tmp_path, step_with(lines))
    assert where(diagnostic) == ("fallback-without-policy", line, 5)
    assert diagnostic.message == (
        "`fallback` is set but `on_failure` is not `fallback_step`, so it would never run"
    )


def test_fallback_with_a_misspelt_policy_reports_only_the_policy(tmp_path: Path) -> None:
    diagnostic = only(tmp_path, step_with("on_failure: fallback\nfallback: rescue"))
    assert diagnostic.code == "invalid-value"
    assert diagnostic.hint == "did you mean `fallback_step`?"


# -- all together -------------------------------------------------------------------------------

BROKEN = """\
plan_id: p
globals: {max_concurrency: '4', extra: 1}
steps:
  - id: 'a b'
    command: make
    depend_on: [x]
    timeout_sec: 10m
  - command: ''
    on_failure: fallback_step
    env: {1X: y2}
    depends_on: [q, q]
  - 42
"""


def test_many_errors_sorted_and_each_once(tmp_path: Path) -> None:
    found = check(tmp_path, BROKEN)
    assert [(d.code, d.line) for d in found] == [
        ("wrong-type", 2),
        ("unknown-key", 2),
        ("invalid-id", 4),
        ("unknown-key", 6),
        ("wrong-type", 7),
        ("missing-key", 8),
        ("empty-value", 8),
        ("missing-key", 9),
        ("invalid-env-name", 10),
        ("duplicate-item", 11),
        ("wrong-type", 12),
    ]
    assert found == sorted(found, key=Diagnostic.sort_key)


def test_messages_never_show_python_reprs(tmp_path: Path) -> None:
    for diagnostic in check(tmp_path, BROKEN):
        text = diagnostic.message + (diagnostic.hint or "")
        for leak in ("is not valid under", "is not of type", "{'", "[]", "Additional properties"):
            assert leak not in text, diagnostic


# -- the schema itself --------------------------------------------------------------------------


def test_schema_identity_and_draft() -> None:
    schema = plan_schema()
    assert schema["$id"] == "https://plan.dev/schema/plan-1.json"
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    Draft7Validator.check_schema(schema)


def _properties(schema: dict[str, Any], where: str = "") -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    for name, sub in schema.get("properties", {}).items():
        found.append((f"{where}{name}", sub))
        found.extend(_properties(sub, f"{where}{name}."))
    return found


def _all_properties() -> list[tuple[str, dict[str, Any]]]:
    schema = plan_schema()
    step = schema["definitions"]["step"]
    return _properties(schema) + _properties(step, "steps[].")


def test_every_property_has_a_title_and_description() -> None:
    for name, sub in _all_properties():
        assert sub.get("title") and sub.get("description"), name


def test_only_metadata_and_ui_hints_are_open() -> None:
    schema = plan_schema()
    objects = [("plan", schema), ("step", schema["definitions"]["step"])]
    objects += [(name, sub) for name, sub in _all_properties() if sub.get("type") == "object"]
    for name, sub in objects:
        if name in ("metadata", "steps[].ui_hints"):
            assert "additionalProperties" not in sub, name
        elif name.endswith("env"):
            assert sub["additionalProperties"] == {"type": "string"}, name
        elif name == "steps[].matrix":  # any name, each value a list of scalars
            scalars = {"type": ["string", "integer", "number", "boolean"]}
            assert sub["additionalProperties"] == {"type": "array", "minItems": 1, "items": scalars}
            for key in ("include", "exclude"):
                assert sub["properties"][key]["items"]["additionalProperties"] == scalars
        elif name == "steps[].resources":  # any resource name, each amount a positive number
            assert sub["additionalProperties"] == {"type": "number", "exclusiveMinimum": 0}
        elif name == "params":  # any name, each value a strict param declaration
            assert sub["additionalProperties"] == {"$ref": "#/definitions/param"}, name
            assert schema["definitions"]["param"]["additionalProperties"] is False
        else:
            assert sub["additionalProperties"] is False, name


def test_the_fast_check_refuses_keywords_it_does_not_know() -> None:
    with pytest.raises(ValueError, match="anyOf"):
        compile_check({"anyOf": [{"type": "string"}]})


def _reference_validator() -> Any:
    def strict_integer(_checker: object, value: object) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    # jsonschema itself, with `pattern` read as JSON Schema defines it ($ = the end of the string)
    checker = Draft7Validator.TYPE_CHECKER.redefine("integer", strict_integer)
    return validators.extend(ecma_draft7(), type_checker=checker)(plan_schema())


STEP_KEYS = [name for name, _ in _properties(plan_schema()["definitions"]["step"])]
WORDS = st.sampled_from(
    ["", "a", "a", "b c", "abort", "fallback_step", "all_done", "10m", "x" * 130, "A_1", "a\n"]
)
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 102),
    st.floats(-1, 1000, allow_nan=False),
    WORDS,
    st.lists(WORDS, max_size=3),
    st.dictionaries(WORDS, WORDS | st.integers(0, 2), max_size=2),
)


@settings(max_examples=400, deadline=None)
@given(
    st.dictionaries(st.sampled_from([*STEP_KEYS, "bogus"]), VALUES, max_size=6),
    st.booleans(),
)
def test_validation_agrees_with_jsonschema(step: dict[str, Any], with_required: bool) -> None:
    if with_required:
        step = {"id": "s", "command": "c", **step}
    plan = {"plan_id": "p", "steps": [{"id": "ok", "command": "c"}, step]}
    doc = load_document("p.json", json.dumps(plan).encode())
    expected = bool(list(_reference_validator().iter_errors(plan)))
    assert bool(validate_document(doc)) == expected


# --- `pattern` is JSON Schema's (ECMA-262): `$` is the end of the string, not before a newline ---


@pytest.mark.parametrize("value", ["a\n", "a\nb", "\na", "a\r"])
def test_an_id_with_a_newline_is_refused(tmp_path: Path, value: str) -> None:
    found = only(tmp_path, STEP.replace("id: build", f"id: {json.dumps(value)}"))
    assert where(found) == ("invalid-id", 3, 9)
    assert found.message.startswith(f"{value!r} is not a valid step id: it ")


def test_a_param_or_env_name_with_a_final_newline_is_refused(tmp_path: Path) -> None:
    env = check(tmp_path, step_with('env: {"A\\n": x}'))
    params = check(tmp_path, 'params: {"n\\n": {type: string}}\n' + STEP)
    assert env and params


@pytest.mark.parametrize(
    ("plan_id", "problem"),
    [
        ("P\n::error::forged", "it contains '\\n'"),
        ("P\u001b]0;x\u0007", "it contains '\\x1b'"),
        ("-p", "it starts with '-'"),
        ("x" * 129, "it has 129 characters"),
    ],
)
def test_a_plan_id_is_an_identifier(tmp_path: Path, plan_id: str, problem: str) -> None:
    found = only(tmp_path, STEP.replace("plan_id: p", f"plan_id: {json.dumps(plan_id)}"))
    assert where(found) == ("invalid-id", 1, 10)
    assert found.message == f"{plan_id!r} is not a valid plan id: {problem}"


@pytest.mark.parametrize("plan_id", ["PLAN-CHECKIN-001", "2026.1_release", "_x", "a" * 128])
def test_plan_ids_in_use_stay_valid(tmp_path: Path, plan_id: str) -> None:
    assert check(tmp_path, STEP.replace("plan_id: p", f"plan_id: {plan_id}")) == []


def test_ecma_regex_anchors_only_at_the_very_end() -> None:
    assert ecma_regex("^a$").search("a\n") is None
    assert ecma_regex("^a$").search("a") is not None
    assert ecma_regex(r"^[$]\$$").search("$$") is not None  # `$` in a class or escaped stays
