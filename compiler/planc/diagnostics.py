"""The one diagnostic type every compiler stage reports, and the exception that carries them."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from planrun.core.byvalue import ByValue


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, order=True, slots=True)
class Span:
    """A region of the source, 1-based, end exclusive; a point when end == start."""

    line: int
    col: int
    end_line: int = 0
    end_col: int = 0

    def __post_init__(self) -> None:
        if self.end_line == 0:
            object.__setattr__(self, "end_line", self.line)
            object.__setattr__(self, "end_col", self.col + 1)


@dataclass(frozen=True, eq=False, repr=False)
class Diagnostic(ByValue):
    path: str
    span: Span
    severity: Severity
    code: str
    message: str
    hint: str | None = None
    related: tuple[tuple[str, Span], ...] = field(default=())

    @property
    def line(self) -> int:
        return self.span.line

    @property
    def col(self) -> int:
        return self.span.col

    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (self.path, self.span.line, self.span.col, self.code, self.message)


class DiagnosticError(Exception):
    """Raised by a stage that cannot hand a usable result to the next one."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        super().__init__("; ".join(d.message for d in diagnostics))
        self.diagnostics = diagnostics


def error(path: str, span: Span, code: str, message: str, hint: str | None = None) -> Diagnostic:
    return Diagnostic(path, span, Severity.ERROR, code, message, hint)


def warning(path: str, span: Span, code: str, message: str, hint: str | None = None) -> Diagnostic:
    return Diagnostic(path, span, Severity.WARNING, code, message, hint)
