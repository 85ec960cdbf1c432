"""A fast yes/no check of the IR against ir.schema.json, written out by hand.

jsonschema needs ~0.3 s for a 1,000-step IR (0.8 s with 47,500 dependency edges) plus ~60 ms to
import; this check takes a few milliseconds. `conforms(raw)` is True exactly when the schema
(draft-07, as jsonschema evaluates it) accepts `raw`; tests/runtime/test_ir_shape.py holds the two
against each other on valid and mutated IRs. Where the two could ever differ the check must be the
stricter one: `ir.parse_ir` asks jsonschema whenever this says no, so jsonschema still decides what
is refused and words the error.

The schema file stays the contract: a change to it needs the same change here (the tests fail
otherwise).
"""

from __future__ import annotations

from typing import Any

from planrun.schema_pattern import matcher
from planrun.trigger_rules import NAMES

_TOP_KEYS = frozenset(
    {"ir_version", "compiler", "source", "plan", "globals", "params", "secrets", "steps", "digest"}
)
_INVARIANT_KEYS = frozenset({"source", "kind", "step", "guard"})
_INVARIANT_KINDS = frozenset({"requires", "after", "never"})
_GUARD_STATUSES = frozenset(
    {"success", "failed", "timed_out", "skipped", "upstream_failed", "cancelled"}
)
_WATCH_KEYS = frozenset(
    {"paths", "ignore", "debounce_sec", "interval_sec", "backoff_sec", "max_backoff_sec"}
)
_COMPILER_KEYS = frozenset({"name", "version"})
# Only a plan with a `watch:` section has `watch`, only one with a matrix or a fan-out `groups`,
# only one with `invariants:` has `invariants`.
_OPTIONAL_KEYS = frozenset({"watch", "groups", "invariants"})
_SOURCE_KEYS = frozenset({"path", "sha256"})
_SOURCE_KEYS_INCLUDES = _SOURCE_KEYS | {"includes"}  # only a plan with includes has them
_FILE_KEYS = frozenset({"path", "sha256"})
_GROUP_KEYS = frozenset(
    {"kind", "members", "fail_fast", "max_parallel", "max_items", "over", "location"}
)
_OVER_KEYS = frozenset({"step", "output"})
_PLAN_KEYS = frozenset({"id", "version", "description", "metadata"})
_GLOBAL_KEYS = frozenset(
    {
        "max_concurrency",
        "default_timeout_sec",
        "default_retries",
        "default_retry_delay_sec",
        "heartbeat_timeout_sec",
        "kill_grace_sec",
        "env",
    }
)
_PARAM_KEYS = frozenset({"type", "required", "default", "description", "choices", "secret"})
_PARAM_TYPES = frozenset({"string", "int", "bool"})
_STEP_KEYS = frozenset(
    {
        "id",
        "index",
        "name",
        "description",
        "command",
        "args",
        "cwd",
        "shell",
        "env",
        "secrets",
        "depends_on",
        "dependents",
        "timeout_sec",
        "heartbeat_timeout_sec",
        "retries",
        "retry_delay_sec",
        "retry_backoff",
        "max_retry_delay_sec",
        "critical",
        "trigger_rule",
        "condition",
        "on_failure",
        "fallback",
        "is_fallback",
        "provides",
        "consumes",
        "tags",
        "ui_hints",
        "location",
    }
)
# Present only when the plan declares them: a teardown's `teardown_for`, the fingerprint
# inputs `sources`/`generates` (docs/fingerprints.md); the IR of other plans is unchanged.
_OPTIONAL_STEP_KEYS = frozenset({"teardown_for", "sources", "generates"})
# Optional step keys, present only when the plan gives them (docs/distributed.md).
_PLACEMENT_KEYS = frozenset({"resources", "executor"})
_CONDITION_KEYS = frozenset({"source", "ast"})
_TRIGGER_RULES = frozenset(NAMES)
_ON_FAILURE = frozenset({"abort", "skip_dependents", "continue", "fallback_step"})

# The schema's patterns, read as JSON Schema reads them (`$` is the end of the string).
_SHA256 = matcher(r"^[0-9a-f]{64}$")
_DIGEST = matcher(r"^sha256:[0-9a-f]{64}$")
_STEP_ID = matcher(r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")
_PLAN_ID = matcher(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")

# JSON values come from json.loads, so exact types. As in jsonschema's draft-07 type checker, a
# bool is never an "integer" or a "number", and a float with an integral value is an "integer".
_NUMBER = (int, float)
_SCALAR_DEFAULT = (str, int, bool, type(None))
_SCALAR_CHOICE = (str, int, bool)


def conforms(raw: Any) -> bool:
    """Whether `raw` (parsed JSON) is valid against ir.schema.json."""
    if type(raw) is not dict or not _TOP_KEYS <= raw.keys() <= _TOP_KEYS | _OPTIONAL_KEYS:
        return False
    if "watch" in raw and not _watch(raw["watch"]):
        return False
    if "invariants" in raw and not _invariants(raw["invariants"]):
        return False
    if "groups" in raw and not _groups(raw["groups"]):
        return False
    version = raw["ir_version"]  # const 1: jsonschema's equality, so 1.0 too but never true
    if type(version) not in _NUMBER or version != 1:
        return False
    digest = raw["digest"]
    if type(digest) is not str or not _DIGEST(digest):
        return False
    steps = raw["steps"]
    return (
        _compiler(raw["compiler"])
        and _source(raw["source"])
        and _plan(raw["plan"])
        and _globals(raw["globals"])
        and _params(raw["params"])
        and _ids(raw["secrets"])
        and type(steps) is list
        and len(steps) >= 1
        and all(_step(step) for step in steps)
    )


def _compiler(value: Any) -> bool:
    return (
        type(value) is dict
        and value.keys() == _COMPILER_KEYS
        and type(value["name"]) is str
        and type(value["version"]) is str
    )


def _source(value: Any) -> bool:
    if type(value) is not dict or value.keys() not in (_SOURCE_KEYS, _SOURCE_KEYS_INCLUDES):
        return False
    includes = value.get("includes", [])
    if type(includes) is not list or not all(
        type(f) is dict and f.keys() == _FILE_KEYS and _file(f) for f in includes
    ):
        return False
    return _file(value)


def _file(value: dict[str, Any]) -> bool:
    sha = value["sha256"]
    return type(value["path"]) is str and type(sha) is str and _SHA256(sha)


def _groups(value: Any) -> bool:
    if type(value) is not dict:
        return False
    for name, group in value.items():
        if not _STEP_ID(name) or type(group) is not dict or group.keys() != _GROUP_KEYS:
            return False
        members, over = group["members"], group["over"]
        if (
            group["kind"] not in ("matrix", "for_each")
            or type(members) is not list
            or not all(type(m) is str and _STEP_ID(m) for m in members)
            or type(group["fail_fast"]) is not bool
            or not all(_optional_count(group[k]) for k in ("max_parallel", "max_items"))
            or type(group["location"]) is not str
        ):
            return False
        if over is not None and not (
            type(over) is dict
            and over.keys() == _OVER_KEYS
            and type(over["step"]) is str
            and _STEP_ID(over["step"])
            and type(over["output"]) is str
        ):
            return False
    return True


def _optional_count(value: Any) -> bool:
    if value is None:
        return True
    is_int = type(value) is int or (type(value) is float and value.is_integer())
    return is_int and value >= 1


def _plan(value: Any) -> bool:
    if type(value) is not dict or value.keys() != _PLAN_KEYS:
        return False
    plan_id = value["id"]
    return (
        type(plan_id) is str
        and _PLAN_ID(plan_id)
        and type(value["version"]) is str
        and type(value["description"]) is str
        and type(value["metadata"]) is dict
    )


def _globals(value: Any) -> bool:
    if type(value) is not dict or value.keys() != _GLOBAL_KEYS:
        return False
    return (
        _int_at_least(value["max_concurrency"], 1)
        and _positive_or_null(value["default_timeout_sec"])
        and _int_at_least(value["default_retries"], 0)
        and _number_at_least(value["default_retry_delay_sec"], 0)
        and _positive_or_null(value["heartbeat_timeout_sec"])
        and _number_at_least(value["kill_grace_sec"], 0)
        and _env(value["env"])
    )


def _invariants(value: Any) -> bool:
    return type(value) is list and all(
        type(item) is dict
        and item.keys() == _INVARIANT_KEYS
        and type(item["source"]) is str
        and type(item["step"]) is str
        and type(item["kind"]) is str
        and item["kind"] in _INVARIANT_KINDS
        and _guard(item["guard"], 0)
        for item in value
    )


def _guard(value: Any, depth: int) -> bool:
    """planc nests guards at most ~100 deep: deeper is not planc's IR (and would recurse)."""
    if type(value) is not dict or depth > 200:
        return False
    kind = value.get("kind")
    if kind == "status":
        return (
            value.keys() == {"kind", "step", "status"}
            and type(value["step"]) is str
            and type(value["status"]) is str
            and value["status"] in _GUARD_STATUSES
        )
    if kind == "not":
        return value.keys() == {"kind", "operand"} and _guard(value["operand"], depth + 1)
    if kind in ("and", "or"):
        operands = value.get("operands")
        return (
            value.keys() == {"kind", "operands"}
            and type(operands) is list
            and len(operands) >= 2
            and all(_guard(o, depth + 1) for o in operands)
        )
    return False


def _watch(value: Any) -> bool:
    if type(value) is not dict or value.keys() != _WATCH_KEYS:
        return False
    debounce = value["debounce_sec"]
    return (
        _paths(value["paths"])
        and _paths(value["ignore"])
        and _number_at_least(debounce, 0)
        and debounce <= 3600
        and _positive_or_null(value["interval_sec"])
        and _number_at_least(value["backoff_sec"], 0)
        and _number_at_least(value["max_backoff_sec"], 0)
    )


def _paths(value: Any) -> bool:
    return _ids(value) and all(len(item) >= 1 for item in value)


def _params(value: Any) -> bool:
    return type(value) is dict and all(_param(param) for param in value.values())


def _param(value: Any) -> bool:
    if type(value) is not dict or value.keys() != _PARAM_KEYS:
        return False
    kind, choices = value["type"], value["choices"]
    return (
        type(kind) is str
        and kind in _PARAM_TYPES
        and type(value["required"]) is bool
        and _scalar(value["default"], _SCALAR_DEFAULT)
        and type(value["description"]) is str
        and type(value["secret"]) is bool
        and (
            choices is None
            or (type(choices) is list and all(_scalar(c, _SCALAR_CHOICE) for c in choices))
        )
    )


def _scalar(value: Any, types: tuple[type, ...]) -> bool:
    """One of `types` (where int stands for "integer")."""
    return type(value) in types or (type(value) is float and value.is_integer())


def _step(step: Any) -> bool:
    # Optional keys are present only when the plan gives them: the IR of other plans is unchanged.
    optional = _OPTIONAL_STEP_KEYS | _PLACEMENT_KEYS
    if type(step) is not dict or step.keys() - optional != _STEP_KEYS:
        return False
    if not _placement(step):
        return False
    teardown_for = step.get("teardown_for")
    if teardown_for is not None and (type(teardown_for) is not str or not _STEP_ID(teardown_for)):
        return False
    step_id, command = step["id"], step["command"]
    trigger, on_failure = step["trigger_rule"], step["on_failure"]
    fallback = step["fallback"]
    return (
        type(step_id) is str
        and _STEP_ID(step_id)
        and _int_at_least(step["index"], 0)
        and type(step["name"]) is str
        and type(step["description"]) is str
        and type(command) is str
        and len(command) >= 1
        and _ids(step["args"])
        and type(step["cwd"]) is str
        and type(step["shell"]) is bool
        and _env(step["env"])
        and _ids(step["secrets"])
        and _ids(step["depends_on"])
        and _ids(step["dependents"])
        and _positive_or_null(step["timeout_sec"])
        and _positive_or_null(step["heartbeat_timeout_sec"])
        and _int_at_least(step["retries"], 0)
        and _number_at_least(step["retry_delay_sec"], 0)
        and _number_at_least(step["retry_backoff"], 1)
        and _number_at_least_or_null(step["max_retry_delay_sec"], 0)
        and type(step["critical"]) is bool
        and type(trigger) is str
        and trigger in _TRIGGER_RULES
        and _condition(step["condition"])
        and type(on_failure) is str
        and on_failure in _ON_FAILURE
        and (fallback is None or type(fallback) is str)
        and type(step["is_fallback"]) is bool
        and _ids(step["provides"])
        and _ids(step.get("sources", []))
        and _ids(step.get("generates", []))
        and _ids(step["consumes"])
        and _ids(step["tags"])
        and type(step["ui_hints"]) is dict
        and type(step["location"]) is str
    )


def _placement(step: dict[str, Any]) -> bool:
    resources = step.get("resources", {})
    return (
        type(resources) is dict
        and all(type(v) in (int, float) and v > 0 for v in resources.values())
        and step.get("executor", "local") == "local"
    )


def _condition(value: Any) -> bool:
    return value is None or (
        type(value) is dict
        and value.keys() == _CONDITION_KEYS
        and type(value["source"]) is str
        and type(value["ast"]) is dict
    )


def _ids(value: Any) -> bool:
    """An array of strings (also `args`)."""
    return type(value) is list and all(type(item) is str for item in value)


def _env(value: Any) -> bool:
    return type(value) is dict and all(type(item) is str for item in value.values())


def _int_at_least(value: Any, minimum: int) -> bool:
    kind = type(value)
    return (kind is int or (kind is float and value.is_integer())) and value >= minimum


def _number_at_least(value: Any, minimum: int) -> bool:
    return type(value) in _NUMBER and value >= minimum


def _number_at_least_or_null(value: Any, minimum: int) -> bool:
    return value is None or (type(value) in _NUMBER and value >= minimum)


def _positive_or_null(value: Any) -> bool:
    return value is None or (type(value) in _NUMBER and value > 0)
