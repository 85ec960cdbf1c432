"""Cleanup coverage: a resource named in `globals.cleanup_required` (a lock, a snapshot, a stash)
that a step `provides` must be released on every path where the run goes wrong after it.

What counts as releasing, and which failures must be covered (docs/analysis.md, "Cleanup"):
- a reachable teardown of the acquirer (`teardown_for`) covers every failure, an abort and an
  interrupt, runs only when the acquirer succeeded, and is re-run with it on resume
  (semantics.md §5b); every consumer must run before it (`cleanup-outside-scope`);
- a release by a cleanup rule (`all_done`, `one_failed`…) is refused (`cleanup-unguarded`): it
  runs when the acquirer failed too, releasing what someone else holds;
- the fallback of a step that `consumes` it covers that step's failure;
- a step whose failures are always tolerated (`on_failure: continue`) is not a failure path.
Every step that can run, other than the acquirer and its ancestors, can fail while the resource
is held (also on another branch: concurrency decides the order). Linear per resource.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence

from planc.analysis.context import AnalysisContext
from planc.analysis.reachability import Flow, flow_of
from planc.diagnostics import Diagnostic, error, warning
from planrun.core.ir_types import IRStep, OnFailure


def check(ctx: AnalysisContext) -> Iterator[Diagnostic]:
    if not ctx.applies("cleanup"):
        return
    required = ctx.plan_global("cleanup_required")
    providers = {name: step.id for step in ctx.steps for name in step.provides}
    flow = flow_of(ctx)
    for name in dict.fromkeys(str(n) for n in required):
        acquirer = providers.get(name)
        if acquirer is None:
            yield warning(
                ctx.path,
                ctx.globals_item_span("cleanup_required", name),
                "cleanup-unknown-resource",
                f"`{name}` is listed in cleanup_required, but no step provides it",
                "name a resource that some step lists in `provides`",
            )
            continue
        yield from _coverage(ctx, flow, name, acquirer)


def _coverage(ctx: AnalysisContext, flow: Flow, name: str, acquirer: str) -> Iterator[Diagnostic]:
    by_id = ctx.by_id
    consumers = [s for s in ctx.steps if name in s.consumes and flow.steps[s.id].can_run]
    teardowns = [s.id for s in ctx.steps if s.teardown_for == acquirer and flow.steps[s.id].can_run]
    if teardowns:
        yield from _without_timeout(ctx, teardowns, name)
        yield from _outside_scope(ctx, name, acquirer, teardowns, consumers)
        return  # a teardown runs exactly when the acquirer succeeded, also after an interrupt
    # A release by a cleanup rule runs whatever the acquirer ended with: it would release a
    # resource someone else holds, and a resume re-running work would not re-run it.
    unguarded = [
        s.id
        for s in consumers
        if s.trigger_rule.is_cleanup and s.id != acquirer and not s.is_fallback
    ]
    for releaser in unguarded:
        rule = by_id[releaser].trigger_rule
        yield error(
            ctx.path,
            ctx.step_span(releaser, "trigger_rule"),
            "cleanup-unguarded",
            f"`{releaser}` releases `{name}` (cleanup_required) even when `{acquirer}` did not"
            f" acquire it (trigger_rule: {rule} runs whatever `{acquirer}` ended with), and a"
            f" resume that re-runs work after it does not acquire `{name}` again",
            f"make it the teardown: `teardown_for: {acquirer}` instead of `trigger_rule: {rule}`",
        )
    if unguarded:
        return
    on_failure_of: set[str] = set()
    releasers: list[str] = []
    for step in consumers:
        if step.on_failure is OnFailure.FALLBACK_STEP and step.fallback is not None:
            on_failure_of.add(step.id)
            releasers.append(step.fallback)
    yield from _without_timeout(ctx, list(dict.fromkeys(releasers)), name)
    ancestors = _ancestors(by_id, acquirer)
    uncovered = [
        s.id
        for s in ctx.steps
        if s.id != acquirer
        and s.id not in ancestors
        and s.id not in releasers
        and flow.steps[s.id].can_run
        and s.on_failure is not OnFailure.CONTINUE
        and s.id not in on_failure_of
    ]
    span = ctx.ref_span(acquirer, "provides", name)
    hint = f"add a step with `teardown_for: {acquirer}` that releases `{name}`"
    if not uncovered:
        yield error(
            ctx.path,
            span,
            "cleanup-missing",
            f"`{name}` (cleanup_required) provided by `{acquirer}` is not released if the run"
            " is interrupted: after a SIGINT only cleanup steps, teardowns and fallbacks start,"
            f" and only a teardown of `{acquirer}` runs whenever `{acquirer}` succeeded",
            hint,
        )
        return
    # A failure after the acquirer, on its own path, is the clearest story to tell.
    after = _descendants(by_id, acquirer)
    uncovered.sort(key=lambda sid: sid not in after)
    first = uncovered[0]
    others = uncovered[1:]
    shown = ", ".join(f"`{sid}`" for sid in others[:3]) + (" …" if len(others) > 3 else "")
    extra = ""
    if len(others) == 1:
        extra = f" (nor if {shown} fails)"
    elif others:
        extra = f" (nor if any of {len(others)} other steps fails: {shown})"
    yield error(
        ctx.path,
        span,
        "cleanup-missing",
        f"`{name}` (cleanup_required) provided by `{acquirer}` is never released if `{first}`"
        f" fails: {_describe_path(by_id, acquirer, first)}{extra}",
        hint,
    )


def _without_timeout(ctx: AnalysisContext, releasers: list[str], name: str) -> Iterator[Diagnostic]:
    for releaser in releasers:
        if ctx.by_id[releaser].timeout_sec is None:
            yield error(
                ctx.path,
                ctx.step_span(releaser),
                "cleanup-without-timeout",
                f"cleanup step `{releaser}` releases `{name}` but has no timeout; after an"
                " interrupt planrun waits for it without limit",
                f"set `timeout_sec` on `{releaser}` or `globals.default_timeout_sec`",
            )


def _outside_scope(
    ctx: AnalysisContext,
    name: str,
    acquirer: str,
    teardowns: list[str],
    consumers: Sequence[IRStep],
) -> Iterator[Diagnostic]:
    """A consumer that is not upstream of a teardown can run after the release, and a resume
    re-running it would not re-run the setup (semantics.md §5b: the scope is between the two)."""
    inside = set().union(*(_ancestors(ctx.by_id, t) for t in teardowns)) | set(teardowns)
    for step in consumers:
        sid = step.id
        if sid != acquirer and sid not in inside and not step.is_fallback:
            yield error(
                ctx.path,
                ctx.ref_span(sid, "consumes", name),
                "cleanup-outside-scope",
                f"`{sid}` consumes `{name}` but does not run before the teardown of `{acquirer}`"
                f" ({', '.join(f'`{t}`' for t in teardowns)}): it may use `{name}` after its"
                " release, and a resume re-running it would not acquire it again",
                f"add `{sid}` to the teardown's `depends_on`",
            )


def _ancestors(by_id: dict[str, IRStep], step_id: str) -> set[str]:
    return _reachable(by_id, step_id, "depends_on")


def _descendants(by_id: dict[str, IRStep], step_id: str) -> set[str]:
    return _reachable(by_id, step_id, "dependents")


def _reachable(by_id: dict[str, IRStep], step_id: str, edges: str) -> set[str]:
    """Every step reached from `step_id` along the IR's `depends_on` or `dependents` lists."""
    seen: set[str] = set()
    stack: list[str] = list(getattr(by_id[step_id], edges))
    while stack:
        current = stack.pop()
        if current not in seen:
            seen.add(current)
            stack.extend(getattr(by_id[current], edges))
    return seen


def _describe_path(by_id: dict[str, IRStep], start: str, end: str) -> str:
    """`a -> b -> c` when `end` runs after `start` (BFS, shortest), else where `end` sits."""
    parent: dict[str, str | None] = {start: None}
    queue = deque([start])
    while queue and end not in parent:
        current = queue.popleft()
        for child in by_id[current].dependents:
            if child not in parent:
                parent[child] = current
                queue.append(child)
    if end not in parent:
        policy = by_id[end].on_failure
        return (
            f"`{end}` (on_failure: {policy}) runs on another branch, alongside or after `{start}`"
        )
    chain: list[str] = []
    node: str | None = end
    while node is not None:
        chain.append(node)
        node = parent[node]
    return " -> ".join(reversed(chain)) + f" (on_failure: {by_id[end].on_failure})"
