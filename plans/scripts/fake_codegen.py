"""A stand-in for a headless AI code generator CLI: streams progress, sometimes stalls.

    fake_codegen.py --task slug --out-dir REPO [--stall-first N [--stall-tasks T,T]] [--state FILE]

It prints a progress line every `--interval` seconds (flushed, so a heartbeat sees it), then
writes the task's module into `--out-dir` (atomically) and exits 0. Attempts number 1..N of
`--stall-first N` stall instead: after a few lines they print "waiting for the model" and then
nothing at all for `--stall-sec` seconds (default an hour), like a real generator whose backend
stopped answering. Only a heartbeat timeout gets the plan past that. With `--stall-tasks` only
the named tasks stall (a comma-separated list; empty: every task).

The attempt number is `$PLAN_ATTEMPT` (set by planrun for every attempt), or, with `--state
FILE`, a counter kept in FILE (incremented on every start), so the behaviour is deterministic
with or without planrun. Exit codes: 0 generated, 2 usage (unknown task).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from atomic_file import write_atomically
from codegen_tasks import TASKS, module_source


def attempt_number(state: Path | None) -> int:
    """This attempt's number: the state file's counter, else $PLAN_ATTEMPT, else 1."""
    if state is None:
        return int(os.environ.get("PLAN_ATTEMPT", "1"))
    previous = int(state.read_text().strip() or "0") if state.exists() else 0
    write_atomically(state, f"{previous + 1}\n")
    return previous + 1


def say(line: str) -> None:
    print(f"[fake_codegen] {line}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", required=True, help=f"one of {', '.join(TASKS)}")
    parser.add_argument("--out-dir", required=True, type=Path)
    parser.add_argument("--stall-first", type=int, default=0, metavar="N")
    parser.add_argument("--stall-tasks", default="", metavar="T,T")
    parser.add_argument("--state", type=Path, default=None, metavar="FILE")
    parser.add_argument("--lines", type=int, default=5, help="progress lines before writing")
    parser.add_argument("--interval", type=float, default=0.05, metavar="SEC")
    parser.add_argument("--stall-sec", type=float, default=3600.0, metavar="SEC")
    args = parser.parse_args(argv)

    if args.task not in TASKS:
        print(
            f"fake_codegen: unknown task {args.task!r} (known: {', '.join(TASKS)})", file=sys.stderr
        )
        return 2
    attempt = attempt_number(args.state)
    stalling = [t for t in args.stall_tasks.split(",") if t]
    stall = attempt <= args.stall_first and (not stalling or args.task in stalling)
    say(f"attempt {attempt}: generating {args.task!r}")
    for i in range(1, args.lines + 1):
        time.sleep(args.interval)
        say(f"streaming tokens {i}/{args.lines}")
        if stall and i == 2:
            say("waiting for the model…")
            time.sleep(args.stall_sec)  # silent: no output at all until killed
            print("fake_codegen: the model never answered", file=sys.stderr, flush=True)
            return 1
    name, source = module_source(args.task, f"fake_codegen (attempt {attempt})")
    target = args.out_dir / name
    write_atomically(target, source)
    say(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
