"""What `planrun PLAN`, `planrun watch`, the API and the UI run: an IR file as it is, or a plan
file compiled in memory by planc. The one place the runtime reaches for the compiler, lazily
(tests/test_import_graph.py): planrun without planc still runs IR files."""

from __future__ import annotations

from typing import TextIO

from planrun.core.ir import IR, parse_if_ir, parse_ir
from planrun.core.reads import MAX_IR_BYTES, InputTooLarge, read_bounded
from planrun.runner import UsageError


def load_runnable(path: str, err: TextIO) -> IR:
    """An IR file as is; a plan file (YAML/JSON) compiled in memory when planc is installed."""
    try:
        data = read_bounded(path, MAX_IR_BYTES)  # a plan file past its own limit: planc says so
    except InputTooLarge as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    ir = parse_if_ir(data, path)
    if ir is not None:
        return ir
    try:
        from planc.pipeline import compile_bytes
        from planc.render import render_text
    except ModuleNotFoundError as exc:
        if exc.name != "planc":
            raise  # a broken planc install is a bug to see, not "planc is missing"
        raise UsageError(f"{path} is not an IR file and planc is not installed") from None
    result = compile_bytes(path, data)
    if result.diagnostics:
        err.write(render_text(result.diagnostics, {path: result.text or ""}))
    if result.ir is None:
        raise UsageError(f"{path} has errors; nothing was run")
    return parse_ir(result.ir, path)
