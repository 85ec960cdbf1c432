#!/usr/bin/env python3
"""planrun's per-step overhead against the floor: GNU make and ninja running the same DAGs.

Each workload is one DAG of trivial steps, run by these tools at -j2:

- planrun: `python -m planrun IR.json -j2 --state-dir FRESH -q` (the plan is compiled to IR
  before any timing; planrun's start-up is timed, it is part of the real cost);
- make: `make -r -j2` on a generated Makefile, one phony target per step (recipe `@true`,
  prerequisites = dependencies) — the floor;
- ninja: `ninja -j2` on a generated build.ninja, one edge per step whose output is never
  created, so every run executes every step;
- python: a bare sequential loop of `subprocess.run` per step, in a fresh interpreter (a
  reference point: the cost of spawning from Python, without any bookkeeping);
- pyrun: the minimal parallel Python runner the issue describes (posix_spawn, blocking
  `os.wait`, a log file per step handed to the child, a flushed JSONL line per event, the
  DAG and -j honoured): what any Python runner costs before doing anything planrun does
  (no SQLite, no process-tree control, no timeouts, no policies);
- pyrun-db: pyrun plus what the issue demands of the recording, and nothing else: stdout and
  stderr in two files per step, every event in SQLite (WAL, synchronous=NORMAL) committed
  before each wait, then its JSONL line (no projections, no process-tree control, no policies);
- pyrun-full: pyrun-db plus, written as plainly as possible, the rest of what planrun keeps
  for every step (projections readable live, a fingerprint, process-tree control, the start
  time of each pid, the stderr tail): what those guarantees cost any Python runner;
- click (W0 only): `python -c "import click"`, the start-up floor of any runner whose command
  line is click, as planrun's is.

Workloads: W0 a single step (each tool's fixed start-up cost); W1 1,000 independent steps;
W2 a 300-step chain; W3 20 layers × 50 steps with full fan-in between consecutive layers
(47,500 edges); W4 20 independent steps each printing 20 MB (`head -c 20000000 /dev/zero`),
to a file for every tool (planrun's per-attempt log; `> file` for the others). The tools
alternate run by run (A B C D A B C D …) so background noise hits them alike; medians are
printed with ms/step and the ratios planrun/make and planrun/ninja, then issue 17's goals: W0 at
most 50 ms, W1–W3 at most 1.15× pyrun-db, W4's peak RSS under 100 MiB.

    python benchmarks/runtime_vs_floor.py                   # 5 runs of each tool per workload
    python benchmarks/runtime_vs_floor.py --repeat 9 --workloads W1,W3
    python benchmarks/runtime_vs_floor.py --quick           # smoke run, small workloads
    python benchmarks/runtime_vs_floor.py --profile W1      # + cProfile of one planrun run
    python benchmarks/runtime_vs_floor.py --dir /dev/shm    # on a tmpfs: without the disk's noise

See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
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

OUTPUT_BYTES = 20_000_000
TOOLS = ("planrun", "make", "ninja", "python", "pyrun", "pyrun-db", "pyrun-full", "click")
# The minimal Python runners, reference points between the floor and planrun.
PY_RUNNERS = ("pyrun", "pyrun-db", "pyrun-full")
# `python -c "import click"`: the start-up floor of any runner whose CLI is click (W0 only).
CLICK_FLOOR = "click"
# `--baseline REV` adds the tool `planrun@REV`: before and after, alternating in one run.
BASELINE_PREFIX = "planrun@"
# Issue 17's goals: W0 (start-up) at most 50 ms; W1–W3 at most 1.15× pyrun-db; W4's peak RSS.
STARTUP_GOAL_SEC = 0.050
FLOOR_GOAL = "pyrun-db"
# pyrun-db plus the rest of what planrun keeps per step: what the guarantees alone cost.
GUARANTEES_REFERENCE = "pyrun-full"
FLOOR_RATIO_GOALS = {"W1": 1.15, "W2": 1.15, "W3": 1.15}
W4_RSS_GOAL_MIB = 100.0

# The bare reference loop: a JSON list of [argv, log path or null], run in order.
_PYTHON_LOOP = """\
import json, subprocess, sys
for argv, log in json.load(open(sys.argv[1])):
    if log is None:
        subprocess.run(argv, stdin=subprocess.DEVNULL, check=True)
    else:
        with open(log, "wb") as out:
            subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, check=True)
"""

# The minimal parallel runner: a JSON list of [argv, dependency indexes], -j in argv[2], logs
# and events.jsonl in the directory argv[3] (created). Its mode, argv[4]:
# - none (pyrun): one log file per step, a flushed JSONL line per event;
# - "sqlite" (pyrun-db): what the issue demands of the recording and nothing more: stdout and
#   stderr in two files per step, and every event in SQLite (WAL, synchronous=NORMAL), committed
#   before each wait, then its JSONL line;
# - "full" (pyrun-full): pyrun-db plus, written as plainly as possible, the rest of what planrun
#   keeps for every step: projections a reader can query live (a steps row and an attempts row
#   updated in each event's transaction), a fingerprint (a hash of the command and of the
#   upstream fingerprints, its parts in step_started and, on success, in a fingerprints table),
#   process-tree control (each step in its own session with a tag in its environment, the
#   runner a subreaper, exits seen through pidfds in epoll rather than a blocking wait, so
#   that deadlines could fire; at each exit the step's process group and the adopted orphans
#   are checked), the step's start time recorded for its pid, and its stderr tail read.
# The environment is built once: spawning with os.environ itself re-encodes it every time.
_PYTHON_RUNNER = """\
import json, os, sys
jobs = json.load(open(sys.argv[1])); limit = int(sys.argv[2]); out = sys.argv[3]
mode = sys.argv[4] if len(sys.argv) > 4 else ""
record, full = mode in ("sqlite", "full"), mode == "full"
os.mkdir(out)
events = open(os.path.join(out, "events.jsonl"), "w")
pending, seq = [], 0
environ = dict(os.environ)
if record:
    import sqlite3
    db = sqlite3.connect(os.path.join(out, "state.db"), isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY, type TEXT, step INTEGER, line TEXT)")
def emit(kind, step, **payload):
    global seq
    seq += 1
    line = json.dumps({"seq": seq, "type": kind, "step": step, **payload})
    if record:
        pending.append((seq, kind, step, line, payload))
    else:
        events.write(line + "\\n")
        events.flush()
def commit():
    if pending:
        db.execute("BEGIN IMMEDIATE")
        db.executemany("INSERT INTO events VALUES (?, ?, ?, ?)", [p[:4] for p in pending])
        if full:
            for p in pending:
                project(p[1], p[2], p[4])
        db.execute("COMMIT")
        events.write("".join(p[3] + "\\n" for p in pending))
        events.flush()
        pending.clear()
if full:
    import ctypes, hashlib, select, signal, time
    ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    db.executescript(
        "CREATE TABLE steps (step INTEGER PRIMARY KEY, status TEXT, attempts INTEGER,"
        " exit_code INTEGER, started_at REAL, finished_at REAL, fingerprint TEXT);"
        "CREATE TABLE attempts (step INTEGER, attempt INTEGER, pid INTEGER, pgid INTEGER,"
        " start_tick INTEGER, status TEXT, exit_code INTEGER, started_at REAL, finished_at REAL,"
        " PRIMARY KEY (step, attempt));"
        "CREATE TABLE fingerprints (step INTEGER PRIMARY KEY, fingerprint TEXT, parts TEXT);")
    db.executemany("INSERT INTO steps (step, status, attempts) VALUES (?, 'pending', 0)",
                   [(i,) for i in range(len(jobs))])
    poller, pidfds, fingerprint = select.epoll(), {}, {}
    tick_ns = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
    children = f"/proc/{os.getpid()}/task/{os.getpid()}/children"
    def project(kind, step, p):
        now = time.time()
        if kind == "started":
            db.execute("UPDATE steps SET status = 'running', attempts = 1, started_at = ?,"
                       " fingerprint = ? WHERE step = ?", (now, p["fingerprint"], step))
            db.execute("DELETE FROM fingerprints WHERE step = ?", (step,))
            db.execute("INSERT INTO attempts VALUES (?, 1, ?, ?, ?, 'running', NULL, ?, NULL)",
                       (step, p["pid"], p["pid"], p["start_tick"], now))
        else:
            status = "success" if p["exit_code"] == 0 else "failed"
            db.execute("UPDATE attempts SET status = ?, exit_code = ?, finished_at = ?"
                       " WHERE step = ? AND attempt = 1", (status, p["exit_code"], now, step))
            db.execute("UPDATE steps SET status = ?, exit_code = ?, finished_at = ?"
                       " WHERE step = ?", (status, p["exit_code"], now, step))
            if status == "success":
                db.execute("INSERT OR REPLACE INTO fingerprints VALUES (?, ?, ?)",
                           (step, fingerprint[step][0], fingerprint[step][1]))
def wait_one():
    if not full:
        return os.wait()
    while True:
        for fd, _ in poller.poll(None):  # a step's deadline would be the timeout here
            pid = pidfds[fd]
            done, status = os.waitpid(pid, os.WNOHANG)
            if not done:
                continue
            poller.unregister(fd)
            os.close(fd)
            del pidfds[fd]
            try:
                os.killpg(pid, 0)  # a member left: planrun would stop it and wait
            except ProcessLookupError:
                pass
            with open(children, "rb") as f:  # adopted orphans: planrun attributes them
                f.read()
            with open(os.path.join(out, f"{running[pid]}.err"), "rb") as f:  # a failure's
                f.seek(max(0, os.fstat(f.fileno()).st_size - 4096))  # event would carry it
                f.read()
            return pid, status
waiting = [len(deps) for _, deps in jobs]
dependents = [[] for _ in jobs]
for index, (_, deps) in enumerate(jobs):
    for dep in deps:
        dependents[dep].append(index)
ready = [i for i, n in enumerate(waiting) if n == 0][::-1]
running = {}
stdin = os.open(os.devnull, os.O_RDONLY)
flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
done = 0
while done < len(jobs):
    while ready and len(running) < limit:
        index = ready.pop()
        log = os.open(os.path.join(out, f"{index}.log"), flags, 0o666)
        err = os.open(os.path.join(out, f"{index}.err"), flags, 0o666) if record else log
        actions = [(os.POSIX_SPAWN_DUP2, stdin, 0), (os.POSIX_SPAWN_DUP2, log, 1),
                   (os.POSIX_SPAWN_DUP2, err, 2)]
        argv = jobs[index][0]
        if full:
            upstream = {str(d): fingerprint[d][0] for d in jobs[index][1]}
            parts = {"command": argv, "upstream": upstream}
            text = json.dumps(parts, sort_keys=True)
            fingerprint[index] = (hashlib.sha256(text.encode()).hexdigest(), text)
            before = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
            pid = os.posix_spawnp(argv[0], argv, {**environ, "PLAN_TAG": f"t-{index}"},
                                  file_actions=actions, setsid=True,
                                  setsigdef=(signal.SIGPIPE, signal.SIGXFSZ))
            fd = os.pidfd_open(pid)
            pidfds[fd] = pid
            poller.register(fd, select.EPOLLIN)
            tick = before // tick_ns
            emit("started", index, pid=pid, start_tick=tick, tag=f"t-{index}", argv=argv,
                 cwd=os.getcwd(), stdout_log=os.path.join(out, f"{index}.log"),
                 stderr_log=os.path.join(out, f"{index}.err"),
                 fingerprint=fingerprint[index][0], fingerprint_parts=parts)
        else:
            pid = os.posix_spawnp(argv[0], argv, environ, file_actions=actions)
        os.close(log)
        if err != log:
            os.close(err)
        running[pid] = index
        if not full:
            emit("started", index, pid=pid)
    if record:
        commit()
    pid, status = wait_one()
    index = running.pop(pid)
    code = os.waitstatus_to_exitcode(status)
    emit("finished", index, exit_code=code)
    if code != 0:
        sys.exit(f"step {index} failed")
    done += 1
    for child in dependents[index]:
        waiting[child] -= 1
        if waiting[child] == 0:
            ready.append(child)
if record:
    commit()
"""


@dataclass(frozen=True)
class Workload:
    name: str
    title: str
    deps: list[list[int]]  # per step, in topological order: the indexes it depends on
    output_bytes: int = 0  # each step writes this much to stdout (0: the step is `true`)

    @property
    def steps(self) -> int:
        return len(self.deps)

    @property
    def edges(self) -> int:
        return sum(len(d) for d in self.deps)

    @property
    def argv(self) -> list[str]:
        if self.output_bytes:
            return ["head", "-c", str(self.output_bytes), "/dev/zero"]
        return ["true"]


def independent(name: str, steps: int, output_bytes: int = 0) -> Workload:
    what = f"{steps:,} independent steps"
    if output_bytes:
        what += f", each printing {output_bytes / 1e6:g} MB"
    return Workload(name, what, [[] for _ in range(steps)], output_bytes)


def chain(name: str, steps: int) -> Workload:
    return Workload(name, f"a {steps:,}-step chain", [[i - 1] if i else [] for i in range(steps)])


def layers(name: str, count: int, width: int) -> Workload:
    deps = [
        [] if layer == 0 else list(range((layer - 1) * width, layer * width))
        for layer in range(count)
        for _ in range(width)
    ]
    title = f"{count} layers × {width} steps, full fan-in ({(count - 1) * width * width:,} edges)"
    return Workload(name, title, deps)


def workloads(quick: bool) -> list[Workload]:
    startup = Workload("W0", "1 step: the fixed start-up cost of each tool", [[]])
    if quick:
        return [
            startup,
            independent("W1", 100),
            chain("W2", 30),
            layers("W3", 5, 10),
            independent("W4", 4, OUTPUT_BYTES),
        ]
    return [
        startup,
        independent("W1", 1_000),
        chain("W2", 300),
        layers("W3", 20, 50),
        independent("W4", 20, OUTPUT_BYTES),
    ]


def sid(index: int) -> str:
    return f"s{index:05d}"


# --- the inputs of each tool -----------------------------------------------------------------


def write_plan(w: Workload, path: Path) -> None:
    """The plan as JSON (no timeouts: none of the other tools has one either)."""
    command, *args = w.argv
    steps = [
        {"id": sid(i), "command": command, "args": args, "depends_on": [sid(d) for d in deps]}
        for i, deps in enumerate(w.deps)
    ]
    plan = {"plan_id": f"BENCH-{w.name}", "globals": {"max_concurrency": 2}, "steps": steps}
    path.write_text(json.dumps(plan, indent=1) + "\n", encoding="utf-8")


def write_makefile(w: Workload, path: Path) -> None:
    """One phony target per step, prerequisites = dependencies, `all` wants every step."""
    names = [sid(i) for i in range(w.steps)]
    lines = [f".PHONY: all {' '.join(names)}", f"all: {' '.join(names)}"]
    for i, deps in enumerate(w.deps):
        lines.append(f"{names[i]}: {' '.join(sid(d) for d in deps)}".rstrip())
        redirect = f" > out/{names[i]}.log" if w.output_bytes else ""
        lines.append(f"\t@{' '.join(w.argv)}{redirect}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_ninja(w: Workload, path: Path) -> None:
    """One edge per step; its output file is never created, so every run runs every edge."""
    redirect = " > out/$out.log" if w.output_bytes else ""
    lines = ["rule run", f"  command = {' '.join(w.argv)}{redirect}", "  description = $out"]
    for i, deps in enumerate(w.deps):
        lines.append(f"build {sid(i)}: run {' '.join(sid(d) for d in deps)}".rstrip())
    lines.append(f"build all: phony {' '.join(sid(i) for i in range(w.steps))}")
    lines.append("default all")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_loop_jobs(w: Workload, path: Path, out_dir: Path) -> None:
    logs = [str(out_dir / f"{sid(i)}.log") if w.output_bytes else None for i in range(w.steps)]
    jobs = [[w.argv, log] for log in logs]
    path.write_text(json.dumps(jobs), encoding="utf-8")


def write_runner_jobs(w: Workload, path: Path) -> None:
    path.write_text(json.dumps([[w.argv, deps] for deps in w.deps]), encoding="utf-8")


# --- one run of one tool -----------------------------------------------------------------------


@dataclass
class Bench:
    """The prepared directory of one workload and the commands that run it."""

    workload: Workload
    root: Path
    jobs: int
    env: dict[str, str]
    baseline_env: dict[str, str] | None = None  # `planrun@REV`: planrun from a snapshot of REV
    runs: dict[str, list[Measurement]] = field(default_factory=dict)
    _counter: int = 0

    def prepare(self) -> None:
        w = self.workload
        self.root.mkdir(parents=True)
        for tool in ("make", "ninja", "python", "pyrun"):
            (self.root / tool).mkdir()
        write_plan(w, self.root / "plan.json")
        compiled = run_measured(
            [sys.executable, "-m", "planc", "compile", "plan.json", "-o", "plan.ir.json"],
            cwd=self.root,
            stderr_path=self.root / "planc.stderr",
            env=self.env,
        )
        if compiled.exit_code != 0:
            detail = (self.root / "planc.stderr").read_text(encoding="utf-8", errors="replace")
            raise BenchError(f"{w.name}: planc compile failed:\n{detail[:3000]}")
        write_makefile(w, self.root / "make" / "Makefile")
        write_ninja(w, self.root / "ninja" / "build.ninja")
        write_loop_jobs(w, self.root / "python" / "jobs.json", self.root / "python" / "out")
        write_runner_jobs(w, self.root / "pyrun" / "jobs.json")

    def command(self, tool: str) -> tuple[list[str], Path, Path | None]:
        """argv, cwd, and the directory the step outputs land in (checked after the run)."""
        j = str(self.jobs)
        self._counter += 1
        if _is_planrun(tool):
            state = self.root / f"state-{self._counter}"
            argv = [sys.executable, "-m", "planrun", "plan.ir.json", "-j", j, "-q"]
            return [*argv, "--state-dir", state.name], self.root, state
        if tool in PY_RUNNERS:
            out = self.root / "pyrun" / f"{tool}-{self._counter}"
            argv = [sys.executable, "-c", _PYTHON_RUNNER, "jobs.json", j, out.name]
            mode = {FLOOR_GOAL: ["sqlite"], GUARANTEES_REFERENCE: ["full"]}.get(tool, [])
            return [*argv, *mode], self.root / "pyrun", out
        if tool == "make":
            return ["make", "-r", "-j", j, "-f", "Makefile"], self.root / "make", self._out("make")
        if tool == "ninja":
            return ["ninja", "-j", j, "-f", "build.ninja"], self.root / "ninja", self._out("ninja")
        if tool == CLICK_FLOOR:
            return [sys.executable, "-c", "import click"], self.root, None
        loop = [sys.executable, "-c", _PYTHON_LOOP, "jobs.json"]
        return loop, self.root / "python", self._out("python")

    def _out(self, tool: str) -> Path | None:
        if not self.workload.output_bytes:
            return None
        out = self.root / tool / "out"
        out.mkdir(exist_ok=True)
        return out

    def run(self, tool: str, record: bool) -> Measurement:
        argv, cwd, outputs = self.command(tool)
        stderr = self.root / f"{tool}.stderr"
        env = self.baseline_env if tool.startswith(BASELINE_PREFIX) else self.env
        result = run_measured(argv, cwd=cwd, stderr_path=stderr, env=env)
        try:
            if result.exit_code != 0:
                detail = stderr.read_text(encoding="utf-8", errors="replace")[-3000:]
                name = self.workload.name
                raise BenchError(f"{name}: {tool} exited {result.exit_code}:\n{detail}")
            if outputs is not None:
                self._check_outputs(tool, outputs)
        finally:
            # Large outputs are removed after each run, whoever wrote them. Small files stay
            # until the end: on this ext4 (no journal) creating a file just after a mass deletion
            # scans the freed inodes, which would bill the next planrun or pyrun run for them.
            if outputs is not None and self.workload.output_bytes:
                shutil.rmtree(outputs, ignore_errors=True)
            if tool == "ninja":  # ninja's log grows by one line per edge and run
                (cwd / ".ninja_log").unlink(missing_ok=True)
        if record:
            self.runs.setdefault(tool, []).append(result)
        return result

    def _check_outputs(self, tool: str, outputs: Path) -> None:
        """Every step ran and wrote all of its output (for planrun: its stdout logs)."""
        w = self.workload
        pattern = "runs/*/logs/*.stdout" if _is_planrun(tool) else "*.log"
        total = sum(p.stat().st_size for p in outputs.glob(pattern))
        expected = w.steps * w.output_bytes
        if total != expected:
            raise BenchError(f"{w.name}: {tool} wrote {total} bytes of output, not {expected}")


def _is_planrun(tool: str) -> bool:
    """planrun, or planrun at the --baseline revision."""
    return tool == "planrun" or tool.startswith(BASELINE_PREFIX)


# --- the report ----------------------------------------------------------------------------------


def report(benches: list[Bench], tools: list[str]) -> str:
    headers = ["workload", "steps", "edges"]
    for tool in tools:
        headers += [f"{tool} s", "ms/step"]
    rows = []
    for b in benches:
        w = b.workload
        row = [w.name, f"{w.steps:,}", f"{w.edges:,}"]
        for tool in tools:
            if tool not in b.runs:
                row += ["–", "–"]
                continue
            seconds = _seconds(b, tool, median)
            row += [f"{seconds:.3f}", f"{1000 * seconds / w.steps:.2f}"]
        rows.append(row)
    lines = ["median wall time of each tool:", table(headers, rows), ""]

    floors = [t for t in ("make", "ninja") if t in tools]
    if "planrun" in tools and floors:
        headers = ["workload"]
        for floor in floors:
            headers += [f"planrun/{floor}", "(best runs)", "+ms/step"]
        headers += ["goal", "planrun peak MiB"]
        rows = []
        for b in benches:
            row = [b.workload.name]
            for floor in floors:
                extra = _seconds(b, "planrun", median) - _seconds(b, floor, median)
                row += [
                    f"{_ratio(b, 'planrun', floor):.2f}",
                    f"{_ratio(b, 'planrun', floor, min):.2f}",
                    f"{1000 * extra / b.workload.steps:.2f}",
                ]
            row += [_goal_text(b.workload), _peak_text(b, "planrun")]
            rows.append(row)
        lines += [
            "planrun against the floor (ratios of medians; of the fastest runs in parentheses,"
            " less sensitive to background load; +ms/step = planrun's extra cost per step):",
            table(headers, rows),
            "",
        ]

    runners = [t for t in PY_RUNNERS if t in tools]
    if runners and {"planrun", "make"} <= set(tools):
        headers = ["workload"]
        for runner in runners:
            headers += [f"{runner}/make", "(best runs)", f"planrun/{runner}", "(best runs)"]
        rows = []
        for b in benches:
            row = [b.workload.name]
            for runner in runners:
                row += [
                    f"{_ratio(b, runner, 'make'):.2f}",
                    f"{_ratio(b, runner, 'make', min):.2f}",
                    f"{_ratio(b, 'planrun', runner):.2f}",
                    f"{_ratio(b, 'planrun', runner, min):.2f}",
                ]
            rows.append(row)
        lines += [
            "the minimal Python runners against make, and planrun against them (pyrun: the issue's"
            " minimal runner; pyrun-db: the same plus the issue's recording, two logs per step and"
            " every event in SQLite before each wait; pyrun-full: pyrun-db plus, plainly written,"
            " the rest of what planrun keeps per step):",
            table(headers, rows),
            "",
        ]

    rss_headers = ["workload", *(f"{t} peak MiB" for t in tools)]
    rss_rows = [
        [b.workload.name, *(_peak_text(b, t) if t in b.runs else "–" for t in tools)]
        for b in benches
    ]
    lines += [
        "peak RSS (largest single process of the run; ≤N: at most the fork floor N):",
        table(rss_headers, rss_rows),
        "",
    ]

    baselines = [t for t in tools if t.startswith(BASELINE_PREFIX)]
    if baselines and "planrun" in tools:
        headers = ["workload"]
        for base in baselines:
            headers += [f"planrun/{base}", "(best runs)"]
            if FLOOR_GOAL in tools:
                headers += [f"{base}/{FLOOR_GOAL}", f"planrun/{FLOOR_GOAL}"]
        rows = []
        for b in benches:
            row = [b.workload.name]
            for base in baselines:
                row += [
                    f"{_ratio(b, 'planrun', base):.2f}",
                    f"{_ratio(b, 'planrun', base, min):.2f}",
                ]
                if FLOOR_GOAL in tools:
                    row += [
                        f"{_ratio(b, base, FLOOR_GOAL):.2f}",
                        f"{_ratio(b, 'planrun', FLOOR_GOAL):.2f}",
                    ]
            rows.append(row)
        lines += [
            "planrun against its baseline revision, alternating in this run (< 1: faster):",
            table(headers, rows),
            "",
        ]

    if "planrun" in tools:
        lines += [line for b in benches if (line := _goal_line(b)) is not None]
    return "\n".join(lines)


def _goal_text(w: Workload) -> str:
    if w.steps == 1:
        return f"≤ {1000 * STARTUP_GOAL_SEC:g} ms"
    if w.output_bytes:
        return f"< {W4_RSS_GOAL_MIB:g} MiB"
    goal = FLOOR_RATIO_GOALS.get(w.name)
    return f"≤ {goal:g}× {FLOOR_GOAL}" if goal else "–"


def _goal_line(b: Bench) -> str | None:
    """Issue 17's goal for the workload, and whether planrun met it in this run."""
    w = b.workload
    if w.steps == 1:
        seconds = _seconds(b, "planrun", median)
        text = f"goal {w.name}: planrun ≤ {1000 * STARTUP_GOAL_SEC:g} ms: {1000 * seconds:.0f} ms"
        if CLICK_FLOOR in b.runs:
            floor = _seconds(b, CLICK_FLOOR, median)
            text += f" (python -c 'import click' alone: {1000 * floor:.0f} ms)"
        return f"{text}  [{verdict(seconds <= STARTUP_GOAL_SEC)}]"
    if w.output_bytes:
        peak = _peak(b, "planrun")
        text = f"goal {w.name}: planrun's peak RSS < {W4_RSS_GOAL_MIB:g} MiB: {peak:.0f} MiB"
        return f"{text}  [{verdict(peak < W4_RSS_GOAL_MIB)}]"
    goal = FLOOR_RATIO_GOALS.get(w.name)
    if goal is None or FLOOR_GOAL not in b.runs:
        return None
    ratio = _ratio(b, "planrun", FLOOR_GOAL)
    text = f"goal {w.name}: planrun ≤ {goal:g}× {FLOOR_GOAL}: {ratio:.2f}×"
    if GUARANTEES_REFERENCE in b.runs:
        text += (
            f" ({GUARANTEES_REFERENCE}, the guarantees alone, plainly written:"
            f" {_ratio(b, GUARANTEES_REFERENCE, FLOOR_GOAL):.2f}×;"
            f" planrun/{GUARANTEES_REFERENCE} {_ratio(b, 'planrun', GUARANTEES_REFERENCE):.2f}×)"
        )
    return f"{text}  [{verdict(ratio <= goal)}]"


def _seconds(b: Bench, tool: str, pick: Callable[[list[float]], float]) -> float:
    times = [m.seconds for m in b.runs.get(tool, [])]
    return pick(times) if times else float("nan")


def _ratio(b: Bench, tool: str, floor: str, pick: Callable[[list[float]], float] = median) -> float:
    base = _seconds(b, floor, pick)
    return _seconds(b, tool, pick) / base if base else float("nan")


def _peak_text(b: Bench, tool: str) -> str:
    runs = b.runs.get(tool, [])
    if not runs:
        return "–"
    worst = max(runs, key=lambda m: m.peak_rss_mib)
    return worst.rss_text()


def _peak(b: Bench, tool: str) -> float:
    runs = b.runs.get(tool, [])
    return max((m.peak_rss_mib for m in runs), default=float("nan"))


def details(benches: list[Bench], tools: list[str]) -> str:
    """Every run's time, in run order, so outliers and drift are visible."""
    lines = ["all runs (s):"]
    for b in benches:
        for tool in tools:
            if tool not in b.runs:
                continue
            times = " ".join(f"{m.seconds:.3f}" for m in b.runs[tool])
            lines.append(f"  {b.workload.name} {tool:8} {times}")
    return "\n".join(lines)


# --- main --------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per tool [5]")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first [1]")
    parser.add_argument("-j", "--jobs", type=int, default=2, help="parallelism of every tool [2]")
    parser.add_argument("--workloads", help="comma-separated subset of W0,W1,W2,W3,W4")
    parser.add_argument("--tools", help=f"comma-separated subset of {','.join(TOOLS)}")
    parser.add_argument("--quick", action="store_true", help="small workloads, one run")
    parser.add_argument(
        "--profile", metavar="WORKLOAD", help="also cProfile one planrun run of WORKLOAD"
    )
    parser.add_argument(
        "--dir",
        help="where the workloads run [the system's temporary directory]; on a tmpfs"
        " (/dev/shm) the disk's noise is out of the measurement, and what is left is CPU",
    )
    parser.add_argument(
        "--rev", help="measure this git revision (a snapshot) instead of the working tree"
    )
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="also run planrun from git revision REV (tool planrun@REV), alternating with the"
        " others: a before/after comparison in one run",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.repeat, args.warmup = 1, 0
    wanted = args.tools.split(",") if args.tools else list(TOOLS)
    unknown = [t for t in wanted if t not in TOOLS]
    if unknown:
        parser.error(f"unknown tools: {', '.join(unknown)}")
    args.tools = [
        t for t in TOOLS if t in wanted and (t not in ("make", "ninja") or shutil.which(t))
    ]
    if args.baseline:
        args.tools.insert(1, BASELINE_PREFIX + args.baseline)
    for missing in sorted(set(wanted) - set(args.tools)):
        print(f"note: {missing} is not installed; skipped", file=sys.stderr)
    if args.repeat < 1 or args.warmup < 0 or args.jobs < 1:
        parser.error("--repeat and -j must be positive, --warmup not negative")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    exit_cleanly_on_sigterm()
    names = args.workloads.split(",") if args.workloads else None
    selected = [w for w in workloads(args.quick) if names is None or w.name in names]
    benches: list[Bench] = []
    with tempfile.TemporaryDirectory(prefix="plan-bench-runtime-", dir=args.dir) as tmp:
        try:
            code_dir, code = code_under_test(args.rev, Path(tmp))
            env = child_env(Path(tmp) / "pycache", code_dir)
            baseline_env = None
            if args.baseline:
                baseline_dir, baseline = code_under_test(args.baseline, Path(tmp) / "baseline")
                baseline_env = child_env(Path(tmp) / "pycache-baseline", baseline_dir)
                print(f"baseline: planrun@{args.baseline} is {baseline}")
            print(machine_header([__file__, *argv], code))
            print(f"tools:   {_versions(args.tools)}")
            print(f"repeat: {args.repeat}  warm-up rounds: {args.warmup}  -j{args.jobs}")
            print(f"workloads under {tmp} ({_filesystem(Path(tmp))})")
            for w in selected:
                print(f"  {w.name}: {w.title}")
            print(flush=True)
            for w in selected:
                bench = Bench(w, Path(tmp) / w.name, args.jobs, env, baseline_env)
                bench.prepare()
                print(f"  running {w.name}…", file=sys.stderr, flush=True)
                tools = [t for t in args.tools if t != CLICK_FLOOR or w.steps == 1]
                for round_ in range(args.warmup + args.repeat):
                    for tool in tools:
                        bench.run(tool, record=round_ >= args.warmup)
                benches.append(bench)
            print(report(benches, args.tools))
            print()
            print(details(benches, args.tools))
            print(f"{load_text()} at the end", flush=True)
            if args.profile:
                print()
                print(_profile(Path(tmp), args.profile, args.jobs, args.quick, env))
        except BenchError as exc:
            print(f"runtime_vs_floor: {exc}", file=sys.stderr)
            return 1
    return 0


def _profile(tmp: Path, name: str, jobs: int, quick: bool, env: dict[str, str]) -> str:
    by_name = {w.name: w for w in workloads(quick)}
    if name not in by_name:
        raise BenchError(f"--profile: unknown workload {name}")
    bench = Bench(by_name[name], tmp / f"profile-{name}", jobs, env)
    bench.prepare()
    args = ["-m", "planrun", "plan.ir.json", "-j", str(jobs), "-q", "--state-dir", "state-prof"]
    title = f"cProfile: planrun {name} ({bench.workload.title}), -j{jobs}"
    return profile_child(args, cwd=bench.root, title=title, env=env)


def _filesystem(path: Path) -> str:
    """The type of the filesystem `path` is on (/proc/mounts' longest matching mount point)."""
    best, kind = "", "unknown filesystem"
    try:
        mounts = Path("/proc/mounts").read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return kind
    resolved = str(path.resolve())
    for line in mounts:
        fields = line.split()
        if len(fields) > 2 and len(fields[1]) > len(best):
            point = fields[1]
            if resolved == point or resolved.startswith(point.rstrip("/") + "/"):
                best, kind = point, fields[2]
    return kind


def _versions(tools: list[str]) -> str:
    probes: dict[str, Callable[[], str]] = {
        "make": lambda: _first_line(["make", "--version"]),
        "ninja": lambda: "ninja " + _first_line(["ninja", "--version"]),
    }
    return "; ".join(probes[t]() for t in tools if t in probes) or "-"


def _first_line(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return f"{argv[0]} (version unknown)"
    return (out.stdout.splitlines() or ["?"])[0].strip()


if __name__ == "__main__":
    sys.exit(main())
