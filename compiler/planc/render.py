"""Diagnostics rendered as text (with the source line and a caret), JSON, GitHub or SARIF."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from urllib.parse import quote

from planc.diagnostics import Diagnostic, Severity, Span
from planrun.core.printable import github_data, github_property, printable

FORMATS = ("text", "json", "github", "sarif")


def render(diagnostics: Sequence[Diagnostic], sources: dict[str, str], fmt: str) -> str:
    if fmt == "json":
        return json.dumps([_as_dict(d) for d in diagnostics], indent=2) + "\n"
    if fmt == "github":
        return "".join(_github(d) + "\n" for d in diagnostics)
    if fmt == "sarif":
        return json.dumps(_sarif(diagnostics), indent=2) + "\n"
    return render_text(diagnostics, sources)


def render_text(diagnostics: Sequence[Diagnostic], sources: dict[str, str]) -> str:
    lines: list[str] = []
    split: dict[str, list[str]] = {}  # each source split once: 100,000 warnings on one plan
    for diagnostic in diagnostics:
        source = sources.get(diagnostic.path)
        if source is not None and diagnostic.path not in split:
            split[diagnostic.path] = source.splitlines()
        lines.extend(_text(diagnostic, split.get(diagnostic.path)))
    errors = sum(1 for d in diagnostics if d.severity is Severity.ERROR)
    warnings = len(diagnostics) - errors
    if diagnostics:
        lines.append(f"{_plural(errors, 'error')}, {_plural(warnings, 'warning')}")
    return "".join(line + "\n" for line in lines)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _text(d: Diagnostic, source: list[str] | None) -> list[str]:
    out = [f"{d.path}:{d.line}:{d.col}: {d.severity.value}[{d.code}]: {d.message}"]
    out += _excerpt(source, d.span)
    if d.hint:  # a hint of several lines (an invariant's trace) keeps them, each printable
        first, *more = d.hint.split("\n")
        out += [f"  help: {first}", *more]
    for message, span in d.related:  # a second place the reader must see, as a compiler's note
        out.append(f"{d.path}:{span.line}:{span.col}: note: {message}")
        out += _excerpt(source, span)
    return [printable(line) for line in out]  # a file name or a source line may hold escapes


def _excerpt(source: list[str] | None, span: Span) -> list[str]:
    """The source line of `span` with a caret under it, when the line is there to show."""
    source_line = _source_line(source, span.line)
    if source_line is None:
        return []
    gutter = str(span.line)
    shown = source_line.replace("\t", " ")
    width = _caret_width(span, len(shown))
    return [
        f" {gutter} | {shown}",
        f" {' ' * len(gutter)} | {' ' * (span.col - 1)}^{'~' * (width - 1)}",
    ]


def _source_line(lines: list[str] | None, line: int) -> str | None:
    if lines is None:
        return None
    if not 1 <= line <= len(lines):
        return None
    text = lines[line - 1]
    # A megabyte-long line helps nobody; the caret must stay visible.
    return text if len(text) <= 400 else None


def _caret_width(span: Span, line_length: int) -> int:
    end = span.end_col if span.end_line == span.line else line_length + 1
    return max(1, min(end, line_length + 1) - span.col)


def _as_dict(d: Diagnostic) -> dict[str, object]:
    return {
        "path": d.path,
        **_region(d.span),
        "severity": d.severity.value,
        "code": d.code,
        "message": d.message,
        "hint": d.hint,
        "related": [{"message": message, **_region(span)} for message, span in d.related],
    }


def _region(span: Span) -> dict[str, int]:
    return {
        "line": span.line,
        "column": span.col,
        "end_line": span.end_line,
        "end_column": span.end_col,
    }


def _github(d: Diagnostic) -> str:
    """One workflow command, and a `::notice` at each related place (GitHub annotates one
    region per command)."""
    level = "error" if d.severity is Severity.ERROR else "warning"
    message = d.message + (f" ({d.hint})" if d.hint else "")
    path = printable(github_property(d.path))
    title = f"title=planc {d.code}::"
    lines = [f"::{level} file={path},{_github_region(d.span)},{title}{_github_text(message)}"]
    for note, span in d.related:
        lines.append(f"::notice file={path},{_github_region(span)},{title}{_github_text(note)}")
    return "\n".join(lines)


def _github_region(span: Span) -> str:
    return f"line={span.line},col={span.col},endLine={span.end_line},endColumn={span.end_col}"


def _github_text(text: str) -> str:
    return printable(github_data(text))


def sarif_uri(path: str) -> str:
    """`path` as a SARIF `uri`: a file URI when absolute, else a relative reference, with every
    byte that is not unreserved or `/` percent-encoded (spaces, `:` that would read as a
    scheme, `%`, `#`, `?`, non-ASCII as UTF-8, and bytes that are not UTF-8 as they are)."""
    quoted = quote(os.fsencode(path), safe="/")
    return "file://" + quoted if path.startswith("/") else quoted


def _sarif_location(path: str, span: Span) -> dict[str, object]:
    return {
        "physicalLocation": {
            "artifactLocation": {"uri": sarif_uri(path)},
            "region": {
                "startLine": span.line,
                "startColumn": span.col,
                "endLine": span.end_line,
                "endColumn": span.end_col,
            },
        }
    }


def _sarif_result(d: Diagnostic) -> dict[str, object]:
    result: dict[str, object] = {
        "ruleId": d.code,
        "level": "error" if d.severity is Severity.ERROR else "warning",
        "message": {"text": d.message + (f" ({d.hint})" if d.hint else "")},
        "locations": [_sarif_location(d.path, d.span)],
    }
    if d.related:
        result["relatedLocations"] = [
            {"id": index, "message": {"text": note}, **_sarif_location(d.path, span)}
            for index, (note, span) in enumerate(d.related)
        ]
    return result


def _sarif(diagnostics: Sequence[Diagnostic]) -> dict[str, object]:
    from planc import __version__

    rules = sorted({d.code for d in diagnostics})
    results = [_sarif_result(d) for d in diagnostics]
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "planc",
                        "version": __version__,
                        "rules": [{"id": code} for code in rules],
                    }
                },
                "results": results,
            }
        ],
    }
