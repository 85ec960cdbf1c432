"""The IR as typed values: `IRPlan` and its `IRStep`s, built by planc's lowering and by
`ir.parse_ir`, and written back by `to_json` (docs/ir.md).

ir.schema.json stays the one statement of the IR's shape (checked by `ir.conforms` before
`from_json` reads a document); these classes are what the code reads instead of `step["…"]`.
Keys the IR has only when a plan uses them (`teardown_for`, `sources`, `watch`, `groups`…) are
None here when absent, so that `to_json` gives back the very document, byte for byte once
serialised canonically.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from planrun.core.byvalue import ByValue
from planrun.core.trigger_rules import TriggerRule

IR_VERSION = 1
# A step's id, as ir.schema.json's step `id` pattern says (planc, `planrun exec --name`).
STEP_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,127}")


class OnFailure(StrEnum):
    """A step's failure policy (docs/semantics.md §2)."""

    ABORT = "abort"
    SKIP_DEPENDENTS = "skip_dependents"
    CONTINUE = "continue"
    FALLBACK_STEP = "fallback_step"

    @property
    def is_tolerated(self) -> bool:
        """The failure does not count as one for the dependents' trigger rules."""
        return self is OnFailure.CONTINUE

    @property
    def may_recover(self) -> bool:
        """The step's failure may still be made good (a group's fail-fast waits for it)."""
        return self in (OnFailure.CONTINUE, OnFailure.FALLBACK_STEP)


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class IRGlobals(ByValue):
    max_concurrency: int
    default_timeout_sec: float | None
    default_retries: int
    default_retry_delay_sec: float
    heartbeat_timeout_sec: float | None
    kill_grace_sec: float
    env: Mapping[str, str]

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> IRGlobals:
        return cls(**{**raw, "env": dict(raw["env"])})

    def to_json(self) -> dict[str, Any]:
        return {
            "max_concurrency": self.max_concurrency,
            "default_timeout_sec": self.default_timeout_sec,
            "default_retries": self.default_retries,
            "default_retry_delay_sec": self.default_retry_delay_sec,
            "heartbeat_timeout_sec": self.heartbeat_timeout_sec,
            "kill_grace_sec": self.kill_grace_sec,
            "env": dict(self.env),
        }


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class IRStep(ByValue):
    id: str
    index: int
    name: str
    description: str
    command: str
    args: tuple[str, ...]
    cwd: str
    shell: bool
    env: Mapping[str, str]
    secrets: tuple[str, ...]
    depends_on: tuple[str, ...]
    dependents: tuple[str, ...]
    timeout_sec: float | None
    heartbeat_timeout_sec: float | None
    retries: int
    retry_delay_sec: float
    retry_backoff: float
    max_retry_delay_sec: float | None
    critical: bool
    trigger_rule: TriggerRule
    condition: Mapping[str, Any] | None  # {"source", "ast"}: the condition AST's JSON
    on_failure: OnFailure
    fallback: str | None
    is_fallback: bool
    provides: tuple[str, ...]
    consumes: tuple[str, ...]
    tags: tuple[str, ...]
    ui_hints: Mapping[str, Any]
    location: str
    # In the IR only when the plan gives them (docs/ir.md): None when absent.
    teardown_for: str | None = None
    sources: tuple[str, ...] | None = None
    generates: tuple[str, ...] | None = None
    resources: Mapping[str, float] | None = None
    executor: str | None = None

    @property
    def is_cleanup(self) -> bool:
        """Runs despite failed dependencies: a fallback, a teardown or a cleanup rule (§5)."""
        return self.is_fallback or self.teardown_for is not None or self.trigger_rule.is_cleanup

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> IRStep:
        """A step of an IR that conforms to ir.schema.json."""
        get = raw.get
        return cls(
            id=raw["id"],
            index=raw["index"],
            name=raw["name"],
            description=raw["description"],
            command=raw["command"],
            args=tuple(raw["args"]),
            cwd=raw["cwd"],
            shell=raw["shell"],
            env=dict(raw["env"]),
            secrets=tuple(raw["secrets"]),
            depends_on=tuple(raw["depends_on"]),
            dependents=tuple(raw["dependents"]),
            timeout_sec=raw["timeout_sec"],
            heartbeat_timeout_sec=raw["heartbeat_timeout_sec"],
            retries=raw["retries"],
            retry_delay_sec=raw["retry_delay_sec"],
            retry_backoff=raw["retry_backoff"],
            max_retry_delay_sec=raw["max_retry_delay_sec"],
            critical=raw["critical"],
            trigger_rule=_RULES[raw["trigger_rule"]],
            condition=raw["condition"],
            on_failure=_POLICIES[raw["on_failure"]],
            fallback=raw["fallback"],
            is_fallback=raw["is_fallback"],
            provides=tuple(raw["provides"]),
            consumes=tuple(raw["consumes"]),
            tags=tuple(raw["tags"]),
            ui_hints=raw["ui_hints"],
            location=raw["location"],
            teardown_for=get("teardown_for"),
            sources=_optional_tuple(get("sources")),
            generates=_optional_tuple(get("generates")),
            resources=get("resources"),
            executor=get("executor"),
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "index": self.index,
            "name": self.name,
            "description": self.description,
            "command": self.command,
            "args": list(self.args),
            "cwd": self.cwd,
            "shell": self.shell,
            "env": dict(self.env),
            "secrets": list(self.secrets),
            "depends_on": list(self.depends_on),
            "dependents": list(self.dependents),
            "timeout_sec": self.timeout_sec,
            "heartbeat_timeout_sec": self.heartbeat_timeout_sec,
            "retries": self.retries,
            "retry_delay_sec": self.retry_delay_sec,
            "retry_backoff": self.retry_backoff,
            "max_retry_delay_sec": self.max_retry_delay_sec,
            "critical": self.critical,
            "trigger_rule": str(self.trigger_rule),
            "condition": self.condition,
            "on_failure": str(self.on_failure),
            "fallback": self.fallback,
            "is_fallback": self.is_fallback,
            "provides": list(self.provides),
            "consumes": list(self.consumes),
            "tags": list(self.tags),
            "ui_hints": self.ui_hints,
            "location": self.location,
        }
        for key in _OPTIONAL_STEP_KEYS:
            value = getattr(self, key)
            if value is not None:
                out[key] = list(value) if isinstance(value, tuple) else value
        return out


# By value: a dict lookup, where calling the enum costs a step's load a tenth of its time.
_RULES = {rule.value: rule for rule in TriggerRule}
_POLICIES = {policy.value: policy for policy in OnFailure}
_OPTIONAL_STEP_KEYS = ("teardown_for", "sources", "generates", "resources", "executor")


def _optional_tuple(value: Any) -> tuple[str, ...] | None:
    return None if value is None else tuple(value)


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class IRPlan(ByValue):
    """An IR without its digest (which `planc.emit` computes and `ir.IR` checks)."""

    compiler: Mapping[str, str]  # {"name", "version"}
    source: Mapping[str, Any]  # {"path", "sha256"} and, with includes, "includes"
    plan: Mapping[str, Any]  # {"id", "version", "description", "metadata"}
    globals: IRGlobals
    params: Mapping[str, Mapping[str, Any]]  # each param with every field resolved
    secrets: tuple[str, ...]
    steps: tuple[IRStep, ...]
    # Only in the IR of a plan that uses them: `watch:`, matrices or fan-outs, `invariants:`.
    watch: Mapping[str, Any] | None = None
    groups: Mapping[str, Mapping[str, Any]] | None = None
    invariants: tuple[Mapping[str, Any], ...] | None = None
    ir_version: int = IR_VERSION

    @property
    def id(self) -> str:
        return str(self.plan["id"])

    @property
    def secret_params(self) -> frozenset[str]:
        """The params declared `secret: true` (their values are masked everywhere)."""
        return frozenset(name for name, spec in self.params.items() if spec["secret"])

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> IRPlan:
        """An IR that conforms to ir.schema.json (its `digest`, if any, is left out)."""
        invariants = raw.get("invariants")
        return cls(
            ir_version=raw["ir_version"],
            compiler=raw["compiler"],
            source=raw["source"],
            plan=raw["plan"],
            globals=IRGlobals.from_json(raw["globals"]),
            params=raw["params"],
            secrets=tuple(raw["secrets"]),
            steps=tuple(IRStep.from_json(step) for step in raw["steps"]),
            watch=raw.get("watch"),
            groups=raw.get("groups"),
            invariants=None if invariants is None else tuple(invariants),
        )

    def to_json(self) -> dict[str, Any]:
        """The IR document without its digest, as planc emits it (docs/ir.md)."""
        out: dict[str, Any] = {
            "ir_version": self.ir_version,
            "compiler": self.compiler,
            "source": self.source,
            "plan": self.plan,
            "globals": self.globals.to_json(),
            "params": self.params,
            "secrets": list(self.secrets),
            "steps": [step.to_json() for step in self.steps],
        }
        if self.watch is not None:
            out["watch"] = self.watch
        if self.groups is not None:
            out["groups"] = self.groups
        if self.invariants is not None:
            out["invariants"] = list(self.invariants)
        return out
