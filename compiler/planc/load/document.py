"""Stage 1's entry: the plan's bytes (bounded, UTF-8) to positioned nodes, by the JSON or the YAML
loader, and the checks of the whole document (a mapping, not too many steps)."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from contextlib import contextmanager

from planc.diagnostics import Diagnostic, DiagnosticError, Span, error
from planc.load.base import MAX_ITEMS, MAX_PLAN_BYTES, MAX_STEPS, Loader, kind
from planc.load.yaml_events import FastPathFailed, YamlLoader
from planc.nodes import Document, MapNode, SeqNode
from planrun.core.reads import InputTooLarge, read_bounded

_BOM = "\ufeff"


def load_file(path: str) -> Document:
    """Read and load the plan at `path`."""
    try:
        data = read_bounded(path)
    except InputTooLarge as exc:
        raise DiagnosticError([too_large(path, exc.size)]) from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise DiagnosticError(
            [error(path, Span(1, 1), "io-error", f"cannot read the plan file: {reason}")]
        ) from None
    return load_document(path, data)


def load_document(path: str, data: bytes) -> Document:
    """Parse `data` (the bytes of the file at `path`) into positioned nodes."""
    if len(data) > MAX_PLAN_BYTES:
        raise DiagnosticError([too_large(path, len(data))])
    _check_items(path, data)
    text = _decode(path, data)
    if not text.strip():
        raise DiagnosticError([error(path, Span(1, 1), "empty-plan", "the plan file is empty")])
    loader: Loader
    if _is_json(path, text):
        from planc.load.json_loader import JsonLoader  # YAML plans, the usual ones, need none of it

        loader = JsonLoader(path, text)
    else:
        loader = YamlLoader(path, text)
    try:
        with gc_paused():
            try:
                root = loader.load()
            except FastPathFailed:
                loader = YamlLoader(path, text, pure=True)
                root = loader.load()
    except (RecursionError, ValueError, UnicodeError, AssertionError) as exc:
        # Defensive: the loaders are designed never to raise these, but a parser bug must still
        # come out as a diagnostic rather than a traceback.
        loader.report.add(loader.position(), "load-error", f"cannot load the plan: {exc!r}")
        raise DiagnosticError(loader.report.diagnostics) from None
    loader.report.raise_if_any()
    if not isinstance(root, MapNode):
        raise DiagnosticError(
            [
                error(
                    path,
                    root.span,
                    "not-a-mapping",
                    f"the plan must be a mapping of keys to values, got {kind(root)}",
                    hint="start the file with `plan_id: ...` and `steps:`",
                )
            ]
        )
    steps = root.get("steps")
    if isinstance(steps, SeqNode) and len(steps.items) > MAX_STEPS:
        message = f"the plan has {len(steps.items)} steps; the limit is {MAX_STEPS}"
        hint = "split it into several plans"
        raise DiagnosticError([error(path, steps.span, "too-many-steps", message, hint)])
    return Document(path, text, root)


def _check_items(path: str, data: bytes) -> None:
    """Refuse, before parsing, a file with more possible nodes than MAX_ITEMS (a cheap upper
    bound: a comma or bracket inside a string counts too)."""
    items = sum(data.count(char) for char in (b"\n", b",", b"[", b"{"))
    if items > MAX_ITEMS:
        message = (
            f"the plan has {items} lines, commas and opening brackets; the limit is {MAX_ITEMS}"
        )
        raise DiagnosticError([error(path, Span(1, 1), "too-many-items", message)])


@contextmanager
def gc_paused() -> Iterator[None]:
    """Suspend the cyclic garbage collector for a block that builds millions of objects.

    Nodes and plain values are acyclic, and for a large plan the collector's repeated passes
    over them would roughly double the time of loading or validating it.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def too_large(path: str, size: int | None) -> Diagnostic:
    limit = f"{MAX_PLAN_BYTES} bytes (32 MiB)"
    message = (
        f"the plan file is larger than the limit of {limit}"  # a device or a pipe
        if size is None
        else f"the plan file is {size} bytes; the limit is {limit}"
    )
    return error(path, Span(1, 1), "file-too-large", message)


def _decode(path: str, data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        col = len(data[line_start : exc.start].decode("utf-8")) + 1
        raise DiagnosticError(
            [
                error(
                    path,
                    Span(line, col),
                    "invalid-utf8",
                    f"the file is not valid UTF-8: byte 0x{data[exc.start]:02X} cannot appear here",
                    hint="save the plan as UTF-8",
                )
            ]
        ) from None
    return text[1:] if text.startswith(_BOM) else text


def _is_json(path: str, text: str) -> bool:
    extension = os.path.splitext(path)[1].lower()
    if extension == ".json":
        return True
    if extension in (".yaml", ".yml"):
        return False
    return text.lstrip().startswith("{")
