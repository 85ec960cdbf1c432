"""Stage 1: plan text (YAML 1.2 or strict JSON) → positioned nodes, refusing anything ambiguous.

Every problem becomes a positioned Diagnostic raised in a DiagnosticError; no other exception
escapes. Here: document (the entry, load_file / load_document), base (the limits and what both
loaders share), json_loader (a token loop), yaml_events (ruamel's parser events, never composed
or constructed) and yaml_lines (block YAML read line by line first, into the same nodes, left to
the events on anything unusual). May import planc.diagnostics, planc.nodes and planrun.core.reads
(the bounded reader); nothing of the later stages. Import from here.
"""

from planc.load.base import (
    MAX_DEPTH,
    MAX_DIAGNOSTICS,
    MAX_INT_DIGITS,
    MAX_ITEMS,
    MAX_PLAN_BYTES,
    MAX_STEPS,
)
from planc.load.document import gc_paused, load_document, load_file, too_large

__all__ = [
    "MAX_DEPTH",
    "MAX_DIAGNOSTICS",
    "MAX_INT_DIGITS",
    "MAX_ITEMS",
    "MAX_PLAN_BYTES",
    "MAX_STEPS",
    "gc_paused",
    "load_document",
    "load_file",
    "too_large",
]
