"""What is secret in a run, and how planrun keeps it off disk (docs/dataflow.md, "Secrets").

Secret values are the declared secrets' values in planrun's environment and the values of
params declared `secret: true`. One `Masker` made of them masks every event payload where the
executor records it (reasons, argv, outputs, messages), and the same patterns mask the logs. A
step output whose value holds a secret is a *secret output*: recorded masked, its raw value kept
in the memory of the planrun process that read it, handed to consumers through `env:` only.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Mapping
from typing import Any

from planrun.core.params import ParamValue
from planrun.events import Event
from planrun.masking import MIN_SECRET_LENGTH, Masker, patterns_of
from planrun.outputs import MAX_OUTPUT_BYTES

MASKED_PARAM = "***"
_SCRUB_FLAGS = os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def secret_params(ir_params: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The params declared `secret: true`, sorted."""
    return sorted(name for name, spec in ir_params.items() if spec.get("secret"))


def _param_text(value: ParamValue) -> str:
    from planrun.launch import format_param  # the text a placeholder receives

    return format_param(value)


def run_masker(
    secret_names: Iterable[str],
    ir_params: Mapping[str, Mapping[str, Any]],
    environ: Mapping[str, str],
    params: Mapping[str, ParamValue],
) -> Masker | None:
    """The masker of a run: every form of every secret value; None when nothing is masked."""
    values = [environ.get(name, "") for name in secret_names]
    values += [_param_text(params.get(name)) for name in secret_params(ir_params)]
    patterns = patterns_of(values)
    return Masker(patterns) if patterns else None


def too_short(
    secret_names: Iterable[str],
    ir_params: Mapping[str, Mapping[str, Any]],
    environ: Mapping[str, str],
    params: Mapping[str, ParamValue],
) -> list[str]:
    """`secret NAME` and `secret param NAME` whose value is set but too short to mask."""
    found = [f"secret {n}" for n in secret_names if 0 < len(environ.get(n, "")) < MIN_SECRET_LENGTH]
    for name in secret_params(ir_params):
        if 0 < len(_param_text(params.get(name))) < MIN_SECRET_LENGTH:
            found.append(f"secret param {name}")
    return sorted(found)


def masked_params(
    ir_params: Mapping[str, Mapping[str, Any]], params: Mapping[str, ParamValue]
) -> dict[str, ParamValue]:
    """The params as recorded: a secret param's value is `***`, whatever its length."""
    hidden = set(secret_params(ir_params))
    return {name: MASKED_PARAM if name in hidden else value for name, value in params.items()}


def masked_argv(argv: list[str], ir_params: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """planrun's command line as recorded: the value of `-p NAME=VALUE` (`-pNAME=VALUE`,
    `--param NAME=VALUE`, `--param=NAME=VALUE`) is `***` for a secret param, whatever its
    length. Other words go through the event masker like every recorded text."""
    prefixes = [
        f"{flag}{name}=" for name in secret_params(ir_params) for flag in ("", "-p", "--param=")
    ]
    masked = []
    for word in argv:
        prefix = next((p for p in prefixes if word.startswith(p)), None)
        masked.append(word if prefix is None else prefix + MASKED_PARAM)
    return masked


def secret_outputs_in(events: Iterable[Event]) -> dict[str, set[str]]:
    """Per step, the names of the secret outputs of its latest recorded outputs (an event with
    `outputs` replaces the step's outputs, as the store's projection does)."""
    found: dict[str, set[str]] = {}
    for event in events:
        if event.step_id is not None and "outputs" in event.payload:
            found[event.step_id] = set(event.payload.get("secret_outputs") or ())
    return found


def scrub_file(path: str, masker: Masker) -> None:
    """Mask the secrets in a file a step wrote ($PLAN_OUTPUT) once planrun has read it, so its
    raw values stay in memory only. Never follows a link nor blocks on a FIFO; a file too large
    to have been read as outputs is emptied (the step failed for its size already)."""
    try:
        fd = os.open(path, _SCRUB_FLAGS)
    except OSError:
        return  # gone, or not a file planrun made: nothing of planrun's to scrub
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return
        if info.st_size > MAX_OUTPUT_BYTES:
            os.ftruncate(fd, 0)
            return
        data = os.read(fd, MAX_OUTPUT_BYTES + 1)
        text = data.decode("utf-8", "surrogateescape")
        masked = masker.text(text).encode("utf-8", "surrogateescape")
        if masked != data:
            os.ftruncate(fd, 0)
            written = 0
            while written < len(masked):
                written += os.pwrite(fd, masked[written:], written)
    except OSError:
        return  # the run goes on; the file keeps what the step wrote
    finally:
        os.close(fd)
