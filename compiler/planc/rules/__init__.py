"""Semantic rules, one per module, run in the order listed here. Each sees the checked plan
(base.RuleContext) and yields positioned diagnostics; may import planc's stages and planrun.core."""

from __future__ import annotations

from types import ModuleType

from planc.rules import (
    conditions,
    dataflow,
    dependency_cycle,
    duplicate_ids,
    fallbacks,
    fan_out,
    file_globs,
    invariants,
    nul_characters,
    portability,
    resources,
    trigger_rules,
    unknown_dependency,
)
from planc.rules.base import Rule

RULE_MODULES: tuple[ModuleType, ...] = (
    duplicate_ids,
    unknown_dependency,
    resources,
    dependency_cycle,
    fallbacks,
    trigger_rules,
    conditions,
    dataflow,
    fan_out,
    invariants,
    nul_characters,
    portability,
    file_globs,
)

RULES: tuple[Rule, ...] = tuple(module.check for module in RULE_MODULES)
