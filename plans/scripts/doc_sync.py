"""Sync document ids into a JSONL registry: give every document an id, record every id.

    doc_sync.py --scan scan.json --registry registry.jsonl [--prefix DOC] [--width 3]

Reads the scan (doc_scan.py). Refuses duplicate ids (two documents with one id) before changing
anything. Gives each document without an id the next free `PREFIX-NNN` (one above the highest
number in the registry or the documents), written into its front matter, and appends a line to
the registry for every document whose id the registry does not know (`assigned` or
`registered`) or whose path or title changed (`updated`); see docids.py. Running it again
changes nothing. Publishes the step output `registry` (the registry's absolute path).
Exit codes: 0 synced, 1 duplicate ids or an unreadable registry.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from docids import id_number, latest, read_registry, set_doc_id, set_output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scan", required=True, type=Path, help="doc_scan.py's JSON file")
    parser.add_argument("--registry", required=True, type=Path, help="the JSONL registry")
    parser.add_argument("--prefix", default="DOC", help="id prefix (default DOC)")
    parser.add_argument("--width", type=int, default=3, help="digits in a new id (default 3)")
    args = parser.parse_args(argv)

    scan = json.loads(args.scan.read_text(encoding="utf-8"))
    root = Path(scan["docs_dir"])
    documents: list[dict[str, Any]] = scan["documents"]
    registry_path: Path = args.registry.resolve()
    try:
        known = latest(read_registry(registry_path))
    except ValueError as exc:
        print(f"doc_sync: {exc}", file=sys.stderr)
        return 1

    paths_by_id: dict[str, list[str]] = defaultdict(list)
    for doc in documents:
        if doc["doc_id"] is not None:
            paths_by_id[doc["doc_id"]].append(doc["path"])
    duplicates = {i: p for i, p in paths_by_id.items() if len(p) > 1}
    if duplicates:
        for doc_id, paths in sorted(duplicates.items()):
            print(f"doc_sync: duplicate id {doc_id}: {', '.join(paths)}", file=sys.stderr)
        return 1

    numbers = [id_number(i, args.prefix) for i in [*known, *paths_by_id]]
    next_number = max((n for n in numbers if n is not None), default=0) + 1
    appended: list[dict[str, Any]] = []
    for doc in documents:
        event = None
        doc_id = doc["doc_id"]
        if doc_id is None:
            doc_id = f"{args.prefix}-{next_number:0{args.width}d}"
            next_number += 1
            set_doc_id(root / doc["path"], doc_id)  # the document first: a rerun registers it
            event = "assigned"
        elif doc_id not in known:
            event = "registered"
        elif (known[doc_id]["path"], known[doc_id]["title"]) != (doc["path"], doc["title"]):
            event = "updated"
        if event is not None:
            entry = {"doc_id": doc_id, "path": doc["path"], "title": doc["title"], "event": event}
            appended.append(entry)
            print(f"doc_sync: {event} {doc_id} {doc['path']}")
    if appended:
        registry_path.parent.mkdir(parents=True, exist_ok=True)
        with registry_path.open("a", encoding="utf-8") as handle:
            for entry in appended:
                handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
    print(f"doc_sync: {len(appended)} registry lines appended to {registry_path}")
    set_output("registry", str(registry_path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
