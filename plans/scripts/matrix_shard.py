"""One shard of a test suite for one Python version: the stand-in for `tox -e py311 -- --shard 1`.

    matrix_shard.py --python 3.11 --shard 1 --shards 2 --out-dir DIR [--fail 3.11-2] [--hold FILE]

Writes `DIR/VERSION-SHARD.json` (`{"python", "shard", "shards"}`) and exits 0. With `--fail`
naming this instance (`VERSION-SHARD`) it writes nothing and exits 1, as a failing shard would.
With `--hold FILE` it first waits (at most 60 s) until FILE exists: a shard still busy when a
sibling fails, to see `fail_fast` cancel it. Exit codes: 0 passed, 1 failed, 2 held too long.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", required=True)
    parser.add_argument("--shard", type=int, required=True)
    parser.add_argument("--shards", type=int, required=True)
    parser.add_argument("--out-dir", type=Path, required=True)
    parser.add_argument("--fail", default="")
    parser.add_argument("--hold", default="")
    args = parser.parse_args(argv)
    name = f"{args.python}-{args.shard}"
    print(f"python {args.python}: shard {args.shard} of {args.shards}", flush=True)
    if args.fail == name:
        print(f"python {args.python}: shard {args.shard} FAILED", file=sys.stderr, flush=True)
        return 1
    if args.hold:
        deadline = time.monotonic() + 60
        while not Path(args.hold).exists():
            if time.monotonic() > deadline:
                return 2
            time.sleep(0.05)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    record = {"python": args.python, "shard": args.shard, "shards": args.shards}
    (args.out_dir / f"{name}.json").write_text(json.dumps(record) + "\n", encoding="utf-8")
    print(f"python {args.python}: shard {args.shard} passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
