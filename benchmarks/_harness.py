"""Shared helpers of the benchmark scripts: run one child and measure it, print tables.

A child is started in its own session (process group) and reaped with `os.wait4`, which gives
its wall time and the rusage of exactly that child. Its `ru_maxrss` is the peak resident set of
the child itself or of the largest process it waited for (Linux semantics), so for planrun,
make or ninja it is "the biggest single process of the run" — the runner, in practice.
Every child is killed (its whole process group) if the benchmark stops early.
"""

from __future__ import annotations

import contextlib
import io
import os
import platform
import pstats
import resource
import shlex
import signal
import statistics
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

CHILD_TIMEOUT_SEC = 900.0


class BenchError(Exception):
    """A child failed or a generated input is wrong: the figures would be meaningless."""


@dataclass(frozen=True)
class Measurement:
    seconds: float
    peak_rss_mib: float
    exit_code: int
    timed_out: bool = False
    # A forked child starts with the benchmark's own peak RSS (Linux keeps the high-water
    # mark across exec), so a peak at or below this floor only means "small".
    rss_floor_mib: float = 0.0

    def rss_text(self) -> str:
        return rss_text(self.peak_rss_mib, self.rss_floor_mib)


def rss_text(peak_mib: float, floor_mib: float) -> str:
    """`123`, or `≤17` when the peak is the fork floor (the real figure is smaller)."""
    if peak_mib <= floor_mib + 0.5:
        return f"≤{floor_mib:.0f}"
    return f"{peak_mib:.0f}"


REPO_ROOT = Path(__file__).resolve().parent.parent
# Import name → directory in the repository (pyproject.toml's package-dir).
PACKAGES = {"planc": "compiler/planc", "planrun": "runtime/planrun", "plan_grammar": "grammar"}


def child_env(cache_dir: Path, code_dir: Path | None = None) -> dict[str, str]:
    """The environment of every measured Python child.

    Byte-code is cached (in `cache_dir`, a temporary directory, so the checkout is not
    touched) even when PYTHONDONTWRITEBYTECODE is set, as in a real installation: otherwise
    each run would recompile planc/planrun from source and time that too. With `code_dir`
    (see `snapshot`) the packages are imported from there instead of the working tree.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(cache_dir)
    if code_dir is not None:
        # Ahead of the editable install's finder, which only runs after sys.path.
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(code_dir), os.environ.get("PYTHONPATH")) if p
        )
    return env


def snapshot(rev: str, dest: Path) -> str:
    """Extract planc/planrun/plan_grammar at git revision `rev` into `dest` (importable).

    The figures then belong to one commit even while the working tree is being edited; the
    repository itself is only read (`git archive`). Returns the commit's short id.
    """
    try:
        commit = _git("rev-parse", "--short", f"{rev}^{{commit}}")
        archive = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "archive", "--format=tar", commit, *PACKAGES.values()],
            capture_output=True, check=True, timeout=60,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError) as exc:
        raise BenchError(f"cannot snapshot git revision {rev!r}: {exc}") from None
    source = dest / "src"
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(source, filter="data")
    for name, relative in PACKAGES.items():
        (dest / name).symlink_to(source / relative, target_is_directory=True)
    return commit


def code_under_test(rev: str | None, tmp: Path) -> tuple[Path | None, str | None]:
    """(directory to import planc/planrun from, description) for `--rev`; (None, None)
    measures the working tree through the editable install."""
    if rev is None:
        return None, None
    commit = snapshot(rev, tmp / "code")
    return tmp / "code", f"git {commit} (snapshot of --rev {rev}; the working tree is not used)"


def _git(*args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(REPO_ROOT), *args],
        capture_output=True, text=True, check=True, timeout=10,
    )  # fmt: skip
    return result.stdout.strip()


def load_text() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"


def machine_header(argv: Sequence[str], code: str | None = None) -> str:
    """The command line and the machine, printed at the top of every report.

    `code` says which code is measured when it is not the working tree (`snapshot`).
    """
    cpu = _cpu_model()
    lines = [
        f"command: {shlex.join([Path(sys.executable).name, *argv])}",
        f"date:    {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
        f"machine: nproc={os.cpu_count()}  {cpu}  {platform.system()} {platform.release()}",
        f"python:  {platform.python_version()} ({sys.executable})",
        f"code:    {code or _git_revision()}",
        f"load:    {load_text()} (other work on the machine skews absolute times)",
    ]
    return "\n".join(lines)


def _git_revision() -> str:
    """The working tree the figures belong to: its commit, and whether it had local changes."""
    try:
        commit = _git("rev-parse", "--short", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "working tree (not a git checkout)"
    return f"working tree at git {commit}" + (" + local changes" if dirty else "")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown cpu"


def run_measured(
    argv: Sequence[str],
    *,
    cwd: str | Path | None = None,
    stdout_path: str | Path | None = None,
    stderr_path: str | Path | None = None,
    env: dict[str, str] | None = None,
    timeout_sec: float = CHILD_TIMEOUT_SEC,
    mem_limit_mib: int | None = None,
) -> Measurement:
    """Run `argv` to completion; wall time from spawn to reap, peak RSS from wait4's rusage.

    Output goes to the given files (or /dev/null). Past `timeout_sec` the child's process
    group is killed and the measurement says `timed_out`; `mem_limit_mib` caps its address
    space (RLIMIT_AS), so a runaway child fails with MemoryError instead of exhausting the
    machine. On Ctrl-C or any error the group is killed before the exception propagates.
    """

    def limit_memory() -> None:
        if mem_limit_mib is not None:
            limit = mem_limit_mib * 2**20
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    floor = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    stdout = open(stdout_path, "wb") if stdout_path else subprocess.DEVNULL  # noqa: SIM115
    stderr = open(stderr_path, "wb") if stderr_path else subprocess.DEVNULL  # noqa: SIM115
    try:
        start = time.perf_counter()
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            env=env,
            start_new_session=True,
            preexec_fn=limit_memory if mem_limit_mib is not None else None,
        )
        timer = threading.Timer(timeout_sec, _kill_stragglers, (proc.pid,))
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
            elapsed = time.perf_counter() - start
        except BaseException:
            kill_group(proc)
            raise
        finally:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
    finally:
        for stream in (stdout, stderr):
            if not isinstance(stream, int):
                stream.close()
    # Children still alive in the group (a runner that leaked one) would skew the next run.
    _kill_stragglers(proc.pid)
    timed_out = elapsed >= timeout_sec and proc.returncode != 0
    return Measurement(elapsed, usage.ru_maxrss / 1024.0, proc.returncode, timed_out, floor)


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM then SIGKILL the child's process group, and reap the child."""
    for sig, grace in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=grace)
            break
        except subprocess.TimeoutExpired:
            continue
    _kill_stragglers(proc.pid)


def _kill_stragglers(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def exit_cleanly_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit, so `finally` blocks kill children and remove temp dirs."""

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain text table, right-aligned except the first column (also valid Markdown)."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        pairs = enumerate(zip(cells, widths, strict=True))
        parts = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in pairs]
        return "| " + " | ".join(parts) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISS"


def profile_child(
    python_args: Sequence[str],
    *,
    cwd: Path,
    title: str,
    limit: int = 25,
    env: dict[str, str] | None = None,
    timeout_sec: float = CHILD_TIMEOUT_SEC,
) -> str:
    """Run `python -m cProfile -o … ARGS` in `cwd`; the top functions by own and total time."""
    stats_path = cwd / "profile.pstats"
    argv = [sys.executable, "-m", "cProfile", "-o", str(stats_path), *python_args]
    result = run_measured(argv, cwd=cwd, env=env, timeout_sec=timeout_sec)
    if result.exit_code != 0:
        raise BenchError(f"profiled run exited {result.exit_code}: {shlex.join(argv)}")
    stats = pstats.Stats(str(stats_path))
    total = stats.total_tt  # type: ignore[attr-defined]
    entries = stats.stats  # type: ignore[attr-defined]
    lines = [f"{title}: {result.seconds:.2f} s wall under the profiler, {total:.2f} s profiled"]
    for key, label in (("own", "by own time"), ("cum", "by cumulative time")):
        index = 2 if key == "own" else 3
        ranked = sorted(entries.items(), key=lambda item: item[1][index], reverse=True)
        lines.append(f"  top {limit} {label}:   own s   cum s    calls  function")
        for (filename, lineno, name), (_, calls, own, cum, _) in ranked[:limit]:
            where = _short_path(filename)
            lines.append(
                f"  {100 * (own if key == 'own' else cum) / total:5.1f}%  {own:7.2f} {cum:7.2f}"
                f" {calls:8d}  {where}:{lineno}({name})"
            )
    stats_path.unlink()
    return "\n".join(lines)


def _short_path(filename: str) -> str:
    for marker in ("/compiler/", "/runtime/", "/code/", "/site-packages/", "/lib/python3"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename
