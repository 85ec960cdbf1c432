"""Scan a directory of Markdown documents: list each one with its doc id and title.

    doc_scan.py --docs DIR --out scan.json

Writes `{"docs_dir": ABSOLUTE_DIR, "documents": [{"path", "doc_id", "title"}, ...]}` (paths
relative to DIR, sorted; `doc_id` null when the document has none) and publishes the step
output `scan_file` (the absolute path of the JSON file). Changes no document.
Exit codes: 0 scanned, 1 the directory does not exist.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from atomic_file import write_atomically
from docids import read_document, set_output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", required=True, type=Path, help="directory of *.md documents")
    parser.add_argument("--out", required=True, type=Path, help="the JSON file to write")
    args = parser.parse_args(argv)
    root: Path = args.docs.resolve()
    if not root.is_dir():
        print(f"doc_scan: {args.docs} is not a directory", file=sys.stderr)
        return 1
    documents = [read_document(root, path) for path in sorted(root.rglob("*.md"))]
    out: Path = args.out.resolve()
    scan = {"docs_dir": str(root), "documents": [d.to_json() for d in documents]}
    write_atomically(out, json.dumps(scan, indent=2, ensure_ascii=False) + "\n")
    without = sum(1 for d in documents if d.doc_id is None)
    print(f"doc_scan: {len(documents)} documents in {root}, {without} without an id")
    set_output("scan_file", str(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
