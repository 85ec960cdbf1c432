"""Write a Markdown report of a document-id registry.

    doc_report.py --registry registry.jsonl --out report.md [--scan scan.json]

Lists every registered id with its current path and title (the latest registry line per id),
sorted by id, with counts. With `--scan`, also lists registered ids whose document is no
longer in the scanned directory. Exit codes: 0 written, 1 unreadable registry.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from atomic_file import write_atomically
from docids import latest, read_registry


def sort_key(doc_id: str) -> tuple[str, int, str]:
    prefix, _, number = doc_id.rpartition("-")
    return (prefix, int(number), "") if number.isdigit() else (doc_id, -1, doc_id)


def cell(text: str) -> str:
    return text.replace("|", "\\|")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registry", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--scan", type=Path, default=None, help="doc_scan.py's JSON file")
    args = parser.parse_args(argv)
    try:
        entries = read_registry(args.registry)
    except ValueError as exc:
        print(f"doc_report: {exc}", file=sys.stderr)
        return 1
    state = latest(entries)
    lines = [
        "# Document ids",
        "",
        f"{len(state)} documents registered ({len(entries)} registry lines).",
        "",
        "| id | path | title |",
        "|----|------|-------|",
    ]
    lines += [
        f"| {cell(i)} | {cell(state[i]['path'])} | {cell(state[i]['title'])} |"
        for i in sorted(state, key=sort_key)
    ]
    if args.scan is not None:
        scanned = {d["path"] for d in json.loads(args.scan.read_text("utf-8"))["documents"]}
        missing = [i for i in sorted(state, key=sort_key) if state[i]["path"] not in scanned]
        lines += ["", "## Registered but not found", ""]
        lines += [f"- {i} ({state[i]['path']})" for i in missing] or ["None."]
    write_atomically(args.out, "\n".join(lines) + "\n")
    print(f"doc_report: wrote {args.out} ({len(state)} ids)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
