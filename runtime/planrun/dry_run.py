"""`planrun --dry-run`: the executor's loop replayed (planrun.core.replay) with every step
succeeding and every condition true, one line per step as it would start: its command with the
bound params filled in (outputs are not known before a run) and, with a state dir, its reuse
decision."""

from __future__ import annotations

import functools
import os
import shlex
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TextIO

from planrun.core import semantics as sem
from planrun.core.ir import IR
from planrun.core.ir_types import IRStep
from planrun.core.printable import printable
from planrun.core.replay import Replay
from planrun.run_secrets import run_masker, secret_names
from planrun.store.errors import StoreError as StoreError  # what replay_verdicts raises

if TYPE_CHECKING:
    from planrun.reuse import Decider, Verdict
    from planrun.selection import Selection


class DryRun(Replay):
    def __init__(
        self,
        ir: IR,
        out: TextIO,
        params: dict[str, Any],
        selection: Selection | None,
        decider: Decider | None,
    ) -> None:
        # Invariants are not checked: every step succeeds, so none would refuse one.
        rules = sem.rules_from_ir(ir.steps)
        super().__init__(dict(ir.steps_by_id), rules, lambda _step: 0, {}, params, {})
        self.ir = ir
        self.out = out
        self.shown = _shown_params(ir, params)
        self.decider = decider
        if selection is not None:
            self.plan.exclude(set(selection.excluded))

    def _condition_holds(self, step_id: str) -> bool:
        return True

    def _start_step(self, step_id: str) -> None:
        super()._start_step(step_id)
        from planrun.reuse import dry_verdict

        command = _command_line(self.steps[step_id], self.shown)
        verdict = "" if self.decider is None else "  " + dry_verdict(self.decider, step_id).text
        line = f"{printable(step_id)}  ({printable(command)}){printable(verdict)}"
        self.out.write(f"{len(self.order):4}. {line}\n")


def dry_decider(
    ir: IR, state_dir: str, params: dict[str, Any], selection: Selection | None,
    force: frozenset[str] | None, environ: Mapping[str, str] | None = None,
    empty_state_decides: bool = False,
) -> Decider | None:  # fmt: skip
    """The read-only reuse decider of a dry run (planrun.reuse.dry_decider); `environ`: what
    planrun's environment would be [default: this process's]."""
    from planrun.launch import RunContext
    from planrun.reuse import dry_decider as decider

    environ = dict(os.environ if environ is None else environ)
    secrets = secret_names(ir)
    context = RunContext(
        run_id="dry-run", workdir=os.getcwd(), params=params,
        outputs={s.id: {} for s in ir.steps}, environ=environ, all_secrets=secrets,
        masker=run_masker(ir, secrets, environ, params), unavailable={}, kill_grace_sec=0.0,
    )  # fmt: skip
    secret_params = ir.model.secret_params
    needed = selection.needed if selection is not None else frozenset()
    return decider(
        state_dir, ir.steps_by_id, ir.plan_id, context, secret_params, needed, force,
        empty_state_decides,
    )  # fmt: skip


def replay_verdicts(
    ir_data: bytes, state_dir: str, params: dict[str, Any], environ: Mapping[str, str]
) -> Callable[[str], Verdict]:
    """Each step's verdict as `planrun --dry-run --state-dir DIR` with the same params would
    give it (no --only, --from or --force), asked when the step would first start: what `planc
    simulate --state-dir` replays with. The one way planc reaches past planrun.core
    (tests/test_import_graph.py). Raises StoreError for a state dir planrun cannot read."""
    from planrun.core.ir import parse_ir
    from planrun.reuse import dry_verdict

    ir = parse_ir(ir_data)
    decider = dry_decider(ir, state_dir, params, None, frozenset(), environ, True)
    assert decider is not None  # empty_state_decides: never None
    return functools.partial(dry_verdict, decider)


def _shown_params(ir: IR, params: dict[str, Any]) -> dict[str, Any]:
    """The params a dry run fills in: not the secret ones (their placeholders stay)."""
    return {n: v for n, v in params.items() if n not in ir.model.secret_params}


def _command_line(step: IRStep, params: dict[str, Any]) -> str:
    """One line: params substituted, words shell-quoted, newlines shown as `\\n`, clipped."""
    from planrun.core.interpolate import Reference, substitute
    from planrun.launch import format_param

    def resolve(ref: Reference) -> str:
        if ref.kind == "param" and ref.name in params:
            return format_param(params[ref.name])
        scope = (
            f"steps.{ref.step}.outputs" if ref.step else {"param": "params"}.get(ref.kind, "env")
        )
        return f"${{{{ {scope}.{ref.name} }}}}"

    words = [substitute(word, resolve) for word in [step.command, *step.args]]
    text = shlex.join(words).replace("\n", "\\n")
    return text if len(text) <= 72 else text[:69] + "..."
