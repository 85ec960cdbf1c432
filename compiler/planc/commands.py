"""The planc commands as plain functions returning an exit code (the CLI only parses arguments)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import TextIO

from planc.codes import all_codes
from planc.diagnostics import Diagnostic, Severity
from planc.draw import draw
from planc.pipeline import Compilation, compile_file
from planc.render import render
from planc.suggest import did_you_mean

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3


def check(paths: Sequence[str], fmt: str, strict: bool, out: TextIO) -> int:
    results = [compile_file(path, want_ir=False) for path in paths]
    diagnostics = [d for r in results for d in r.diagnostics]
    _report(results, fmt, out)
    if any(d.severity is Severity.ERROR for d in diagnostics):
        return EXIT_FINDINGS
    return EXIT_FINDINGS if strict and diagnostics else EXIT_OK


def compile_plan(path: str, output: str | None, fmt: str, out: TextIO, err: TextIO) -> int:
    result = compile_file(path)
    if result.diagnostics:
        _report([result], fmt, err)
    if result.ir is None:
        return EXIT_FINDINGS
    if output is None or output == "-":
        out.write(result.ir.decode("utf-8"))
    else:
        with open(output, "wb") as handle:
            handle.write(result.ir)
    return EXIT_OK


def graph(path: str, fmt: str, out: TextIO, err: TextIO) -> int:
    result = compile_file(path)
    if result.ir is None:
        _report([result], "text", err)
        return EXIT_FINDINGS
    out.write(draw(json.loads(result.ir), fmt))
    return EXIT_OK


def schema(out: TextIO) -> int:
    from planc.schema import plan_schema

    out.write(json.dumps(plan_schema(), indent=2) + "\n")
    return EXIT_OK


def explain(code: str, out: TextIO, err: TextIO) -> int:
    codes = all_codes()
    if code not in codes:
        hint = did_you_mean(code, codes) or "`planc explain --list` lists every code"
        err.write(f"planc: unknown code `{code}`; {hint}\n")
        return EXIT_USAGE
    summary, explanation = codes[code]
    out.write(f"{code}: {summary}\n\n{explanation}\n")
    return EXIT_OK


def list_codes(out: TextIO) -> int:
    for code, (summary, _) in all_codes().items():
        out.write(f"{code:32} {summary}\n")
    return EXIT_OK


def _report(results: Sequence[Compilation], fmt: str, stream: TextIO) -> None:
    diagnostics: list[Diagnostic] = [d for r in results for d in r.diagnostics]
    if not diagnostics and fmt == "text":
        return
    sources = {r.path: r.text for r in results if r.text is not None}
    stream.write(render(diagnostics, sources, fmt))


def internal_error(exc: BaseException) -> int:
    sys.stderr.write(f"planc: internal error: {type(exc).__name__}: {exc}\n")
    return EXIT_INTERNAL
