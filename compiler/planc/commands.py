"""The planc commands as plain functions returning an exit code (the CLI only parses arguments)."""

from __future__ import annotations

import fnmatch
import json
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from planc import analysis
from planc.diagnostics import Diagnostic, Severity
from planc.draw import draw
from planc.pipeline import Compilation, compile_file
from planc.render import render
from planc.suggest import did_you_mean
from planrun.core.params import ParamError, parse_assignments
from planrun.core.params import bind as bind_params
from planrun.core.printable import printable
from planrun.core.writes import write_whole

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3


def check(
    paths: Sequence[str],
    fmt: str,
    strict: bool,
    out: TextIO,
    analyses: Sequence[str] = analysis.DEFAULT,
) -> int:
    from planc.plan_files import NoPlansError, expand

    try:
        files = expand(paths)
    except NoPlansError as exc:
        sys.stderr.write(f"planc: {exc}\n")
        return EXIT_USAGE
    # Without the model: rendering 100k diagnostics with millions of nodes still alive cost the
    # garbage collector's full passes over them seconds.
    results = [
        compile_file(path, want_ir=False, analyses=analyses, keep_model=False) for path in files
    ]
    diagnostics = [d for r in results for d in r.diagnostics]
    _report(results, fmt, out)
    if any(d.severity is Severity.ERROR for d in diagnostics):
        return EXIT_FINDINGS
    return EXIT_FINDINGS if strict and diagnostics else EXIT_OK


def compile_plan(path: str, output: str | None, fmt: str, out: TextIO, err: TextIO) -> int:
    result = compile_file(path, keep_model=False)
    if result.diagnostics:
        _report([result], fmt, err)
    if result.ir is None:
        return EXIT_FINDINGS
    if output is None or output == "-":
        out.write(result.ir.decode("utf-8"))
        return EXIT_OK
    try:
        write_whole(output, result.ir)
    except OSError as exc:
        err.write(f"planc: cannot write {output}: {exc.strerror or exc}; nothing was written\n")
        return EXIT_USAGE
    return EXIT_OK


def graph(path: str, fmt: str, out: TextIO, err: TextIO) -> int:
    result = compile_file(path, keep_model=False)
    if result.ir is None:
        _report([result], "text", err)
        return EXIT_FINDINGS
    out.write(draw(json.loads(result.ir), fmt))
    return EXIT_OK


def describe(path: str, out: TextIO, err: TextIO) -> int:
    """The plan's params and steps, for someone about to run it (warnings are not repeated)."""
    from planrun.core.describe import describe as describe_ir

    result = compile_file(path, keep_model=False)
    if result.ir is None:
        _report([result], "text", err)
        return EXIT_FINDINGS
    out.write(describe_ir(json.loads(result.ir)))
    return EXIT_OK


def bound(path: str, fmt: str, max_concurrency: int | None, out: TextIO, err: TextIO) -> int:
    """Print the worst-case bounds; exit 1 when they break `deadline_sec` (or it can't compile)."""
    # The analysis modules are imported by the commands that use them, not by `planc compile`.
    from planc.analysis import report
    from planc.analysis.bound import bound_for_ir

    compiled = _compile_for_analysis(path, err)
    if compiled is None:
        return EXIT_FINDINGS
    result, ir = compiled
    bounds = bound_for_ir(ir, max_concurrency)
    deadline = result.plan.globals.get("deadline_sec") if result.plan is not None else None
    plan_id = str(ir["plan"]["id"])
    if fmt == "json":
        out.write(json.dumps(report.bound_json(plan_id, bounds, deadline), indent=2) + "\n")
    else:
        out.write(report.bound_text(plan_id, bounds, deadline))
    if deadline is None:
        return EXIT_OK
    broken = not bounds.bounded or bounds.concurrency_bound_sec > deadline
    return EXIT_FINDINGS if broken else EXIT_OK


def simulate(
    path: str,
    fail: Sequence[str],
    timeout: Sequence[str],
    env: Sequence[str],
    params: Sequence[str],
    all_single: bool,
    fmt: str,
    out: TextIO,
    err: TextIO,
    state_dir: str | None = None,
) -> int:
    """Print what planrun would do with these failures; exit 0 (the plan's exit is printed).
    With `state_dir`, each step's reuse verdict as `planrun --dry-run` gives it, and the steps
    a recorded success stands in for do not run (docs/fingerprints.md)."""
    from planc.analysis import report
    from planc.analysis.simulate import all_single_failures
    from planc.analysis.simulate import simulate as run_simulation

    variables = dict(item.partition("=")[::2] for item in env)
    bad_env = next((item for item in env if "=" not in item), None)
    if bad_env is not None:
        err.write(f"planc: --env expects NAME=VALUE, got `{bad_env}`\n")
        return EXIT_USAGE
    if all_single and state_dir is not None:
        err.write("planc: --all-single-failures replays without a state dir; drop --state-dir\n")
        return EXIT_USAGE
    compiled = _compile_for_analysis(path, err)
    if compiled is None:
        return EXIT_FINDINGS
    result, ir = compiled
    known = [step["id"] for step in ir["steps"]]
    failing = _selected(_step_list(fail), ir)
    timing_out = _selected(_step_list(timeout), ir)
    unknown = next((s for s in [*failing, *timing_out] if s not in known), None)
    if unknown is not None:
        hint = did_you_mean(unknown, known) or "`planc graph PLAN` lists the steps"
        err.write(f"planc: `{unknown}` is not a step of {path}; {hint}\n")
        return EXIT_USAGE
    try:
        param_values = bind_params(ir.get("params", {}), parse_assignments(tuple(params)))
    except ParamError as exc:
        err.write(f"planc: {exc}\n")
        return EXIT_USAGE
    plan_id = str(ir["plan"]["id"])
    if all_single:
        baseline, rows = all_single_failures(ir, variables, param_values)
        if fmt == "json":
            data = report.single_failures_json(plan_id, baseline, rows)
            out.write(json.dumps(data, indent=2) + "\n")
        else:
            out.write(report.single_failures_text(plan_id, baseline, rows))
        return EXIT_OK
    verdicts = None
    if state_dir is not None:
        # The one import of planrun past its kernel (tests/test_import_graph.py): the reuse
        # decisions are planrun's, read from its state dir.
        from planrun import dry_run

        assert result.ir is not None  # _compile_for_analysis returned it
        environ = {**os.environ, **variables}
        try:
            verdicts = dry_run.replay_verdicts(result.ir, state_dir, param_values, environ)
        except dry_run.StoreError as exc:
            err.write(f"planc: --state-dir: {printable(str(exc))}\n")
            return EXIT_USAGE
    sim = run_simulation(ir, failing, timing_out, variables, params=param_values, verdicts=verdicts)
    if fmt == "json":
        out.write(json.dumps(sim.to_json(), indent=2) + "\n")
    else:
        out.write(report.simulation_text(sim, ir))
    return EXIT_OK


def _step_list(values: Sequence[str]) -> list[str]:
    """`--fail a,b --fail c` → [a, b, c]."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _selected(names: list[str], ir: dict[str, Any]) -> list[str]:
    """Step ids, with `NAME[*]` (every instance of a matrix; a fan-out step: the step, whose
    failure stands for its instances') and glob patterns (`test-3.1*`) expanded. A name that
    matches nothing is kept, to be reported as unknown."""
    groups = ir.get("groups", {})
    known = [step["id"] for step in ir["steps"]]
    out: list[str] = []
    for name in names:
        group = groups.get(name[:-3]) if name.endswith("[*]") else None
        if group is not None:
            out += group["members"] or [name[:-3]]
        elif any(char in name for char in "*?["):
            out += fnmatch.filter(known, name) or [name]
        else:
            out.append(name)
    return list(dict.fromkeys(out))


def _compile_for_analysis(path: str, err: TextIO) -> tuple[Compilation, dict[str, Any]] | None:
    result = compile_file(path)
    if result.ir is None:
        _report([result], "text", err)
        return None
    ir: dict[str, Any] = json.loads(result.ir)
    return result, ir


def schema(out: TextIO) -> int:
    from planc.schema import plan_schema

    out.write(json.dumps(plan_schema(), indent=2) + "\n")
    return EXIT_OK


def explain(code: str, out: TextIO, err: TextIO) -> int:
    from planc.codes import all_codes  # every rule and analysis module, for their CODES

    codes = all_codes()
    if code not in codes:
        hint = did_you_mean(code, codes) or "`planc explain --list` lists every code"
        err.write(f"planc: unknown code `{code}`; {hint}\n")
        return EXIT_USAGE
    summary, explanation = codes[code]
    out.write(f"{code}: {summary}\n\n{explanation}\n")
    return EXIT_OK


def list_codes(out: TextIO) -> int:
    from planc.codes import all_codes

    for code, (summary, _) in all_codes().items():
        out.write(f"{code:32} {summary}\n")
    return EXIT_OK


def _report(results: Sequence[Compilation], fmt: str, stream: TextIO) -> None:
    diagnostics: list[Diagnostic] = [d for r in results for d in r.diagnostics]
    if not diagnostics and fmt == "text":
        return
    sources = {r.path: r.text for r in results if r.text is not None}
    for r in results:  # included files, so their lines are shown too
        sources.update((path, text) for path, text in r.sources.items() if path not in sources)
    stream.write(render(diagnostics, sources, fmt))


def internal_error(exc: BaseException) -> int:
    sys.stderr.write(f"planc: internal error: {type(exc).__name__}: {exc}\n")
    return EXIT_INTERNAL
