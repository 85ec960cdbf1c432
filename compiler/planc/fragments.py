"""`include:` items of `steps:`: steps from another file, with inputs, namespaced by the include's
id (docs/composition.md). Runs before schema validation, on the node tree: the included steps are
then checked like any other step, at their own positions (sourcemap.py)."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field

from planc.diagnostics import Diagnostic, DiagnosticError, Span, error
from planc.load import MAX_PLAN_BYTES, load_document, too_large
from planc.nodes import Document, MapNode, Node, ScalarNode, SeqNode, map_strings, with_entries
from planc.sourcemap import LINE_BLOCK, SourceFile, SourceMap, shift
from planc.suggest import did_you_mean
from planrun.core.reads import InputTooLarge, read_bounded

CODES = {
    "include-invalid": (
        "an `include:` item or an included file is not written as docs/composition.md says",
        "    steps:\n      - include: fragments/phase.yaml\n        id: p0\n"
        "        with: {phase: '0'}\n        depends_on: [setup]",
    ),
    "include-not-found": (
        "an included file cannot be read",
        "The path is relative to the file that holds the `include:`.",
    ),
    "include-cycle": (
        "a file includes itself, directly or through other files",
        "    # a.yaml includes b.yaml, which includes a.yaml again",
    ),
    "include-input": (
        "an include's `with:` does not match the inputs the included file declares",
        "    inputs:\n      phase: {type: string}        # required: no default\n"
        "    …\n    - include: phase.yaml\n      id: p0\n      with: {phse: '0'}   # phase",
    ),
}

MAX_INCLUDE_DEPTH = 16
MAX_INCLUDED_FILES = 256
_ITEM_KEYS = ("include", "id", "with", "depends_on")
_FRAGMENT_KEYS = ("description", "inputs", "steps")
_INPUT_KEYS = ("type", "default", "description")
_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,127}")
_INPUT = re.compile(r"\$\{\{\s*inputs\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_TYPES = {"string": (str,), "int": (int,), "bool": (bool,)}


@dataclass(eq=False, repr=False)
class Included:
    """What expansion made: the document, where each line came from, and each include id with
    the ids of its steps (a step naming the include in `depends_on` depends on all of them)."""

    document: Document
    sources: SourceMap
    aliases: dict[str, list[str]] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)  # positions still shifted


def expand_includes(document: Document, sha256: str) -> Included:
    sources = SourceMap([SourceFile(document.path, document.text, sha256, None)])
    root = document.root
    steps = root.get("steps") if isinstance(root, MapNode) else None
    if not isinstance(root, MapNode) or not isinstance(steps, SeqNode) or not _has_include(steps):
        return Included(document, sources)
    expander = _Expander(sources)
    items = expander.steps(steps, document.path, (os.path.realpath(document.path),))
    ids = {_id_of(item) for item in items}
    for ns, (path, span) in expander.alias_at.items():
        if ns in ids:  # `depends_on: [ns]` would be ambiguous
            message = f"include id `{ns}` is also the id of a step"
            expander.fail(path, span, "include-invalid", message, "rename one of them")
    if expander.found:
        return Included(document, sources, diagnostics=expander.found)
    new_root = with_entries(root, {"steps": SeqNode(tuple(items), steps.span)})
    return Included(Document(document.path, document.text, new_root), sources, expander.aliases)


def _has_include(steps: SeqNode) -> bool:
    return any(isinstance(i, MapNode) and i.get("include") is not None for i in steps.items)


class _Expander:
    def __init__(self, sources: SourceMap) -> None:
        self.sources = sources
        self.found: list[Diagnostic] = []
        self.aliases: dict[str, list[str]] = {}
        self.alias_at: dict[str, tuple[str, Span]] = {}  # where each include id is written

    def fail(self, path: str, span: Span, code: str, message: str, hint: str | None = None) -> None:
        self.found.append(error(path, span, code, message, hint))

    def steps(self, steps: SeqNode, path: str, stack: tuple[str, ...]) -> list[Node]:
        out: list[Node] = []
        for item in steps.items:
            if isinstance(item, MapNode) and item.get("include") is not None:
                out.extend(self.include(item, path, stack))
            else:
                out.append(item)
        return out

    def include(self, item: MapNode, path: str, stack: tuple[str, ...]) -> list[Node]:
        for key, _ in item.entries:
            if str(key.value) not in _ITEM_KEYS:
                hint = did_you_mean(str(key.value), _ITEM_KEYS) or "keys: " + ", ".join(_ITEM_KEYS)
                self.fail(
                    path,
                    key.span,
                    "include-invalid",
                    f"unknown key `{key.value}` in an include",
                    hint,
                )
        target, ns = item.get("include"), item.get("id")
        if not (isinstance(target, ScalarNode) and isinstance(target.value, str) and target.value):
            self.fail(path, item.span, "include-invalid", "`include` must be a file path")
            return []
        if not (
            isinstance(ns, ScalarNode) and isinstance(ns.value, str) and _ID.fullmatch(ns.value)
        ):
            span = ns.span if ns is not None else item.span
            self.fail(
                path, span, "include-invalid", "an include needs an `id` (a step-id-like name)"
            )
            return []
        if len(stack) > MAX_INCLUDE_DEPTH or len(self.sources.files) > MAX_INCLUDED_FILES:
            self.fail(
                path, target.span, "include-invalid", "includes nest too deep or are too many"
            )
            return []
        display = os.path.normpath(os.path.join(os.path.dirname(path), target.value))
        real = os.path.realpath(display)
        if real in stack:
            chain = " → ".join(os.path.basename(p) for p in (*stack, real))
            self.fail(path, target.span, "include-cycle", f"include cycle: {chain}")
            return []
        fragment = self.load(display, path, target)
        if fragment is None:
            return []
        self.alias_at.setdefault(str(ns.value), (path, ns.span))
        return self.fragment(fragment, item, str(ns.value), path, (*stack, real))

    def load(self, display: str, path: str, target: ScalarNode) -> MapNode | None:
        refused: DiagnosticError | None = None
        try:
            data = read_bounded(display, MAX_PLAN_BYTES, regular=True)
        except InputTooLarge as exc:  # said as load_document says it, in the included file
            data, refused = b"", DiagnosticError([too_large(display, exc.size)])
        except OSError as exc:
            self.fail(
                path,
                target.span,
                "include-not-found",
                f"cannot read {display}: {exc.strerror or exc}",
            )
            return None
        block = len(self.sources.files)
        origin = (target.line // LINE_BLOCK, self.sources.file_of(target.line)[1])
        text = data.decode("utf-8", errors="replace")
        self.sources.files.append(
            SourceFile(display, text, hashlib.sha256(data).hexdigest(), origin)
        )
        try:
            if refused is not None:
                raise refused
            document = load_document(display, data)
        except DiagnosticError as exc:  # positioned in the included file already: shift them
            for d in exc.diagnostics:
                shifted = Span(
                    d.span.line + block * LINE_BLOCK,
                    d.span.col,
                    d.span.end_line + block * LINE_BLOCK,
                    d.span.end_col,
                )
                self.fail(d.path, shifted, d.code, d.message, d.hint)
            return None
        root = shift(document.root, block * LINE_BLOCK)
        assert isinstance(root, MapNode)  # load_document refuses anything else
        return root

    def fragment(
        self, root: MapNode, item: MapNode, ns: str, path: str, stack: tuple[str, ...]
    ) -> list[Node]:
        display = self.sources.files[-1].path
        for key, _ in root.entries:
            if str(key.value) not in _FRAGMENT_KEYS:
                hint = did_you_mean(str(key.value), _FRAGMENT_KEYS) or "keys: " + ", ".join(
                    _FRAGMENT_KEYS
                )
                self.fail(
                    display,
                    key.span,
                    "include-invalid",
                    f"unknown key `{key.value}` in an included file",
                    hint,
                )
        steps = root.get("steps")
        if not isinstance(steps, SeqNode) or not steps.items:
            self.fail(
                display,
                root.span,
                "include-invalid",
                "an included file needs a non-empty `steps:` list",
            )
            return []
        values = self.inputs(root.get("inputs"), item, display, path)
        if values is None:
            return []
        nodes = self.steps(self.forwarded(steps, values, display), display, stack)
        local = {_id_of(n) for n in nodes} - {""}
        fallbacks = {_text_of(n, "fallback") for n in nodes} - {""}
        after = item.get("depends_on")
        out = [self.namespaced(n, ns, local, fallbacks, values, after, display) for n in nodes]
        self.aliases[ns] = [
            f"{ns}.{_id_of(n)}" for n in nodes if _id_of(n) and _id_of(n) not in fallbacks
        ]
        return out

    def inputs(
        self, declared: Node | None, item: MapNode, display: str, path: str
    ) -> dict[str, str] | None:
        given = item.get("with")
        if given is not None and not isinstance(given, MapNode):
            self.fail(
                path,
                given.span,
                "include-invalid",
                "`with` must be a mapping of input names to values",
            )
            return None
        if declared is not None and not isinstance(declared, MapNode):
            self.fail(display, declared.span, "include-invalid", "`inputs` must be a mapping")
            return None
        specs = {str(k.value): v for k, v in (declared.entries if declared else ())}
        values: dict[str, str] = {}
        ok = True
        for key, _ in given.entries if given else ():
            name = str(key.value)
            if name not in specs:
                ok = False
                hint = (
                    did_you_mean(name, specs)
                    or f"{display} declares: {', '.join(specs) or 'no inputs'}"
                )
                self.fail(
                    path, key.span, "include-input", f"`{name}` is not an input of {display}", hint
                )
        for name, spec in specs.items():
            unknown = (
                [k for k, _ in spec.entries if str(k.value) not in _INPUT_KEYS]
                if isinstance(spec, MapNode)
                else []
            )
            if not isinstance(spec, MapNode) or unknown:
                where = unknown[0].span if unknown else spec.span
                what = f"unknown key `{unknown[0].value}` in" if unknown else "a mapping for"
                self.fail(
                    display,
                    where,
                    "include-input",
                    f"{what} input `{name}`",
                    "keys: " + ", ".join(_INPUT_KEYS),
                )
                ok = False
                continue
            kind_node = spec.get("type")
            kind = str(kind_node.value) if isinstance(kind_node, ScalarNode) else "string"
            if kind not in _TYPES:
                self.fail(
                    display,
                    spec.span,
                    "include-input",
                    f"input `{name}` has type {kind}; types: string, int, bool",
                )
                ok = False
                continue
            chosen = (given.get(name) if given else None) or spec.get("default")
            if chosen is None:
                self.fail(
                    path,
                    item.span,
                    "include-input",
                    f"input `{name}` of {display} is required: give it in `with:`",
                )
                ok = False
            elif not isinstance(chosen, ScalarNode) or not _has_type(chosen.value, kind):
                self.fail(
                    path,
                    chosen.span,
                    "include-input",
                    f"input `{name}` must be {'an' if kind == 'int' else 'a'} {kind}",
                )
                ok = False
            else:
                values[name] = _text(chosen.value)
        return values if ok else None

    def namespaced(
        self,
        node: Node,
        ns: str,
        local: set[str],
        fallbacks: set[str],
        values: dict[str, str],
        after: Node | None,
        display: str,
    ) -> Node:
        if not isinstance(node, MapNode):
            return node
        refs = _local_refs(local)

        def change(scalar: ScalarNode) -> str:
            text = str(scalar.value)
            if "inputs." in text:
                text = _INPUT.sub(lambda m: self.input_value(m, values, scalar, display), text)
            if refs is not None and ("steps." in text or "prev." in text):
                text = refs.sub(lambda m: f"{m.group(1)}.{ns}.{m.group(2)}.", text)
            return text

        changed = map_strings(node, change)
        assert isinstance(changed, MapNode)
        updates: dict[str, Node | None] = {}
        sid = changed.get("id")
        if isinstance(sid, ScalarNode):
            updates["id"] = sid._replace(value=f"{ns}.{sid.value}")
        for key in ("depends_on",):
            seq = changed.get(key)
            if isinstance(seq, SeqNode):
                updates[key] = SeqNode(tuple(_prefixed(i, ns, local) for i in seq.items), seq.span)
        fallback = changed.get("fallback")
        if isinstance(fallback, ScalarNode):
            updates["fallback"] = _prefixed(fallback, ns, local)
        is_root = not changed.get("depends_on") and not changed.get("consumes")
        if is_root and isinstance(after, SeqNode) and after.items and _id_of(node) not in fallbacks:
            updates["depends_on"] = after
        return with_entries(changed, updates)

    def forwarded(self, steps: SeqNode, values: dict[str, str], display: str) -> SeqNode:
        """The fragment's own includes with `${{ inputs.NAME }}` in their `with:` read from this
        fragment's inputs, so a fragment can pass its inputs on."""

        def change(scalar: ScalarNode) -> str:
            text = str(scalar.value)
            return _INPUT.sub(lambda m: self.input_value(m, values, scalar, display), text)

        items: list[Node] = []
        for item in steps.items:
            given = item.get("with") if isinstance(item, MapNode) else None
            if isinstance(item, MapNode) and item.get("include") is not None and given is not None:
                item = with_entries(item, {"with": map_strings(given, change)})
            items.append(item)
        return SeqNode(tuple(items), steps.span)

    def input_value(
        self, match: re.Match[str], values: dict[str, str], scalar: ScalarNode, display: str
    ) -> str:
        name = match.group(1)
        if name in values:
            return values[name]
        self.fail(
            display,
            scalar.span,
            "include-input",
            f"`inputs.{name}` is not an input of {display}",
            did_you_mean(name, values) or "declare it under `inputs:`",
        )
        return match.group(0)


def _id_of(node: Node) -> str:
    return _text_of(node, "id")


def _text_of(node: Node, key: str) -> str:
    value = node.get(key) if isinstance(node, MapNode) else None
    return str(value.value) if isinstance(value, ScalarNode) else ""


def _prefixed(node: Node, ns: str, local: set[str]) -> Node:
    if isinstance(node, ScalarNode) and str(node.value) in local:
        return node._replace(value=f"{ns}.{node.value}", text_col=None)
    return node


def _local_refs(local: set[str]) -> re.Pattern[str] | None:
    if not local:
        return None
    names = "|".join(re.escape(s) for s in sorted(local, key=len, reverse=True))
    return re.compile(rf"(?<![A-Za-z0-9_.-])(steps|prev)\.({names})\.")


def _has_type(value: object, kind: str) -> bool:
    return isinstance(value, _TYPES[kind]) and not (kind == "int" and isinstance(value, bool))


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
