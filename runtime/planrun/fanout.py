"""Fan-out at run time (docs/composition.md): a `for_each` step, once the step whose output it
reads has succeeded, becomes one instance per element of that output (a JSON list), each a step
of the run with its own attempts, logs, retries, policy and fallback instance. The step itself
waits for its instances and then ends `success` (every instance succeeded or was tolerated) or
`failed`; its outputs are JSON lists of the instances' values, in element order."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from planrun.core import semantics as sem
from planrun.events import StepCancelled, StepExpanded, StepFailed, StepStarted, StepSucceeded
from planrun.launch import RunContext

if TYPE_CHECKING:
    from planrun.core.ir_types import IRStep
    from planrun.core.loop import StepRecord
    from planrun.executor import Executor


class FanOutError(Exception):
    """The for_each output is not a usable list: the fan-out step fails with this reason."""


def instance_id(step_id: str, index: int) -> str:
    """`build[3]`: never an IR step id (brackets are not allowed there), so never a clash."""
    return f"{step_id}[{index}]"


def parse_items(raw: str | None, max_items: int, source: str) -> list[str]:
    """The elements of the output `raw`, each as the text `${{ item }}` becomes: a string as it
    is, anything else as compact JSON."""
    if raw is None:
        raise FanOutError(f"for_each: {source} is not set")
    try:
        value = json.loads(raw)
    except ValueError:
        raise FanOutError(f"for_each: {source} is not JSON (expected a JSON list)") from None
    if not isinstance(value, list):
        raise FanOutError(f"for_each: {source} is a JSON {_kind(value)}, not a list")
    if not value:
        raise FanOutError(f"for_each: {source} is an empty list")
    if len(value) > max_items:
        raise FanOutError(
            f"for_each: {source} has {len(value)} items, more than max_items {max_items}"
        )
    return [v if isinstance(v, str) else json.dumps(v, ensure_ascii=False) for v in value]


def _kind(value: object) -> str:
    names = {dict: "object", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


class FanOut:
    """The fan-out steps of one run, driven by the executor: it calls `start` where it would
    start an attempt of such a step, and `context` before starting any attempt."""

    def __init__(self, executor: Executor) -> None:
        self.ex = executor
        groups = executor.ir.model.groups or {}
        self.groups = {name: g for name, g in groups.items() if g["kind"] == "for_each"}
        self.instances: dict[str, list[str]] = {}
        self.items: dict[str, str] = {}  # instance (or its fallback instance) -> its item
        self.previous: dict[str, StepRecord] = {}  # resume: what earlier sessions recorded
        self.started_at: dict[str, float] = {}

    def owns(self, step_id: str) -> bool:
        return step_id in self.groups

    def context(self, step_id: str, ctx: RunContext) -> RunContext:
        item = self.items.get(step_id)
        return ctx if item is None else replace(ctx, item=item)

    def start(self, step_id: str) -> None:
        if step_id in self.instances:
            self._finish(step_id)
        else:
            self._expand(step_id)

    def _expand(self, step_id: str) -> None:
        ex = self.ex
        group = self.groups[step_id]
        over = group["over"]
        source = f"output {over['output']} of step {over['step']}"
        raw = ex.records[over["step"]].outputs.get(over["output"])
        rules = ex.plan.steps[step_id]
        # Its own failure cannot be answered by a fallback: that runs per element.
        ex.plan.steps[step_id] = replace(
            rules, on_failure="abort" if rules.fallback else rules.on_failure, fallback=None
        )
        ex._emit(StepStarted(pid=None, pgid=None), step_id)
        self.started_at[step_id] = time.monotonic()
        try:
            items = parse_items(raw, int(group["max_items"]), source)
        except FanOutError as exc:
            ex.plan.started(step_id)
            ex._emit(StepFailed(reason=str(exc), exit_code=None), step_id)
            ex._apply(ex.plan.finished(step_id, sem.FAILED))
            return
        template = ex.steps[step_id]
        ids = [instance_id(step_id, i) for i in range(len(items))]
        fallback = rules.fallback
        fallback_ids = [instance_id(fallback, i) for i in range(len(items))] if fallback else []
        self.instances[step_id] = ids
        made: list[str] = []
        for i, (sid, item) in enumerate(zip(ids, items, strict=True)):
            fb = fallback_ids[i] if fallback_ids else None
            self._add(sid, template, step_id, item, i, fallback=fb, dependents=[step_id])
            made.append(sid)
            if fallback is not None and fb is not None:
                self._add(fb, ex.steps[fallback], fallback, item, i, fallback=None, dependents=[])
                made.append(fb)
        ex.groups.add_members(step_id, ids)
        ex._emit(StepExpanded(instances=made, items=len(items)), step_id)
        kept = self._kept(over["step"], ids)
        fallback_of: list[str | None] = list(fallback_ids) or [None] * len(ids)
        instance_rules = [
            replace(rules, id=sid, depends_on=(), dependents=(step_id,), fallback=fb)
            for sid, fb in zip(ids, fallback_of, strict=True)
        ]
        fallback_rules = (
            [replace(ex.plan.steps[fallback], id=fb) for fb in fallback_ids] if fallback else []
        )
        ex._apply(ex.plan.expand(step_id, instance_rules, fallback_rules, kept))

    def _kept(self, source: str, ids: list[str]) -> frozenset[str]:
        """Resume: the instances that succeeded in an earlier session are not run again, as long
        as the list is the one they ran for (its step was not run again in this session)."""
        ex = self.ex
        if ex.records[source].tries:
            return frozenset()
        kept = set()
        for sid in ids:
            earlier = self.previous.get(sid)
            if earlier is not None and earlier.status == sem.SUCCESS:
                record = ex.records[sid]
                record.outputs.update(earlier.outputs)
                record.exit_code, record.duration_sec = earlier.exit_code, earlier.duration_sec
                kept.add(sid)
        return frozenset(kept)

    def _add(
        self,
        sid: str,
        template: IRStep,
        like: str,
        item: str,
        index: int,
        *,
        fallback: str | None,
        dependents: list[str],
    ) -> None:
        from planrun.core.loop import StepRecord

        ex = self.ex
        ex.steps[sid] = replace(
            template,
            id=sid,
            name=f"{template.name} [{index}]",
            fallback=fallback,
            depends_on=(),
            dependents=tuple(dependents),
        )
        record = StepRecord()
        earlier = self.previous.get(sid)
        if earlier is not None:  # resume: attempts are numbered across sessions
            record.attempts = earlier.attempts
        ex.records[sid] = record
        ex.context.outputs[sid] = record.outputs  # type: ignore[index]
        ex.ready.add(sid, like)
        self.items[sid] = item

    def _finish(self, step_id: str) -> None:
        """Every instance is decided: the fan-out step ends, with its outputs as lists."""
        ex = self.ex
        ids = self.instances[step_id]
        plan = ex.plan
        failed = [i for i in ids if plan.status[i] != sem.SUCCESS and not plan.is_tolerated(i)]
        outputs = {
            name: json.dumps([ex.records[i].outputs.get(name) for i in ids], ensure_ascii=False)
            for name in ex.steps[step_id].provides
        }
        record = ex.records[step_id]
        record.outputs.update(outputs)
        duration = round(time.monotonic() - self.started_at.get(step_id, time.monotonic()), 6)
        record.duration_sec = duration
        plan.started(step_id)
        if not failed:
            extra: dict[str, Any] = {"outputs": outputs} if outputs else {}
            ex._emit(StepSucceeded(exit_code=0, duration_sec=duration, **extra), step_id)
            ex._apply(plan.finished(step_id, sem.SUCCESS))
            return
        if not any(plan.status[i] in sem.FAILURES for i in failed):
            # Only cancelled instances: the plan is aborting or interrupted, not this step failing.
            reason = ex._cancel_reason()
            ex._emit(StepCancelled(reason=reason, duration_sec=duration), step_id)
            ex._apply(plan.finished(step_id, sem.CANCELLED))
            return
        shown = ", ".join(f"{i} {plan.status[i]}" for i in failed[:5])
        more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
        reason = f"{len(failed)} of {len(ids)} instances did not succeed: {shown}{more}"
        failed_event = StepFailed(reason=reason, exit_code=None, duration_sec=duration)
        ex._emit(failed_event, step_id)
        ex._apply(plan.finished(step_id, sem.FAILED))
