"""The executor's loop with nothing run: one worker, attempts that end as they start.

`ReplayLauncher` is the launcher of `planc simulate` and `planrun --dry-run` (ninja's
DryRunCommandRunner): each attempt ends at once with the exit code given for its step, or times
out. `Replay` drives `loop.Loop` with it and a clock on which every retry delay is over, so a
replay is deterministic: the order `planrun -j1` starts steps in when attempts take no time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from planrun.core import actions as act
from planrun.core import semantics as sem
from planrun.core.ir_types import IRStep
from planrun.core.launcher import Finished, Placement, Started
from planrun.core.loop import Loop, instant

# A step's replayed attempts: their exit code, or None when they time out.
Outcomes = Callable[[str], int | None]


class ReplayLauncher:
    """A `launcher.Launcher` whose attempts end as soon as they start, as `outcome` says."""

    def __init__(self, outcome: Outcomes) -> None:
        self._outcome = outcome
        self._ended: list[Finished] = []

    def start(self, key: str, spec: object) -> Started:
        code = self._outcome(key)
        how: Literal["timeout", "exited"] = "timeout" if code is None else "exited"
        self._ended.append(Finished(key, how, code, None, how, "", 0.0, 0.0, 0.0))
        return Started(None, None, None, "")

    def wait(self, timeout: float | None) -> list[Finished]:
        ended, self._ended = self._ended, []
        return ended

    def wakeup(self) -> None:
        """Nothing blocks."""

    def cancel(self, key: str) -> None:
        """Nothing runs long enough to be cancelled."""

    def kill_all(self) -> None:
        """Nothing runs long enough to be killed."""

    def placements(self) -> list[Placement]:
        return []

    def kill_leftovers(self, tags: list[str]) -> int:
        return 0  # a replay runs nothing

    @property
    def running(self) -> int:
        return len(self._ended)

    def __contains__(self, key: object) -> bool:
        return any(finished.key == key for finished in self._ended)

    def close(self) -> None:
        self._ended.clear()


class Replay(Loop):
    """The loop over a `ReplayLauncher`; `order` is the order steps start in."""

    def __init__(
        self,
        steps: dict[str, IRStep],
        rules: Sequence[sem.StepRules],
        outcome: Outcomes,
        environ: dict[str, str],
        params: Mapping[str, Any],
        invariants: Mapping[str, list[Mapping[str, Any]]],
    ) -> None:
        launcher = ReplayLauncher(outcome)
        super().__init__(steps, rules, launcher, 1, environ, params, invariants, instant)
        self.order: list[str] = []

    def replay(self) -> str:
        """Replay the plan; its outcome (semantics.md §7)."""
        self._apply(self.plan.begin())
        self._loop()
        return self.plan.outcome()

    def _start_step(self, step_id: str) -> None:
        record = self.records[step_id]
        if not record.tries:
            self.order.append(step_id)
        record.attempts += 1
        record.tries += 1
        self.plan.started(step_id)
        self.procs.start(step_id, None)  # type: ignore[arg-type]  # a replay runs no command

    def _attempt_finished(self, finished: Finished) -> None:
        step_id = finished.key
        self.records[step_id].exit_code = finished.exit_code
        if finished.outcome == "timeout":
            self._attempt_ended(step_id, sem.TIMED_OUT, "timeout", {})
        elif finished.exit_code == 0:
            self._apply(self.plan.finished(step_id, sem.SUCCESS))
        else:
            self._attempt_ended(step_id, sem.FAILED, "failed", {})

    def _record(self, action: act.Action) -> None:
        """What a replay shows of the decisions is its caller's (simulate's report)."""
