"""The Python API of planc (docs/api.md): compile a plan, get its diagnostics as objects and its
IR. Versioned with planrun's API (planrun.api.API_VERSION, semantic versioning).

A thin layer over planc.pipeline, what `planc check` and `planc compile` run; importing this
module loads nothing of the compiler until the first call.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from planc.diagnostics import Diagnostic, Severity

__all__ = ["CompileResult", "Diagnostic", "Severity", "compile_plan"]


@dataclass(frozen=True)
class CompileResult:
    path: str
    diagnostics: tuple[Diagnostic, ...]  # sorted by position; errors and warnings
    ir_json: bytes | None  # the IR as `planc compile` writes it; None when there are errors
    text: str  # the plan's source text (what diagnostics point into)

    @property
    def ok(self) -> bool:
        """No error (warnings allowed): the plan compiled."""
        return self.ir_json is not None

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity.value == "error")

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity.value == "warning")

    @property
    def ir(self) -> dict[str, Any] | None:
        """The IR as a dict (planrun.api.run_plan takes it, or `ir_json`, as is)."""
        if self.ir_json is None:
            return None
        value: dict[str, Any] = json.loads(self.ir_json)
        return value

    def render(self, fmt: str = "text") -> str:
        """The diagnostics as planc prints them: text (source line and caret), json, github,
        sarif."""
        from planc.render import render

        return render(self.diagnostics, {self.path: self.text}, fmt)


def compile_plan(
    path: str | os.PathLike[str], *, source: str | bytes | None = None
) -> CompileResult:
    """Compile the plan at `path` (YAML or JSON), or `source` under that name. Never raises for
    a bad plan: an unreadable file is an `io-error` diagnostic, like every other problem."""
    from planc.pipeline import compile_bytes, compile_file

    name = os.fspath(path)
    if source is None:
        result = compile_file(name, keep_model=False)
    else:
        data = source.encode("utf-8") if isinstance(source, str) else source
        result = compile_bytes(name, data, keep_model=False)
    return CompileResult(name, tuple(result.diagnostics), result.ir, result.text or "")


def __getattr__(name: str) -> object:
    """Diagnostic and Severity are the compiler's own types, imported on first use."""
    if name in ("Diagnostic", "Severity"):
        from planc import diagnostics

        return getattr(diagnostics, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
