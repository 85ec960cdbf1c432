"""What one attempt runs with: argv, cwd and environment, placeholders resolved, secrets
given only to the steps that declare them (docs/dataflow.md)."""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping, Set
from dataclasses import dataclass
from typing import TYPE_CHECKING

from planrun.core.byvalue import ByValue
from planrun.core.interpolate import Reference, substitute
from planrun.core.launcher import LaunchSpec
from planrun.core.params import ParamValue

if TYPE_CHECKING:  # only plans with secrets have a masker
    from planrun.core.ir_types import IRStep
    from planrun.masking import Masker


class LaunchError(Exception):
    """The attempt cannot start (e.g. an output it reads is not set); one human line, and the
    command line when it was the problem (recorded, masked, in step_started)."""

    def __init__(self, message: str, argv: list[str] | None = None) -> None:
        super().__init__(message)
        self.argv = argv


@dataclass(frozen=True, eq=False, repr=False)
class RunContext(ByValue):
    run_id: str
    workdir: str
    params: Mapping[str, ParamValue]
    outputs: Mapping[str, Mapping[str, str]]  # step id -> its recorded outputs
    environ: Mapping[str, str]
    all_secrets: frozenset[str]
    masker: Masker | None  # every secret value of the run (planrun.secrecy)
    # step id -> its secret outputs recorded by an earlier planrun process: masked in the store,
    # so their values are not there to hand on (docs/dataflow.md, "Secrets")
    unavailable: Mapping[str, Set[str]]
    kill_grace_sec: float
    echo_fds: tuple[int, int] | None = None  # planrun exec: output also to these (LaunchSpec)
    item: str | None = None  # `${{ item }}` of an instance of a for_each step (fanout.py)


@dataclass(frozen=True, eq=False, repr=False)
class AttemptFiles(ByValue):
    stdout: str  # absolute paths (a step may run in any cwd)
    stderr: str
    outputs: str
    dir_fd: int | None = None  # their directory (RunStore.log_dir_fd)


def launch_spec(step: IRStep, attempt: int, ctx: RunContext, files: AttemptFiles) -> LaunchSpec:
    def resolve(ref: Reference) -> str:
        return _resolve(ref, step, ctx)

    try:
        command = substitute(step.command, resolve)
        args = [substitute(arg, resolve) for arg in step.args]
        cwd = substitute(step.cwd, resolve)
        step_env = {name: substitute(value, resolve) for name, value in step.env.items()}
    except ValueError as exc:
        raise LaunchError(str(exc)) from None
    argv = _argv(command, args, step.shell)
    cwd = os.path.abspath(os.path.join(ctx.workdir, cwd))
    if ctx.masker is not None:
        _refuse_secret_in_argv(argv, cwd, ctx.masker)
    return LaunchSpec(
        argv=argv,
        cwd=cwd,
        env=_environment(step, attempt, ctx, step_env, files.outputs),
        stdout_path=files.stdout,
        stderr_path=files.stderr,
        timeout_sec=step.timeout_sec,
        heartbeat_timeout_sec=step.heartbeat_timeout_sec,
        kill_grace_sec=ctx.kill_grace_sec,
        mask_patterns=ctx.masker.patterns if ctx.masker is not None else (),
        echo_fds=ctx.echo_fds,
        log_dir_fd=files.dir_fd,
    )


def format_param(value: ParamValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _resolve(ref: Reference, step: IRStep, ctx: RunContext) -> str:
    if ref.kind == "param":
        return format_param(ctx.params.get(ref.name))
    if ref.kind == "env":
        if ref.name in ctx.all_secrets and ref.name not in step.secrets:
            # planc refuses this (secret-out-of-scope); an IR made by hand gets no further.
            raise LaunchError(f"secret {ref.name} is not given to step {step.id}")
        return ctx.environ.get(ref.name, "")
    if ref.kind == "item":
        if ctx.item is None:
            raise LaunchError("`${{ item }}` is only set in an instance of a for_each step")
        return ctx.item
    assert ref.step is not None
    if ref.name in ctx.unavailable.get(ref.step, ()):
        raise LaunchError(
            f"output {ref.name} of step {ref.step} holds a secret, which planrun keeps only in"
            f" the process that ran {ref.step}, not in the state dir; run it again with the"
            f" steps that read it (planrun PLAN --from {ref.step})"
        )
    value = ctx.outputs.get(ref.step, {}).get(ref.name)
    if value is None:
        raise LaunchError(f"output {ref.name} of step {ref.step} is not set")
    return value


def _refuse_secret_in_argv(argv: list[str], cwd: str, masker: Masker) -> None:
    """Defence in depth behind planc's secret-in-args: a command line is visible to every user
    of the machine (`ps`), so one holding a secret is never started."""
    for index, word in enumerate(argv):
        if masker.holds_secret(word):
            raise LaunchError(
                f"argument {index} of the command line holds a secret; not started (pass"
                " secrets and values holding them through `env:`)",
                argv,
            )
    if masker.holds_secret(cwd):
        raise LaunchError("the working directory holds a secret; not started", argv)


def _argv(command: str, args: list[str], shell: bool) -> list[str]:
    if shell:
        return ["/bin/sh", "-c", " ".join([command, *(shlex.quote(a) for a in args)])]
    return [command, *args]


def _environment(
    step: IRStep, attempt: int, ctx: RunContext, step_env: dict[str, str], output: str
) -> dict[str, str]:
    withheld = ctx.all_secrets.difference(step.secrets)
    if withheld:
        env = {name: value for name, value in ctx.environ.items() if name not in withheld}
    else:
        env = dict(ctx.environ)
    env.update(step_env)
    env["PLAN_RUN_ID"] = ctx.run_id
    env["PLAN_STEP_ID"] = step.id
    env["PLAN_ATTEMPT"] = str(attempt)
    # Absolute: the step may run in another directory than planrun (a relative state dir).
    env["PLAN_OUTPUT"] = os.path.abspath(output)
    return env
