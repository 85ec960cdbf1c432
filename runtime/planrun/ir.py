"""Load and verify a compiled IR: JSON, schema, version, digest, graph integrity."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

IR_VERSION = 1


class IRError(Exception):
    """The IR cannot be run; the message says why in one line."""


@dataclass(frozen=True)
class IR:
    raw: dict[str, Any]
    data: bytes

    @property
    def digest(self) -> str:
        return str(self.raw["digest"])

    @property
    def plan_id(self) -> str:
        return str(self.raw["plan"]["id"])

    @property
    def steps(self) -> list[dict[str, Any]]:
        steps: list[dict[str, Any]] = self.raw["steps"]
        return steps

    @property
    def globals(self) -> dict[str, Any]:
        value: dict[str, Any] = self.raw["globals"]
        return value


def canonical_json(value: object) -> bytes:
    """The one serialisation the digest is computed over (docs/ir.md, "Canonical form")."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def compute_digest(ir_without_digest: dict[str, Any]) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(ir_without_digest)).hexdigest()


@cache
def ir_schema() -> dict[str, Any]:
    text = files("planrun").joinpath("ir.schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def _refuse_constant(name: str) -> float:
    raise IRError(f"invalid IR: {name} is not valid JSON")


def load_ir(path: str) -> IR:
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise IRError(f"cannot read IR {path}: {exc.strerror or exc}") from None
    return parse_ir(data, path)


def parse_ir(data: bytes, path: str = "<ir>") -> IR:
    try:
        raw = json.loads(data.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise IRError(f"{path}: not a JSON IR file ({exc})") from None
    if not isinstance(raw, dict):
        raise IRError(f"{path}: not an IR (expected a JSON object)")
    version = raw.get("ir_version")
    if version != IR_VERSION:
        raise IRError(
            f"{path}: unsupported ir_version {version!r}; this planrun runs ir_version {IR_VERSION}"
            " (recompile the plan with a matching planc)"
        )
    _validate_schema(raw, path)
    _verify_digest(raw, path)
    _verify_graph(raw, path)
    return IR(raw, data)


def _validate_schema(raw: dict[str, Any], path: str) -> None:
    import jsonschema  # deferred: only needed once per run, and costly to import

    error = jsonschema.exceptions.best_match(
        jsonschema.Draft7Validator(ir_schema()).iter_errors(raw)
    )
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise IRError(f"{path}: invalid IR at {where}: {error.message}")


def _verify_digest(raw: dict[str, Any], path: str) -> None:
    body = {k: v for k, v in raw.items() if k != "digest"}
    actual = compute_digest(body)
    if actual != raw["digest"]:
        raise IRError(
            f"{path}: digest mismatch: the IR says {raw['digest']} but its content hashes to "
            f"{actual}; the file was modified after planc compiled it (recompile the plan)"
        )


def _verify_graph(raw: dict[str, Any], path: str) -> None:
    """What the schema cannot say: ids unique, edges known, topological, symmetric."""
    seen: dict[str, dict[str, Any]] = {}
    for step in raw["steps"]:
        step_id = step["id"]
        if step_id in seen:
            raise IRError(f"{path}: invalid IR: duplicate step id {step_id!r}")
        for dep in step["depends_on"]:
            if dep not in seen:
                raise IRError(
                    f"{path}: invalid IR: step {step_id!r} depends on {dep!r}, which is not an "
                    "earlier step (the IR must be in topological order)"
                )
        seen[step_id] = step
    for step in raw["steps"]:
        for child in step["dependents"]:
            if child not in seen or step["id"] not in seen[child]["depends_on"]:
                wrong = f"{step['id']!r} lists a wrong dependent {child!r}"
                raise IRError(f"{path}: invalid IR: {wrong}")
        fallback = step["fallback"]
        if fallback is not None and fallback not in seen:
            raise IRError(f"{path}: invalid IR: unknown fallback {fallback!r} of {step['id']!r}")
