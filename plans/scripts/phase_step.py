"""One step of a phased plan: a workstream writes its marker, a gate checks a phase's markers.

    phase_step.py work --out-dir DIR --phase N --workstream NAME
    phase_step.py gate --out-dir DIR --phase N --workstreams NAME [NAME ...]

A marker is `DIR/phaseN.NAME.json` (`DIR/phaseN.gate.json` for the gate):
`{"phase", "name", "time_ns"}`, written atomically, `time_ns` the wall clock when it was
written. A workstream of phase N > 0 first checks that the gate of phase N-1 passed; a gate
checks that every named workstream of its phase wrote its marker. Both refuse to run (exit 1,
saying what is missing) otherwise, so the order is checked by the steps themselves, not only by
the plan's dependencies. Exit codes: 0 done, 1 a required marker is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path


def marker(out_dir: Path, phase: int, name: str) -> Path:
    return out_dir / f"phase{phase}.{name}.json"


def write_marker(out_dir: Path, phase: int, name: str) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = marker(out_dir, phase, name)
    text = json.dumps({"phase": phase, "name": name, "time_ns": time.time_ns()}) + "\n"
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)
    return path


def require(paths: list[Path], what: str) -> bool:
    missing = [p for p in paths if not p.is_file()]
    for path in missing:
        print(f"phase_step: {what}: {path} is missing", file=sys.stderr)
    return not missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    work = sub.add_parser("work", help="a workstream: write this workstream's marker")
    work.add_argument("--workstream", required=True)
    gate = sub.add_parser("gate", help="a gate: check the phase's workstream markers")
    gate.add_argument("--workstreams", required=True, nargs="+")
    for command in (work, gate):
        command.add_argument("--out-dir", required=True, type=Path)
        command.add_argument("--phase", required=True, type=int)
    args = parser.parse_args(argv)

    out_dir: Path = args.out_dir
    phase: int = args.phase
    if args.command == "work":
        previous_gate = [marker(out_dir, phase - 1, "gate")] if phase > 0 else []
        if not require(previous_gate, f"phase {phase} starts only after gate {phase - 1}"):
            return 1
        path = write_marker(out_dir, phase, args.workstream)
        print(f"phase {phase}: workstream {args.workstream} done ({path.name})")
        return 0
    required = [marker(out_dir, phase, name) for name in args.workstreams]
    if not require(required, f"gate {phase} needs every workstream of phase {phase}"):
        return 1
    path = write_marker(out_dir, phase, "gate")
    print(f"phase {phase}: gate passed ({', '.join(args.workstreams)}; {path.name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
