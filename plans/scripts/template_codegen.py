"""The fallback generator: writes the task's module from a fixed template, no model involved.

    template_codegen.py --task slug --out-dir REPO

Deterministic and fast: what a pipeline falls back to when the AI generator stalls or fails.
Exit codes: 0 written, 2 usage (unknown task).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from atomic_file import write_atomically
from codegen_tasks import TASKS, module_source


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", required=True, help=f"one of {', '.join(TASKS)}")
    parser.add_argument("--out-dir", required=True, type=Path)
    args = parser.parse_args(argv)
    if args.task not in TASKS:
        print(
            f"template_codegen: unknown task {args.task!r} (known: {', '.join(TASKS)})",
            file=sys.stderr,
        )
        return 2
    name, source = module_source(args.task, "template_codegen")
    target = args.out_dir / name
    write_atomically(target, source)
    print(f"[template_codegen] wrote {target}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
