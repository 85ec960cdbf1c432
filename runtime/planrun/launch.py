"""What one attempt runs with: argv, cwd and environment, placeholders resolved, secrets
given only to the steps that declare them (docs/dataflow.md)."""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from planrun.interpolate import Reference, substitute
from planrun.params import ParamValue
from planrun.process import LaunchSpec


class LaunchError(Exception):
    """The attempt cannot start (e.g. an output it reads is not set); one human line."""


@dataclass(frozen=True)
class RunContext:
    run_id: str
    workdir: str
    params: Mapping[str, ParamValue]
    outputs: Mapping[str, Mapping[str, str]]  # step id -> its recorded outputs
    environ: Mapping[str, str]
    all_secrets: frozenset[str]
    mask_patterns: tuple[bytes, ...]
    kill_grace_sec: float
    echo_fds: tuple[int, int] | None = None  # planrun exec: output also to these (LaunchSpec)
    item: str | None = None  # `${{ item }}` of an instance of a for_each step (fanout.py)


@dataclass(frozen=True)
class AttemptFiles:
    stdout: str
    stderr: str
    outputs: str


def launch_spec(
    step: dict[str, Any], attempt: int, ctx: RunContext, files: AttemptFiles
) -> LaunchSpec:
    def resolve(ref: Reference) -> str:
        return _resolve(ref, ctx)

    try:
        command = substitute(step["command"], resolve)
        args = [substitute(arg, resolve) for arg in step["args"]]
        cwd = substitute(step["cwd"], resolve)
        step_env = {name: substitute(value, resolve) for name, value in step["env"].items()}
    except ValueError as exc:
        raise LaunchError(str(exc)) from None
    return LaunchSpec(
        argv=_argv(command, args, step["shell"]),
        cwd=os.path.abspath(os.path.join(ctx.workdir, cwd)),
        env=_environment(step, attempt, ctx, step_env, files.outputs),
        stdout_path=files.stdout,
        stderr_path=files.stderr,
        timeout_sec=step["timeout_sec"],
        heartbeat_timeout_sec=step["heartbeat_timeout_sec"],
        kill_grace_sec=ctx.kill_grace_sec,
        mask_patterns=ctx.mask_patterns,
        echo_fds=ctx.echo_fds,
    )


def format_param(value: ParamValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _resolve(ref: Reference, ctx: RunContext) -> str:
    if ref.kind == "param":
        return format_param(ctx.params.get(ref.name))
    if ref.kind == "env":
        return ctx.environ.get(ref.name, "")
    if ref.kind == "item":
        if ctx.item is None:
            raise LaunchError("`${{ item }}` is only set in an instance of a for_each step")
        return ctx.item
    assert ref.step is not None
    value = ctx.outputs.get(ref.step, {}).get(ref.name)
    if value is None:
        raise LaunchError(f"output {ref.name} of step {ref.step} is not set")
    return value


def _argv(command: str, args: list[str], shell: bool) -> list[str]:
    if shell:
        return ["/bin/sh", "-c", " ".join([command, *(shlex.quote(a) for a in args)])]
    return [command, *args]


def _environment(
    step: dict[str, Any], attempt: int, ctx: RunContext, step_env: dict[str, str], output: str
) -> dict[str, str]:
    withheld = ctx.all_secrets.difference(step["secrets"])
    if withheld:
        env = {name: value for name, value in ctx.environ.items() if name not in withheld}
    else:
        env = dict(ctx.environ)
    env.update(step_env)
    env["PLAN_RUN_ID"] = ctx.run_id
    env["PLAN_STEP_ID"] = step["id"]
    env["PLAN_ATTEMPT"] = str(attempt)
    env["PLAN_OUTPUT"] = output
    return env
