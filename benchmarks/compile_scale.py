#!/usr/bin/env python3
"""How `planc compile` and `planc check` scale with the number of steps.

Generates realistic plans (YAML) of 1k, 10k and 100k steps — each step depends on 0–4 random
earlier steps within a window, a third of the steps have a `condition` on the status of a
direct dependency that has `on_failure: continue` (so planc cannot prove it always true) —
makes sure each one checks clean (`planc check --strict`: no error, no warning), then times
`python -m planc compile PLAN -o OUT` and `python -m planc check PLAN` as subprocesses
(wall time and peak RSS of each child), several times each, and prints the medians, the
time(100k)/time(10k) ratio (linear ⇒ ≈ 10) and whether the targets are met. Every compile of
the same plan must produce byte-identical IR.

`--shape findings` generates the other kind of plan: each step depends on up to 3 random earlier
steps anywhere in the plan, and a third of the steps carry a redundant condition (on a
dependency that cannot fail), so planc reports one `always-true` warning each; `check` must then
report exactly those warnings, and `check --format json|github|sarif` is timed too.

    python benchmarks/compile_scale.py                  # 1k, 10k, 100k; 3 runs each
    python benchmarks/compile_scale.py --sizes 1000,10000 --repeat 5
    python benchmarks/compile_scale.py --quick          # smoke run, a few seconds
    python benchmarks/compile_scale.py --profile 10000  # + cProfile of one compile
    python benchmarks/compile_scale.py --shape findings --sizes 10000,100000 --repeat 1

See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import random
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (
    BenchError,
    Measurement,
    child_env,
    code_under_test,
    exit_cleanly_on_sigterm,
    load_text,
    machine_header,
    median,
    profile_child,
    run_measured,
    table,
    verdict,
)

DEFAULT_SIZES = (1_000, 10_000, 100_000)
QUICK_SIZES = (300, 1_000)
WINDOW = 64  # a step depends on steps at most this far before it
MAX_FAN_IN = 4
FINDINGS_FAN_IN = 3  # --shape findings: up to 3 dependencies anywhere before the step
SHAPES = ("clean", "findings")
CHECK_FORMATS = ("json", "github", "sarif")  # timed besides text with --shape findings
TARGETS = {10_000: (2.0, None), 100_000: (20.0, 1024.0)}  # steps: (seconds, peak MiB)

_KINDS = ("fetch", "build", "test", "lint", "package", "publish")
_CONDITIONS = (
    "steps.{x}.status == 'success'",
    "steps.{x}.status != 'failed'",
    "steps.{x}.status in ['success', 'skipped']",
    "steps.{x}.status == 'success' and env.BENCH_SKIP != 'yes'",
)


@dataclass(frozen=True)
class GeneratedPlan:
    steps: int
    edges: int
    conditions: int
    text: str
    warnings: int = 0  # what `planc check` must report (the findings shape)


@dataclass(frozen=True)
class Limits:
    timeout_sec: float
    mem_mib: int
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class SizeResult:
    plan: GeneratedPlan
    plan_bytes: int
    ir_bytes: int = 0
    failure: str | None = None  # why the size could not be measured (timeout, out of memory)
    deterministic: bool = False
    compile_runs: list[Measurement] = field(default_factory=list)
    check_runs: list[Measurement] = field(default_factory=list)
    format_runs: dict[str, list[Measurement]] = field(default_factory=dict)

    def compile_s(self) -> float:
        return median([m.seconds for m in self.compile_runs])

    def compile_mib(self) -> float:
        return max(m.peak_rss_mib for m in self.compile_runs)

    def check_s(self) -> float:
        return median([m.seconds for m in self.check_runs])

    def check_mib(self) -> float:
        return max(m.peak_rss_mib for m in self.check_runs)


def step_id(index: int) -> str:
    return f"{_KINDS[index % len(_KINDS)]}_{index:06d}"


def generate_plan(steps: int, seed: int = 2026, shape: str = "clean") -> GeneratedPlan:
    """A plan with mixed fan-in and conditions that planc accepts without any diagnostic.

    With `shape="findings"`: dependencies anywhere before the step and no `on_failure:
    continue`, so every condition is redundant (always true) and draws one warning.
    """
    rng = random.Random(f"{seed}:{steps}" + ("" if shape == "clean" else f":{shape}"))
    findings = shape == "findings"
    deps: list[list[int]] = []
    for i in range(steps):
        window = range(0 if findings else max(0, i - WINDOW), i)
        fan_in = min(rng.randint(0, FINDINGS_FAN_IN if findings else MAX_FAN_IN), len(window))
        deps.append(sorted(rng.sample(window, fan_in)))
    with_deps = [i for i in range(steps) if deps[i]]
    conditioned: dict[int, int] = {}  # step -> the dependency its condition reads
    for i in rng.sample(with_deps, min(len(with_deps), steps // 3)):
        conditioned[i] = rng.choice(deps[i])
    # on_failure: continue, so a condition can be false (none in the findings shape)
    tolerant = set() if findings else set(conditioned.values())

    lines = [
        f"plan_id: BENCH-SCALE-{steps}",
        'version: "1.0"',
        f"description: Generated by benchmarks/compile_scale.py ({steps} steps, seed {seed}).",
        "metadata:",
        "  generator: benchmarks/compile_scale.py",
        "globals:",
        "  max_concurrency: 2",
        "  default_timeout_sec: 600",
        "  env:",
        "    BENCH: compile_scale",
        "steps:",
    ]
    for i in range(steps):
        kind = _KINDS[i % len(_KINDS)]
        lines.append(f"  - id: {step_id(i)}")
        if i % 2 == 0:
            lines.append(f"    name: {kind.capitalize()} part {i}")
        if i % 5 == 0:
            lines.append(f"    description: {kind} step number {i} of the generated plan")
        lines.append('    command: "true"')
        if i % 2 == 1:
            lines.append(f'    args: ["--{kind}", "part-{i}", "--verbose"]')
        if deps[i]:
            lines.append(f"    depends_on: [{', '.join(step_id(d) for d in deps[i])}]")
        if i % 10 == 3:
            lines.append(f"    timeout_sec: {30 + i % 90}")
        if i % 10 == 7:
            lines.append("    retries: 2")
            lines.append("    retry_delay_sec: 0.5")
        if i % 20 == 9:
            lines.append("    env:")
            lines.append(f'      PART: "{i}"')
        if i % 4 == 0:
            lines.append(f"    tags: [{kind}, bench]")
        if i in tolerant:
            lines.append("    on_failure: continue")
        if i in conditioned:
            form = _CONDITIONS[rng.randrange(len(_CONDITIONS))]
            if findings:  # the one form planc proves always true here (the others may not be)
                form = _CONDITIONS[0]
            lines.append(f'    condition: "{form.format(x=step_id(conditioned[i]))}"')
    edges = sum(len(d) for d in deps)
    warnings = len(conditioned) if findings else 0
    return GeneratedPlan(steps, edges, len(conditioned), "\n".join(lines) + "\n", warnings)


def planc(*args: str) -> list[str]:
    return [sys.executable, "-m", "planc", *args]


def warm_up(workdir: Path, limits: Limits) -> None:
    """One untimed compile, so every measured run finds planc's byte-code cached."""
    (workdir / "warm-up.yaml").write_text(generate_plan(20).text, encoding="utf-8")
    argv = planc("compile", "warm-up.yaml", "-o", "warm-up.json")
    result = run_measured(argv, cwd=workdir, env=limits.env, timeout_sec=limits.timeout_sec)
    if result.exit_code != 0:
        raise BenchError(f"planc does not work here (exit {result.exit_code})")


def _failure(what: str, m: Measurement, stderr: Path, limits: Limits) -> str:
    if m.timed_out:
        return f"{what}: killed after {limits.timeout_sec:g} s"
    tail = stderr.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-1:]
    if any("MemoryError" in line for line in tail):
        return f"{what}: out of memory (limit {limits.mem_mib} MiB) after {m.seconds:.0f} s"
    return f"{what}: exit {m.exit_code} after {m.seconds:.0f} s" + (
        f" ({tail[0][:200]})" if tail else ""
    )


def measure_size(
    workdir: Path, steps: int, repeat: int, seed: int, limits: Limits, shape: str = "clean"
) -> SizeResult:
    """Alternate `check --strict` and `compile` `repeat` times; every IR must be identical.

    `check --strict` must print nothing and exit 0 (the plan has no error and no warning), so
    the first timed check is also the validation of the generated plan. The findings shape
    runs `check` (no --strict), which must report exactly the plan's warnings, and then each
    of CHECK_FORMATS.
    """
    plan = generate_plan(steps, seed, shape)
    plan_name = f"plan-{steps}.yaml"
    (workdir / plan_name).write_text(plan.text, encoding="utf-8")
    result = SizeResult(plan, len(plan.text.encode()))
    digests: set[str] = set()
    report, errors = workdir / "stdout.txt", workdir / "stderr.txt"

    def run_planc(*args: str, stdout_path: Path | None = None) -> Measurement:
        return run_measured(
            planc(*args),
            cwd=workdir,
            stdout_path=stdout_path,
            stderr_path=errors,
            env=limits.env,
            timeout_sec=limits.timeout_sec,
            mem_limit_mib=limits.mem_mib,
        )

    for run in range(max(repeat, 2)):  # at least two compiles, for the determinism check
        if run < repeat and plan.warnings:
            checked = run_planc("check", plan_name, stdout_path=report)
            text = report.read_text(encoding="utf-8", errors="replace")
            expected = f"0 errors, {plan.warnings} warnings"
            if checked.exit_code == 0 and not text.rstrip().endswith(expected):
                tail = "\n".join(text.splitlines()[-3:])
                raise BenchError(f"{plan_name}: expected {expected!r}, planc check said:\n{tail}")
            if checked.exit_code != 0:
                result.failure = _failure("check", checked, errors, limits)
                return result
            result.check_runs.append(checked)
            for fmt in CHECK_FORMATS:
                shown = run_planc("check", "--format", fmt, plan_name, stdout_path=report)
                if shown.exit_code != 0:
                    result.failure = _failure(f"check --format {fmt}", shown, errors, limits)
                    return result
                result.format_runs.setdefault(fmt, []).append(shown)
        elif run < repeat:
            checked = run_planc("check", "--strict", plan_name, stdout_path=report)
            text = report.read_text(encoding="utf-8", errors="replace")
            if checked.exit_code == 1 or (checked.exit_code == 0 and text.strip()):
                head = "\n".join(text.splitlines()[:30])
                raise BenchError(f"generated plan {plan_name} does not check clean:\n{head}")
            if checked.exit_code != 0:
                result.failure = _failure("check", checked, errors, limits)
                return result
            result.check_runs.append(checked)
        out = workdir / f"ir-{steps}-{run}.json"
        compiled = run_planc("compile", plan_name, "-o", out.name)
        if compiled.exit_code != 0:
            result.failure = _failure("compile", compiled, errors, limits)
            return result
        data = out.read_bytes()
        out.unlink()
        digests.add(hashlib.sha256(data).hexdigest())
        result.ir_bytes = len(data)
        if run < repeat:
            result.compile_runs.append(compiled)
    if len(digests) != 1:
        raise BenchError(f"compiling {plan_name} twice gave different IR: {sorted(digests)}")
    result.deterministic = True
    return result


def _cells(runs: list[Measurement]) -> list[str]:
    if not runs:
        return ["–", "–", "–"]
    times = [m.seconds for m in runs]
    spread = f"{min(times):.2f}–{max(times):.2f}"
    return [f"{median(times):.2f}", spread, f"{max(m.peak_rss_mib for m in runs):.0f}"]


def report(results: list[SizeResult]) -> str:
    headers = [
        "steps", "edges", "conds", "plan MiB", "IR MiB", "compile s", "(min–max)",
        "peak MiB", "µs/step", "check s", "(min–max)", "peak MiB",
    ]  # fmt: skip
    formats = [fmt for fmt in CHECK_FORMATS if any(fmt in r.format_runs for r in results)]
    if formats:
        headers.insert(3, "warnings")
        for fmt in formats:
            headers += [f"--format {fmt} s", "peak MiB"]
    rows = []
    for r in results:
        per_step = f"{r.compile_s() / r.plan.steps * 1e6:.0f}" if r.compile_runs else "–"
        rows.append(
            [
                f"{r.plan.steps:,}",
                f"{r.plan.edges:,}",
                f"{r.plan.conditions:,}",
                f"{r.plan_bytes / 2**20:.1f}",
                f"{r.ir_bytes / 2**20:.1f}" if r.ir_bytes else "–",
                *_cells(r.compile_runs),
                per_step,
                *_cells(r.check_runs),
            ]
        )
        if formats:
            rows[-1].insert(3, f"{r.plan.warnings:,}")
            for fmt in formats:
                rows[-1] += [_cells(r.format_runs.get(fmt, []))[i] for i in (0, 2)]
    lines = [table(headers, rows), ""]
    lines += [f"{r.plan.steps:,} steps: {r.failure}" for r in results if r.failure]
    complete = [r for r in results if r.compile_runs and r.check_runs and not r.failure]
    for small, big in itertools.pairwise(complete):
        factor = big.plan.steps / small.plan.steps
        lines.append(
            f"time({big.plan.steps:,})/time({small.plan.steps:,}) = "
            f"{big.compile_s() / small.compile_s():.1f} compile, "
            f"{big.check_s() / small.check_s():.1f} check (linear ⇒ ≈{factor:.3g})"
        )
    by_size = {r.plan.steps: r for r in results}
    for steps, (seconds, mib) in TARGETS.items():
        if steps not in by_size:
            continue
        r = by_size[steps]
        goal = f"target {steps:,} steps: compile < {seconds:g} s"
        if mib is not None:
            goal += f" and < {mib:g} MiB"
        if r.failure or not r.compile_runs:
            lines.append(f"{goal}: {r.failure or 'not measured'}  [{verdict(False)}]")
            continue
        every = [r.compile_runs, r.check_runs, *r.format_runs.values()]
        slowest = max(median([m.seconds for m in runs]) for runs in every if runs)
        biggest = max(m.peak_rss_mib for runs in every for m in runs)
        ok = slowest < seconds and (mib is None or biggest < mib)
        measured = f"{r.compile_s():.2f} s, {r.compile_mib():.0f} MiB"
        if r.format_runs:
            goal += " (and check in every format)"
            measured = f"slowest {slowest:.2f} s, peak {biggest:.0f} MiB"
        lines.append(f"{goal}: {measured}  [{verdict(ok)}]")
    checked = [f"{r.plan.steps:,}" for r in results if r.deterministic]
    if checked:
        lines.append(
            f"determinism: every compile of the same plan gave byte-identical IR"
            f" ({', '.join(checked)} steps): OK"
        )
    return "\n".join(lines)


def profile(workdir: Path, steps: int, seed: int, limits: Limits, shape: str = "clean") -> str:
    plan_name = f"plan-{steps}.yaml"
    if not (workdir / plan_name).exists():
        plan = generate_plan(steps, seed, shape)
        (workdir / plan_name).write_text(plan.text, encoding="utf-8")
    args = ["-m", "planc", "compile", plan_name, "-o", "profiled-ir.json"]
    title = f"cProfile: planc compile, {steps:,} steps"
    return profile_child(
        args, cwd=workdir, title=title, env=limits.env, timeout_sec=limits.timeout_sec * 4
    )


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sizes", help="comma-separated step counts [1000,10000,100000]")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per size [3]")
    parser.add_argument("--seed", type=int, default=2026, help="plan generator seed [2026]")
    parser.add_argument("--quick", action="store_true", help="small sizes, one run (smoke test)")
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="kill a planc run after this many s [300]"
    )
    parser.add_argument(
        "--mem-limit", type=int, default=4096, help="address-space cap of planc in MiB [4096]"
    )
    parser.add_argument(
        "--profile", type=int, metavar="STEPS", help="also cProfile one compile of STEPS steps"
    )
    parser.add_argument(
        "--rev", help="measure this git revision (a snapshot) instead of the working tree"
    )
    parser.add_argument(
        "--shape",
        choices=SHAPES,
        default="clean",
        help="clean plans, or findings: long-range deps and one warning per third step [clean]",
    )
    args = parser.parse_args(argv)
    if args.sizes:
        args.sizes = sorted(int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip())
    else:
        args.sizes = list(QUICK_SIZES if args.quick else DEFAULT_SIZES)
    if args.quick:
        args.repeat = 1
    if args.repeat < 1 or any(s < 1 for s in args.sizes):
        parser.error("--repeat and --sizes must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    exit_cleanly_on_sigterm()
    results: list[SizeResult] = []
    with tempfile.TemporaryDirectory(prefix="plan-bench-compile-") as tmp:
        workdir = Path(tmp)
        try:
            code_dir, code = code_under_test(args.rev, workdir)
            print(machine_header([__file__, *argv], code))
            print(
                f"sizes: {args.sizes}  repeat: {args.repeat}  seed: {args.seed}"
                f"  shape: {args.shape}"
                f"  limits per planc run: {args.timeout:g} s, {args.mem_limit} MiB\n",
                flush=True,
            )
            env = child_env(workdir / "pycache", code_dir)
            limits = Limits(args.timeout, args.mem_limit, env)
            warm_up(workdir, limits)
            for steps in args.sizes:
                print(f"  measuring {steps:,} steps…", file=sys.stderr, flush=True)
                result = measure_size(workdir, steps, args.repeat, args.seed, limits, args.shape)
                results.append(result)
                if result.failure:
                    print(f"  {result.failure}; larger sizes skipped", file=sys.stderr)
                    break
            print(report(results))
            print(f"{load_text()} at the end", flush=True)
            if args.profile:
                print()
                print(profile(workdir, args.profile, args.seed, limits, args.shape))
        except BenchError as exc:
            print(f"compile_scale: {exc}", file=sys.stderr)
            return 1
    return 0 if all(r.deterministic for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
