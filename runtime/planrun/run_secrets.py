"""A run's secrets and its masker, read from the IR; the masking code is imported only for a plan
that has secrets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from planrun.core.ir import IR
from planrun.core.params import ParamValue

if TYPE_CHECKING:
    from planrun.masking import Masker


def secret_names(ir: IR) -> frozenset[str]:
    """Every secret of the plan, declared at plan level or on any step."""
    return frozenset(ir.model.secrets).union(*(s.secrets for s in ir.steps))


def run_masker(
    ir: IR, secrets: frozenset[str], environ: Mapping[str, str], params: Mapping[str, ParamValue]
) -> Masker | None:
    """The run's masker (planrun.secrecy), None when there is nothing to mask: a plan without
    secrets or secret params does not even import the masking code."""
    if not secrets and not ir.model.secret_params:
        return None
    from planrun.secrecy import run_masker as build

    return build(sorted(secrets), ir.model.params, environ, params)
