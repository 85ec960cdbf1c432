"""Load and verify a compiled IR: JSON, schema, version, digest, graph integrity."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any

from planrun.core.byvalue import ByValue
from planrun.core.ir_types import IR_VERSION, IRGlobals, IRPlan, IRStep
from planrun.core.reads import MAX_IR_BYTES, InputTooLarge, read_bounded
from planrun.core.schema_check import Check, compile_check

__all__ = ["IR", "IR_VERSION", "IRError", "load_ir", "parse_if_ir", "parse_ir"]


class IRError(Exception):
    """The IR cannot be run; the message says why in one line."""


@dataclass(frozen=True, eq=False, repr=False)
class IR(ByValue):
    """A checked IR file: its bytes, the parsed document and the typed IR (`model`)."""

    raw: dict[str, Any]
    data: bytes
    model: IRPlan

    @property
    def digest(self) -> str:
        return str(self.raw["digest"])

    @property
    def plan_id(self) -> str:
        return self.model.id

    @property
    def steps(self) -> tuple[IRStep, ...]:
        return self.model.steps

    @cached_property
    def steps_by_id(self) -> dict[str, IRStep]:
        return {step.id: step for step in self.model.steps}

    @property
    def globals(self) -> IRGlobals:
        return self.model.globals


def canonical_text(value: object) -> str:
    """The one serialisation the digest is computed over (docs/ir.md, "Canonical form")."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_json(value: object) -> bytes:
    return canonical_text(value).encode("utf-8")


def compute_digest(ir_without_digest: dict[str, Any]) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(ir_without_digest)).hexdigest()


@cache
def ir_schema() -> dict[str, Any]:
    """ir.schema.json, the one statement of the IR's shape (docs/ir.md)."""
    # Next to this module, as the package ships it; not through importlib.resources, whose
    # import costs more than reading the file.
    with open(os.path.join(os.path.dirname(__file__), "ir.schema.json"), encoding="utf-8") as f:
        schema: dict[str, Any] = json.load(f)
    return schema


@cache
def _ir_check() -> Check:
    return compile_check(ir_schema(), float_integers=True)


def conforms(raw: Any) -> bool:
    """Whether `raw` (parsed JSON) is valid against ir.schema.json, as jsonschema would say."""
    try:
        return _ir_check()(raw)
    except RecursionError:  # nested deeper than any IR planc writes: not one
        return False


def _refuse_constant(name: str) -> float:
    raise IRError(f"invalid IR: {name} is not valid JSON")


def load_ir(path: str) -> IR:
    try:
        data = read_bounded(path, MAX_IR_BYTES)
    except InputTooLarge as exc:
        raise IRError(str(exc)) from None
    except OSError as exc:
        raise IRError(f"cannot read IR {path}: {exc.strerror or exc}") from None
    return parse_ir(data, path)


def parse_ir(data: bytes, path: str = "<ir>") -> IR:
    try:
        raw = json.loads(data.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise IRError(f"{path}: not a JSON IR file ({exc})") from None
    return _checked(raw, data, path)


def parse_if_ir(data: bytes, path: str = "<ir>") -> IR | None:
    """`parse_ir(data)` if `data` is an IR (a JSON object with `ir_version`), else None (e.g. a
    plan file); parses the JSON once. Raises IRError like parse_ir for an IR it refuses."""
    if data.lstrip()[:1] != b"{":
        return None
    constants: list[str] = []
    try:
        raw = json.loads(data.decode("utf-8"), parse_constant=_noting(constants))
    except (ValueError, RecursionError):  # not UTF-8 or not JSON: the careful path decides
        constants.append("")
    if constants:  # NaN/Infinity, or an error: parse_ir's wording, or not an IR at all
        return parse_ir(data, path) if _looks_like_ir(data) else None
    if not isinstance(raw, dict) or "ir_version" not in raw:
        return None
    return _checked(raw, data, path)


def _noting(seen: list[str]) -> Callable[[str], float]:
    def note(name: str) -> float:
        seen.append(name)
        return float(name)

    return note


def _looks_like_ir(data: bytes) -> bool:
    """An IR is a JSON object with `ir_version`; plans never have that key."""
    if data.lstrip()[:1] != b"{":
        return False
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        return False
    return isinstance(value, dict) and "ir_version" in value


def _checked(raw: Any, data: bytes, path: str) -> IR:
    if not isinstance(raw, dict):
        raise IRError(f"{path}: not an IR (expected a JSON object)")
    version = raw.get("ir_version")
    if version != IR_VERSION:
        raise IRError(
            f"{path}: unsupported ir_version {version!r}; this planrun runs ir_version {IR_VERSION}"
            " (recompile the plan with a matching planc)"
        )
    _validate_schema(raw, path)
    _verify_digest(raw, data, path)
    _verify_graph(raw, path)
    return IR(raw, data, IRPlan.from_json(raw))


def _validate_schema(raw: dict[str, Any], path: str) -> None:
    if conforms(raw):  # the fast check (schema_check.py); jsonschema decides and words a refusal
        return
    import jsonschema  # deferred: costly to import, and only needed for an invalid IR

    from planrun.core.schema_pattern import ecma_draft7

    try:
        error = jsonschema.exceptions.best_match(ecma_draft7()(ir_schema()).iter_errors(raw))
    except RecursionError:  # a guard nested hundreds deep: no planc writes one
        raise IRError(f"{path}: invalid IR: nested too deeply") from None
    if error is None:  # the two checks agree (tests/runtime/test_ir_check.py): never trust one
        raise IRError(f"{path}: invalid IR (it does not match ir.schema.json)")
    where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
    raise IRError(f"{path}: invalid IR at {where}: {error.message}")


def _verify_digest(raw: dict[str, Any], data: bytes, path: str) -> None:
    if _canonical_file_matches(raw["digest"], data):
        return
    body = {k: v for k, v in raw.items() if k != "digest"}
    actual = compute_digest(body)
    if actual != raw["digest"]:
        raise IRError(
            f"{path}: digest mismatch: the IR says {raw['digest']} but its content hashes to "
            f"{actual}; the file was modified after planc compiled it (recompile the plan)"
        )


def _canonical_file_matches(digest: str, data: bytes) -> bool:
    """The fast digest check: `data` as planc writes it (canonical JSON, `"digest"` member
    included, one final newline) hashes to `digest` once that member is taken out.

    Sound without re-serialising: the remaining bytes hash to `digest`, so they are the very
    bytes planc hashed, canonical JSON of the IR body (they cannot contain the digest itself,
    which is their own hash); and `digest` occurs in `data` exactly once, in the top-level member
    json.loads read it from. So the parsed IR is that body plus its digest, which is what the
    slow check (re-serialise, hash) would accept. Any other file (reformatted, edited) takes the
    slow check."""
    member = b',"digest":"' + digest.encode() + b'"'
    if data.count(member) != 1 or not data.endswith(b"}\n"):
        return False
    head, tail = data[:-1].split(member)
    return "sha256:" + hashlib.sha256(head + tail).hexdigest() == digest


def _verify_graph(raw: dict[str, Any], path: str) -> None:
    """What the schema cannot say: ids unique, edges known, topological, symmetric."""
    seen: dict[str, set[str]] = {}  # step id -> its dependencies
    for step in raw["steps"]:
        step_id = step["id"]
        if step_id in seen:
            raise IRError(f"{path}: invalid IR: duplicate step id {step_id!r}")
        deps = set(step["depends_on"])
        if not seen.keys() >= deps:
            dep = next(d for d in step["depends_on"] if d not in seen)
            raise IRError(
                f"{path}: invalid IR: step {step_id!r} depends on {dep!r}, which is not an "
                "earlier step (the IR must be in topological order)"
            )
        seen[step_id] = deps
    for step in raw["steps"]:
        for child in step["dependents"]:
            if child not in seen or step["id"] not in seen[child]:
                wrong = f"{step['id']!r} lists a wrong dependent {child!r}"
                raise IRError(f"{path}: invalid IR: {wrong}")
        fallback = step["fallback"]
        if fallback is not None and fallback not in seen:
            raise IRError(f"{path}: invalid IR: unknown fallback {fallback!r} of {step['id']!r}")
