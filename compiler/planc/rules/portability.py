"""Warnings about steps that behave differently, or not at all, depending on the machine."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator

from planc.diagnostics import Diagnostic, warning
from planc.model import SourceStep
from planc.rules.base import RuleContext

CODES = {
    "shell-with-args": (
        "warning: `shell: true` with separate `args`",
        "With `shell: true` the command is a shell string; planrun appends each arg"
        " shell-quoted. Put the whole command line in `command`, or use `shell: false`.",
    ),
    "no-timeout": (
        "warning: a step has no timeout anywhere",
        "Without `timeout_sec` on the step or `globals.default_timeout_sec`, a hung step"
        " hangs the run forever (and `planc bound` cannot bound it).",
    ),
    "windows-only": (
        "warning: a step needs Windows",
        "`powershell.exe`, `cmd.exe`, `.ps1`/`.bat` scripts and `C:/` paths only work on"
        " Windows; elsewhere the step fails with `command not found`. Use `pwsh` (PowerShell"
        " 7, cross-platform) or a portable command.",
    ),
    "command-with-spaces": (
        "warning: `command` holds a whole command line",
        "Without `shell: true`, `command` is one program name, run as is: `command: ruff check .`"
        " looks for a program called `ruff check .` and fails with `command not found`. Name"
        " the program in `command` and put each argument in `args` (`command: ruff`,"
        " `args: [check, .]`), or set `shell: true` to have `/bin/sh` read the line.",
    ),
}

_WINDOWS_COMMANDS = re.compile(r"(?i)^(powershell(\.exe)?|cmd(\.exe)?|.*\.(ps1|bat|cmd|exe))$")
_DRIVE_PATH = re.compile(r"^[A-Za-z]:[\\/]")


def check(ctx: RuleContext) -> Iterator[Diagnostic]:
    default_timeout = ctx.plan.globals.get("default_timeout_sec")
    for step in ctx.plan.steps:
        if step.get("shell") is True and step.get("args"):
            yield warning(
                ctx.path,
                step.key_span("args"),
                "shell-with-args",
                f"step `{step.id}` has `shell: true` and separate `args`",
                "write the whole command line in `command`, or set `shell: false`",
            )
        if step.get("timeout_sec") is None and default_timeout is None:
            yield warning(
                ctx.path,
                step.id_span,
                "no-timeout",
                f"step `{step.id}` has no timeout",
                "set `timeout_sec` on the step or `globals.default_timeout_sec`",
            )
        yield from _windows_only(ctx, step, step.get("command"))
        yield from _command_line(ctx, step, step.get("command"))
        cwd = step.get("cwd")
        if isinstance(cwd, str) and _DRIVE_PATH.match(cwd):
            yield warning(
                ctx.path,
                step.span_of("cwd"),
                "windows-only",
                f"step `{step.id}` runs in a Windows path (`{cwd}`)",
                "use a relative `cwd`; it is resolved against planrun's working directory",
            )


def _windows_only(ctx: RuleContext, step: SourceStep, command: object) -> Iterator[Diagnostic]:
    if isinstance(command, str) and _WINDOWS_COMMANDS.match(command):
        yield warning(
            ctx.path,
            step.span_of("command"),
            "windows-only",
            f"step `{step.id}` runs `{command}`, which exists only on Windows",
            "use `pwsh` (PowerShell 7 runs on Linux and macOS) or a portable command",
        )


_PLACEHOLDER = re.compile(r"\$\{\{.*?\}\}", re.DOTALL)


def _command_line(ctx: RuleContext, step: SourceStep, command: object) -> Iterator[Diagnostic]:
    """`command: ruff check .` without `shell: true`: planrun would look for a program of that
    name (what go-task, just, make and GitHub Actions users write first)."""
    if step.get("shell") is True or not isinstance(command, str):
        return
    if not any(c.isspace() for c in _PLACEHOLDER.sub("", command).strip()):
        return
    try:
        words = shlex.split(command)
    except ValueError:
        words = []
    args = step.get("args")
    if len(words) > 1 and not args:
        listed = ", ".join(_yaml_word(w) for w in words[1:])
        fix = (
            f"write `command: {_yaml_word(words[0])}` and `args: [{listed}]`, or set `shell: true`"
        )
    else:
        fix = "name only the program in `command` and put its arguments in `args`, or set"
        fix += " `shell: true`"
    yield warning(
        ctx.path,
        step.span_of("command"),
        "command-with-spaces",
        f"step `{step.id}` runs a program named `{command.strip()}`: without `shell: true` the"
        " command is not split into words",
        fix,
    )


def _yaml_word(word: str) -> str:
    """A word as a plain YAML flow scalar when it can be one, else double-quoted."""
    if re.fullmatch(r"[A-Za-z0-9_./=@%+-][A-Za-z0-9_./=@%+:-]*", word) and word not in (
        "true",
        "false",
        "null",
        "yes",
        "no",
        "on",
        "off",
    ):
        return word
    return json.dumps(word)
