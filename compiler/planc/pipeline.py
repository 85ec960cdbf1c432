"""The compiler pipeline: bytes → Document → schema → SourcePlan → rules → IR bytes."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from planc.diagnostics import Diagnostic, DiagnosticError, Severity, Span, error
from planc.fragments import expand_includes
from planc.graph import PlanGraph, build_graph
from planc.load import gc_paused, load_document, too_large
from planc.lower import Composition, lower
from planc.matrix import expand_matrices
from planc.model import SourcePlan, build_model
from planc.rules import RULES
from planc.rules.base import RuleContext
from planc.schema import validate_document
from planc.sourcemap import SourceMap
from planrun.core.reads import InputTooLarge, read_bounded


@dataclass(eq=False, repr=False)
class Compilation:
    path: str
    text: str | None = None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    plan: SourcePlan | None = None
    graph: PlanGraph | None = None
    ir: bytes | None = None
    sources: dict[str, str] = field(default_factory=dict)  # every file read, included ones too

    @property
    def has_errors(self) -> bool:
        return any(d.severity is Severity.ERROR for d in self.diagnostics)


def compile_bytes(
    path: str,
    data: bytes,
    *,
    want_ir: bool = True,
    analyses: Sequence[str] = (),
    keep_model: bool = True,
) -> Compilation:
    """Run every stage that the previous one allows; never raises DiagnosticError.

    `analyses` (names from planc.analysis.ANALYSES) run over the lowered IR once the rules found
    no error; their diagnostics join the rules' ones. Without `keep_model` the result has no
    `plan` and `graph`, which are let go before the IR is serialised: that lowers the peak
    memory of compiling a 100k-step plan by ~80 MB."""
    # Every stage builds large acyclic structures: the cyclic collector's passes over them
    # cost a 100k-step plan three times its lowering time, and find nothing.
    with gc_paused():
        return _compile(path, data, want_ir, analyses, keep_model)


def _compile(
    path: str, data: bytes, want_ir: bool, analyses: Sequence[str], keep_model: bool
) -> Compilation:
    # The text is kept even when loading fails, so load errors show their source line too.
    result = Compilation(path, text=data.decode("utf-8", errors="replace"))
    try:
        document = load_document(path, data)
    except DiagnosticError as exc:
        result.diagnostics = sorted(exc.diagnostics, key=Diagnostic.sort_key)
        return result
    result.text = document.text
    sha256 = hashlib.sha256(data).hexdigest()
    included = expand_includes(document, sha256)
    sources = included.sources
    result.sources = sources.sources
    if included.diagnostics:
        return _done(result, included.diagnostics, sources)
    document = included.document
    schema_errors = validate_document(document)
    if schema_errors:
        return _done(result, schema_errors, sources)
    expanded = expand_matrices(document, included.aliases)
    if expanded.diagnostics:
        return _done(result, expanded.diagnostics, sources)
    document = expanded.document
    plan = build_model(document)
    graph = build_graph(plan)
    context = RuleContext(plan, graph)
    found = [diagnostic for rule in RULES for diagnostic in rule(context)]
    if keep_model:
        result.plan, result.graph = plan, graph
    _done(result, found, sources)
    if not result.has_errors and (want_ir or analyses):
        composition = Composition(sources, expanded.groups)
        typed = lower(plan, graph, sha256, composition)
        if analyses:
            # Imported here: `planc compile` runs no analysis and need not load them.
            from planc.analysis import run_analyses
            from planc.analysis.context import AnalysisContext

            found += run_analyses(AnalysisContext(typed, plan, graph), analyses)
            _done(result, found, sources)
        if want_ir and not result.has_errors:
            # Imported here: `planc check` writes no IR (planrun.core.ir's verifier comes with it).
            from planc.emit import emit

            if not keep_model:
                del document, plan, graph, context
            ir = typed.to_json()
            del typed  # the IR document alone while it is serialised
            result.ir = emit(ir)
    return result


def _done(result: Compilation, found: list[Diagnostic], sources: SourceMap) -> Compilation:
    """Diagnostics in included files mapped back to those files, sorted, without repeats (the
    instances of a matrix share their template's positions and words)."""
    mapped = [sources.remap(d) for d in found] if len(sources.files) > 1 else found
    result.diagnostics = sorted(set(mapped), key=Diagnostic.sort_key)
    return result


def compile_file(
    path: str, *, want_ir: bool = True, analyses: Sequence[str] = (), keep_model: bool = True
) -> Compilation:
    try:
        data = read_bounded(path)
    except InputTooLarge as exc:
        return Compilation(path, diagnostics=[too_large(path, exc.size)])
    except OSError as exc:
        reason = f"cannot read {path}: {exc.strerror or exc}"
        return Compilation(path, diagnostics=[error(path, Span(1, 1), "io-error", reason)])
    return compile_bytes(path, data, want_ir=want_ir, analyses=analyses, keep_model=keep_model)
