"""The import graph of planc and planrun, read from the source with `ast` (so imports inside
functions, the lazy ones, count as much as those at the top), has no cycle (issue 12).

Imports under `if TYPE_CHECKING:` are left out: they never run, and naming a type from a module
that imports this one is what they are for. This module is meant to grow into the kernel's import
contract: `import_graph` answers which module imports which; a rule is a test over its edges.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from planc.graph import strongly_connected

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {
    "planrun": ROOT / "runtime" / "planrun",
    "planc": ROOT / "compiler" / "planc",
    "grammar": ROOT / "grammar",
}

Graph = dict[str, set[str]]


def modules(packages: dict[str, Path] = PACKAGES) -> dict[str, Path]:
    """Every module of `packages` by dotted name (a package by its own name)."""
    found: dict[str, Path] = {}
    for name, directory in packages.items():
        for path in sorted(directory.rglob("*.py")):
            parts = [name, *path.relative_to(directory).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def import_graph(packages: dict[str, Path] = PACKAGES) -> Graph:
    """Module -> the modules of `packages` it imports, anywhere in its code except under
    `if TYPE_CHECKING:`. `from a import b` names `a.b` when that is a module, else `a`."""
    known = modules(packages)
    graph: Graph = {}
    for name, path in known.items():
        is_package = path.name == "__init__.py"
        edges: set[str] = set()
        for target in _imported_names(
            ast.parse(path.read_text(encoding="utf-8")), name, is_package
        ):
            while target and target not in known:  # `planrun.views.style.X` -> its module
                target = target.rpartition(".")[0]
            if target and target != name:
                edges.add(target)
        graph[name] = edges
    return graph


def _imported_names(tree: ast.Module, module: str, is_package: bool) -> Iterator[str]:
    package = module if is_package else module.rpartition(".")[0]
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def _runtime_nodes(node: ast.AST) -> Iterator[ast.AST]:
    """Every node below `node`, skipping the bodies of `if TYPE_CHECKING:` (their `else` runs)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for other in child.orelse:
                yield other
                yield from _runtime_nodes(other)
            continue
        yield child
        yield from _runtime_nodes(child)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def cycles(graph: Graph) -> list[list[str]]:
    """The strongly connected components with more than one module, each sorted (planc's
    cycle finder, the one the dependency-cycle rule uses)."""
    return sorted(sorted(c) for c in strongly_connected(sorted(graph), lambda m: sorted(graph[m])))


def test_the_import_graph_has_no_cycle() -> None:
    assert cycles(import_graph()) == []


# The one edge from planc past the kernel: `planc simulate --state-dir` asks planrun's reuse
# decider, read-only, what it would reuse (docs/fingerprints.md). The decision is planrun's and
# reads its state dir, so it is not copied into the kernel; the import is lazy, inside the
# command, so `planc check` and `compile` never load it (tests/runtime/test_startup_imports.py).
PLANC_PAST_THE_KERNEL = [("planc.commands", "planrun.dry_run")]


def test_planc_imports_only_the_kernel_and_the_kernel_only_itself() -> None:
    """The kernel contract (runtime/planrun/core/__init__.py): planc imports planrun only from
    planrun.core, except PLANC_PAST_THE_KERNEL; the kernel imports nothing of planrun outside
    itself and nothing of planc; the rest of planrun reaches planc only in plan_loader
    (compiling a plan file in memory)."""
    graph = import_graph()
    kernel = "planrun.core"

    def inside(module: str, package: str) -> bool:
        return module == package or module.startswith(package + ".")

    planc_out = sorted(
        (m, t)
        for m, targets in graph.items()
        if inside(m, "planc")
        for t in targets
        if inside(t, "planrun") and not inside(t, kernel) and t != "planrun"
    )
    kernel_out = sorted(
        (m, t)
        for m, targets in graph.items()
        if inside(m, kernel)
        for t in targets
        if (inside(t, "planrun") and not inside(t, kernel) and t != "planrun") or inside(t, "planc")
    )
    runtime_to_compiler = sorted(
        (m, t)
        for m, targets in graph.items()
        if inside(m, "planrun")
        for t in targets
        if inside(t, "planc")
    )
    assert planc_out == PLANC_PAST_THE_KERNEL
    assert kernel_out == []
    assert {m for m, _ in runtime_to_compiler} == {"planrun.plan_loader"}


def test_the_edges_past_the_kernel_are_lazy() -> None:
    """Each import of PLANC_PAST_THE_KERNEL is inside a function, never at a module's top."""
    for module, target in PLANC_PAST_THE_KERNEL:
        path = modules()[module]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        functions = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
        # What runs on import: the module's code outside function bodies.
        eager = ast.Module(body=[n for n in tree.body if not isinstance(n, functions)])
        eager.type_ignores = []
        assert target not in set(_imported_names(eager, module, False)), f"{module}: {target}"
        assert target in set(_imported_names(tree, module, False))  # still imported, lazily


def test_the_console_and_the_live_view_import_one_way() -> None:
    """The cycle of issue 12: console picks the live view, so the live view must not import
    console (the event->status table is planrun.events', the symbols planrun.views.style's)."""
    graph = import_graph()

    assert "planrun.views.live" in graph["planrun.console"]
    assert "planrun.console" not in graph["planrun.views.live"]


def test_the_graph_sees_lazy_imports_and_skips_type_checking_ones(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from pkg import b\n")
    (package / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.c import C\n"
        "else:\n    from . import c\n"
    )
    (package / "c.py").write_text("import pkg.a as a\nfrom .sub.d import x\n")
    (package / "sub").mkdir()
    (package / "sub" / "__init__.py").write_text("from ..a import f\n")
    (package / "sub" / "d.py").write_text("")

    graph = import_graph({"pkg": package})

    assert graph == {
        "pkg": set(),
        "pkg.a": {"pkg", "pkg.b"},
        "pkg.b": {"pkg", "pkg.c"},
        "pkg.c": {"pkg.a", "pkg.sub.d"},
        "pkg.sub": {"pkg.a"},
        "pkg.sub.d": set(),
    }
    assert cycles(graph) == [["pkg.a", "pkg.b", "pkg.c"]]
