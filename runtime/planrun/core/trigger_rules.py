"""The trigger rules: the one table that planrun, `planc` (checks, simulation, reachability) and
the docs read (docs/semantics.md §1).

A rule only sees which *kinds* of outcome its dependencies have, never how many: every rule of
Airflow's (and ours) is a function of which of the five kinds below are present. That is what
lets the reachability analysis enumerate all the cases a rule can meet in linear time.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from planrun.core.byvalue import ByValue

# The kinds of a settled dependency, as the rules read them (docs/semantics.md §1):
OK = "ok"  # success
TOLERATED = "tolerated"  # failed/timed_out, but `continue` or recovered by its fallback
FAILED = "failed"  # failed/timed_out (not tolerated), upstream_failed, cancelled by an abort
SKIPPED = "skipped"  # skipped, whatever the reason
INTERRUPTED = "interrupted"  # cancelled by an interrupt: neither a failure nor a skip
KINDS = (OK, TOLERATED, FAILED, SKIPPED, INTERRUPTED)

Verdict = Literal["run", "skipped", "upstream_failed"]


@dataclass(frozen=True, eq=False, repr=False)
class RuleSpec(ByValue):
    name: str
    met: Callable[[frozenset[str]], bool]  # over the kinds present among settled dependencies
    meaning: str  # docs/semantics.md's table
    # Met as soon as one dependency of these kinds is settled: the rule does not wait for the
    # others (Airflow's one_failed/one_success/one_done). Empty: waits for every dependency.
    early: frozenset[str] = frozenset()
    # A rule written to run despite failed dependencies: it still starts after an abort or a
    # first interrupt (docs/semantics.md §5). `one_success` is met alongside a failure too, but
    # it waits for a success, which an abort has stopped: it is ordinary work.
    cleanup: bool = False


def _no_other(allowed: Collection[str]) -> Callable[[frozenset[str]], bool]:
    return lambda kinds: kinds <= frozenset(allowed)


def _some(wanted: Collection[str]) -> Callable[[frozenset[str]], bool]:
    return lambda kinds: bool(kinds & frozenset(wanted))


_FAILURE = (FAILED, TOLERATED)  # what the rules that react to failures count

RULES: dict[str, RuleSpec] = {
    rule.name: rule
    for rule in (
        RuleSpec(
            "all_success",
            _no_other((OK, TOLERATED)),
            "every dependency ended `success` or tolerated",
        ),
        RuleSpec(
            "all_done",
            lambda kinds: True,
            "always (every dependency is terminal, whatever its status)",
            cleanup=True,
        ),
        RuleSpec(
            "none_failed",
            _no_other((OK, TOLERATED, SKIPPED)),
            "no dependency failed: each ended `success`, tolerated or `skipped`",
        ),
        RuleSpec(
            "none_failed_min_one_success",
            lambda kinds: kinds <= {OK, TOLERATED, SKIPPED} and OK in kinds,
            "as `none_failed`, and at least one dependency ended `success`",
        ),
        RuleSpec(
            "one_failed",
            _some(_FAILURE),
            "at least one dependency failed (tolerated or not, or `upstream_failed`, or"
            " cancelled by an abort); does not wait for the others",
            early=frozenset(_FAILURE),
            cleanup=True,
        ),
        RuleSpec(
            "one_success",
            _some((OK,)),
            "at least one dependency ended `success`; does not wait for the others",
            early=frozenset({OK}),
        ),
        RuleSpec(
            "one_done",
            _some((OK, *_FAILURE)),
            "at least one dependency succeeded or failed; does not wait for the others",
            early=frozenset({OK, *_FAILURE}),
            cleanup=True,
        ),
        RuleSpec(
            "all_failed",
            _no_other(_FAILURE),
            "every dependency failed (as counted by `one_failed`)",
            cleanup=True,
        ),
        RuleSpec(
            "all_skipped",
            _no_other((SKIPPED,)),
            "every dependency ended `skipped`",
        ),
        RuleSpec(
            "none_skipped",
            lambda kinds: SKIPPED not in kinds,
            "no dependency ended `skipped` (each is terminal)",
            cleanup=True,
        ),
        RuleSpec(
            "all_done_min_one_success",
            _some((OK,)),
            "every dependency is terminal and at least one ended `success`",
            cleanup=True,
        ),
    )
}


class TriggerRule(StrEnum):
    """A step's `trigger_rule` (its value in the plan and the IR), with what it means."""

    ALL_SUCCESS = "all_success"
    ALL_DONE = "all_done"
    NONE_FAILED = "none_failed"
    NONE_FAILED_MIN_ONE_SUCCESS = "none_failed_min_one_success"
    ONE_FAILED = "one_failed"
    ONE_SUCCESS = "one_success"
    ONE_DONE = "one_done"
    ALL_FAILED = "all_failed"
    ALL_SKIPPED = "all_skipped"
    NONE_SKIPPED = "none_skipped"
    ALL_DONE_MIN_ONE_SUCCESS = "all_done_min_one_success"

    @property
    def spec(self) -> RuleSpec:
        return RULES[self.value]

    @property
    def is_cleanup(self) -> bool:
        return self.spec.cleanup

    @property
    def fires_early(self) -> bool:
        return bool(self.spec.early)

    @property
    def needs_dependencies(self) -> bool:
        """Means nothing on a step without dependencies (`trigger-without-dependencies`)."""
        return self not in _WITHOUT_DEPENDENCIES


_WITHOUT_DEPENDENCIES = (TriggerRule.ALL_SUCCESS, TriggerRule.ALL_DONE, TriggerRule.NONE_FAILED)

NAMES: tuple[str, ...] = tuple(RULES)
DEFAULT = TriggerRule.ALL_SUCCESS.value

NEEDS_DEPENDENCIES = frozenset(rule.value for rule in TriggerRule if rule.needs_dependencies)
CLEANUP_RULES = frozenset(rule.value for rule in TriggerRule if rule.is_cleanup)
EARLY_RULES = frozenset(rule.value for rule in TriggerRule if rule.fires_early)


def verdict(rule: str, kinds: frozenset[str]) -> Verdict:
    """What `rule` decides once every dependency is settled, their kinds being `kinds` (empty for
    a step without dependencies: the rules that ask for one success are not met, the others
    are; the compiler refuses all but three rules there, NEEDS_DEPENDENCIES)."""
    spec = RULES[rule]
    if spec.met(kinds):
        return "run"
    # A failure never turns into a plain skip: with one among the dependencies, an unmet rule
    # means `upstream_failed`, so that a `none_failed` step further down does not run either.
    return "upstream_failed" if FAILED in kinds else "skipped"


def fires_early(rule: str, kinds: frozenset[str]) -> bool:
    """Whether settled dependencies of `kinds` already meet `rule` while others still run."""
    return bool(RULES[rule].early & kinds)
