"""Errors for NUL characters in what a step hands to the kernel: no program can receive one."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TypeGuard

from planc.diagnostics import Diagnostic, error
from planc.nodes import MapNode, Node, ScalarNode, SeqNode
from planc.rules.base import RuleContext

CODES = {
    "nul-character": (
        "a command, argument, environment variable or cwd holds a NUL character",
        "The kernel passes a program its arguments, environment and working directory as C"
        " strings, which end at the first NUL: such a step could never start (planrun would"
        " fail it with `… contains a NUL character`). A NUL usually comes from an escape such"
        ' as `"\\0"` (YAML) or `"\\u0000"` (JSON) written by mistake.',
    ),
}

# A NUL can only reach a parsed plan through an escape in a quoted string (both loaders refuse
# a raw NUL byte): plans without any such escape, nearly all of them, skip the walk.
_NUL_ESCAPE = re.compile(r"\\(?:0|x00|u0000|U00000000)")


def check(ctx: RuleContext) -> Iterator[Diagnostic]:
    if not _NUL_ESCAPE.search(ctx.plan.document.text):
        return
    globals_node = ctx.plan.node.get("globals")
    if isinstance(globals_node, MapNode):
        yield from _in_env(ctx, globals_node.get("env"), "in `globals.env`")
    for step in ctx.plan.steps:
        where = f"in step `{step.id}`"
        for key in ("command", "cwd"):
            node = step.node.get(key)
            if _holds_nul(node):
                yield _report(ctx, node, f"`{key}` {where}")
        args = step.node.get("args")
        if isinstance(args, SeqNode):
            for index, item in enumerate(args.items):
                if _holds_nul(item):
                    yield _report(ctx, item, f"`args[{index}]` {where}")
        yield from _in_env(ctx, step.node.get("env"), where)


def _in_env(ctx: RuleContext, env: Node | None, where: str) -> Iterator[Diagnostic]:
    if not isinstance(env, MapNode):
        return
    for key, value in env.entries:
        if _holds_nul(key):
            yield _report(ctx, key, f"an environment variable name {where}")
        elif _holds_nul(value) and isinstance(key, ScalarNode):
            yield _report(ctx, value, f"environment variable `{key.value}` {where}")


def _holds_nul(node: Node | None) -> TypeGuard[ScalarNode]:
    return isinstance(node, ScalarNode) and isinstance(node.value, str) and "\0" in node.value


def _report(ctx: RuleContext, node: Node, what: str) -> Diagnostic:
    return error(
        ctx.path,
        node.span,
        "nul-character",
        f"{what} contains a NUL character, which no program can receive",
        "remove the `\\0`/`\\u0000` escape; to pass binary data, write it to a file and pass"
        " the file's path",
    )
