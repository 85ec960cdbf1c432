"""Shared by doc_scan.py, doc_sync.py and doc_report.py: front matter, the registry, outputs.

A document is a Markdown file (`*.md`) whose optional front matter is the block between a first
line `---` and the next line `---`. Its id is the front-matter line `doc_id: DOC-001`; its
title is the front-matter `title:`, else its first `# heading`, else its file name.

The registry is a JSONL file, one object per line, appended to and never rewritten:
`{"doc_id", "path", "title", "event"}` with event `assigned` (the sync gave the document its
id), `registered` (the document already had an id the registry did not know) or `updated`
(the document of a known id moved or changed its title). The latest line per id is its state.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from atomic_file import write_atomically

FENCE = "---"
ID_LINE = re.compile(r"^doc_id:\s*(?P<id>\S+)\s*$")
TITLE_LINE = re.compile(r"^title:\s*(?P<title>.+?)\s*$")
HEADING = re.compile(r"^#\s+(?P<title>.+?)\s*$")


@dataclass(frozen=True)
class Document:
    path: str  # relative to the documents directory, POSIX separators
    doc_id: str | None
    title: str

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "doc_id": self.doc_id, "title": self.title}


def front_matter(lines: list[str]) -> tuple[int, int] | None:
    """Indexes of the opening and closing `---` lines, or None when there is no front matter."""
    if not lines or lines[0].rstrip("\r\n") != FENCE:
        return None
    for index in range(1, len(lines)):
        if lines[index].rstrip("\r\n") == FENCE:
            return 0, index
    return None


def read_document(root: Path, path: Path) -> Document:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    doc_id: str | None = None
    title: str | None = None
    block = front_matter(lines)
    if block is not None:
        for line in lines[block[0] + 1 : block[1]]:
            if match := ID_LINE.match(line.rstrip("\r\n")):
                doc_id = match["id"]
            elif match := TITLE_LINE.match(line.rstrip("\r\n")):
                title = match["title"]
    if title is None:
        body = lines[block[1] + 1 :] if block is not None else lines
        title = next(
            (m["title"] for line in body if (m := HEADING.match(line.rstrip("\r\n")))), path.stem
        )
    return Document(path.relative_to(root).as_posix(), doc_id, title)


def set_doc_id(path: Path, doc_id: str) -> None:
    """Give the document at `path` the front-matter line `doc_id: ID` (it has none yet)."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    block = front_matter(lines)
    if block is None:
        new = f"{FENCE}\ndoc_id: {doc_id}\n{FENCE}\n{text}"
    else:
        new = "".join([lines[0], f"doc_id: {doc_id}\n", *lines[1:]])
    write_atomically(path, new)


def read_registry(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    entries = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{number}: not JSON: {exc.msg}") from None
        if not isinstance(entry, dict) or not isinstance(entry.get("doc_id"), str):
            raise ValueError(f"{path}:{number}: not a registry entry (no doc_id)")
        entries.append(entry)
    return entries


def latest(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The current state of every id: its latest registry line."""
    state: dict[str, dict[str, Any]] = {}
    for entry in entries:
        state[entry["doc_id"]] = entry
    return state


def id_number(doc_id: str, prefix: str) -> int | None:
    match = re.fullmatch(rf"{re.escape(prefix)}-(\d+)", doc_id)
    return int(match[1]) if match else None


def set_output(name: str, value: str) -> None:
    """Publish a step output (docs/dataflow.md): `NAME=value` in the file $PLAN_OUTPUT names.

    Outside planrun ($PLAN_OUTPUT unset) this does nothing.
    """
    target = os.environ.get("PLAN_OUTPUT")
    if not target:
        return
    if "\n" in value or "\r" in value:
        delimiter = "END_OF_VALUE"
        while delimiter in value:
            delimiter += "_"
        line = f"{name}<<{delimiter}\n{value}\n{delimiter}\n"
    else:
        line = f"{name}={value}\n"
    with open(target, "a", encoding="utf-8") as handle:
        handle.write(line)
