"""Whether a step runs or a recorded success stands in for it: the decision each step gets just
before it would start (docs/fingerprints.md).

A candidate is a recorded success: the step's own in the run being resumed (`kept`), its latest
in the state dir for a step an `--only`/`--from` selection needs (`reused`), or for a step that
declares `sources` and `generates` (`up_to_date`). It stands in when its fingerprint equals the
step's fingerprint now (and, for `up_to_date`, every `generates` pattern still matches a file).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from planrun import fingerprint as fp
from planrun.core.byvalue import ByValue

if TYPE_CHECKING:
    from planrun.core.ir_types import IRStep
    from planrun.launch import RunContext
    from planrun.statcache import StatCache
    from planrun.store import FingerprintRecord

Kind = Literal["kept", "reused", "up_to_date"]


@dataclass(frozen=True, eq=False, repr=False)
class Candidate(ByValue):
    kind: Kind
    fingerprint: str | None  # None: recorded before fingerprints existed
    parts: dict[str, Any]
    run_id: str
    outputs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, eq=False, repr=False)
class Decision(ByValue):
    fingerprint: fp.Fingerprint | None
    reuse: Candidate | None  # None: the step runs
    why: str | None  # why it runs when something could have stood in, or why nothing could

    def payload(self) -> dict[str, Any]:
        """What step_started records of the decision to run the step."""
        payload: dict[str, Any] = {}
        if self.fingerprint is not None:
            payload["fingerprint"] = self.fingerprint.digest
            payload["fingerprint_parts"] = self.fingerprint.parts
        if self.why is not None:
            payload["why"] = self.why
        return payload


class Decider:
    """Fingerprints of the steps decided so far, and the candidates that may stand in."""

    def __init__(
        self,
        state_dir: str | Path,
        steps: Mapping[str, IRStep],
        context: RunContext,
        secret_params: frozenset[str],
        readonly: bool = False,
    ) -> None:
        self.steps = steps
        self.context = context
        self.secret_params = secret_params
        self.state_dir = state_dir
        self.readonly = readonly
        self.candidates: dict[str, Candidate] = {}
        self.fingerprints: dict[str, str] = {}  # step -> fingerprint, once decided
        self.ran: set[str] = set()  # steps decided to run (not reused) in this run
        self.why_no_candidate: dict[str, str] = {}
        self.key = fp.SecretKey(state_dir, create=not readonly)
        self._stats: StatCache | None = None

    # --- candidates ------------------------------------------------------------------------

    def offer(self, step_id: str, candidate: Candidate) -> None:
        if not self.steps[step_id].is_fallback:
            self.candidates[step_id] = candidate

    def offer_latest(
        self, records: Mapping[str, FingerprintRecord], step_ids: set[str], kind: Kind
    ) -> None:
        """Each step's latest success in the state dir, for the steps given."""
        for step_id in step_ids:
            record = records.get(step_id)
            if record is None:
                self.why_no_candidate[step_id] = "never succeeded in this state dir"
            elif step_id not in self.candidates:
                self.offer(
                    step_id,
                    Candidate(
                        kind, record.fingerprint, record.parts, record.run_id, record.outputs
                    ),
                )

    def up_to_date_steps(self, forced: frozenset[str]) -> set[str]:
        """The steps that may be up to date: they declare sources and generates, not forced."""
        return {
            sid
            for sid, step in self.steps.items()
            if step.sources and step.generates and sid not in forced
        }

    # --- deciding --------------------------------------------------------------------------

    def decide(self, step_id: str) -> Decision:
        decision = self._decide(step_id)
        if decision.reuse is None:
            self.ran.add(step_id)
        return decision

    def _decide(self, step_id: str) -> Decision:
        step = self.steps[step_id]
        stats = self.stats() if step.sources else None
        try:
            current: fp.Fingerprint | None = fp.compute(
                step, self.context, self.fingerprints, self.key, self.secret_params, stats
            )
        except (fp.Unresolvable, OSError, ValueError):
            current = None
        if current is not None:
            self.fingerprints[step_id] = current.digest
        candidate = self.candidates.get(step_id)
        if candidate is None:
            return Decision(current, None, self.why_no_candidate.get(step_id))
        if current is None:
            return Decision(None, None, "a value it reads is not set")
        if candidate.fingerprint is None:
            return Decision(current, None, f"run {candidate.run_id} recorded no fingerprint")
        if candidate.fingerprint != current.digest:
            why = fp.explain(candidate.parts, current.parts, self.ran.__contains__)
            return Decision(current, None, why)
        if candidate.kind == "up_to_date":
            missing = fp.generated_missing(step, fp.step_cwd(step, self.context))
            if missing:
                return Decision(current, None, f"output {missing[0]} is missing")
        return Decision(current, candidate, None)

    def stats(self) -> StatCache:
        if self._stats is None:
            from planrun.statcache import StatCache

            self._stats = StatCache(self.state_dir, readonly=self.readonly)
        return self._stats

    def save(self) -> None:
        """Record the digests hashed since the last save (the stat cache)."""
        if self._stats is not None:
            self._stats.save()

    def close(self) -> None:
        if self._stats is not None:
            self._stats.save()
            self._stats.close()


def dry_decider(
    state_dir: str, steps: Mapping[str, IRStep], plan_id: str, context: RunContext,
    secret_params: frozenset[str], needed: frozenset[str], forced: frozenset[str] | None,
    empty_state_decides: bool = False,
) -> Decider | None:  # fmt: skip
    """The decider of a dry run: what the state dir has recorded, read only. A state dir planrun
    cannot read (damaged, untrusted) raises its StoreError, as for every command that reads
    one; with no state yet there is no decider (None), or with `empty_state_decides` (`planc
    simulate --state-dir`) one that decides every step with nothing recorded. `forced` None:
    --force (every step)."""
    from planrun.store import NoStateError, open_reader

    records: Mapping[str, FingerprintRecord] = {}
    try:
        reader = open_reader(state_dir)
    except NoStateError:
        if not empty_state_decides:
            return None
    else:
        with reader:
            records = reader.fingerprints(plan_id)
    decider = Decider(state_dir, steps, context, secret_params, readonly=True)
    decider.offer_latest(records, set(needed), "reused")
    if forced is not None:
        decider.offer_latest(records, decider.up_to_date_steps(forced) - needed, "up_to_date")
    return decider


def stood_in_detail(run_id: object) -> str:
    """The words for a recorded success standing in for a step: step_skipped's detail, the
    dry-run verdicts and `planrun explain` say it alike."""
    return f"fingerprint matches run {run_id}"


@dataclass(frozen=True, eq=False, repr=False)
class Verdict(ByValue):
    """What a run would do with a step, decided read-only (`planrun --dry-run`, `planc
    simulate --state-dir`): `reused` and `up_to_date` stand in for it (the reasons its
    step_skipped would record), `run` runs it. `text` is the one wording of it."""

    kind: Literal["reused", "up_to_date", "run"]
    text: str
    from_run: str | None = None  # the run whose success stands in

    @property
    def stands_in(self) -> bool:
        return self.kind != "run"

    @property
    def detail(self) -> str:
        """What planrun's step_skipped would say of a step stood in for."""
        return stood_in_detail(self.from_run)

    def to_json(self) -> dict[str, str]:
        return {"verdict": self.kind, "text": self.text}


def dry_verdict(decider: Decider, step_id: str) -> Verdict:
    """What a run would do with the step: `reuse (…)`, `up to date (…)` or `run (why: …)`."""
    decision = decider.decide(step_id)
    step = decider.steps[step_id]
    rerun = [d for d in step.depends_on if d in decider.ran]
    if rerun and step_id in decider.candidates and (decision.reuse or not decision.fingerprint):
        # The upstream step has not run yet: its files and outputs are not known.
        decider.ran.add(step_id)
        return Verdict("run", f"run (why: upstream {rerun[0]} re-runs)")
    if decision.reuse is not None:
        context = decider.context
        outputs = context.outputs.get(step_id)
        if isinstance(outputs, dict):
            outputs.update(decision.reuse.outputs)
        run_id = decision.reuse.run_id
        matches = f"({stood_in_detail(run_id)})"
        if decision.reuse.kind == "up_to_date":
            return Verdict("up_to_date", f"up to date {matches}", run_id)
        return Verdict("reused", f"reuse {matches}", run_id)
    why = (decision.why or "").replace(" re-ran", " re-runs")
    return Verdict("run", f"run (why: {why})" if why else "run")


def secret_outputs_of(state_dir: str | Path, run_id: str, step_id: str) -> set[str]:
    """The outputs of `step_id` that held a secret in run `run_id` (from its events): recorded
    masked, so a success standing in cannot hand them on."""
    from planrun.secrecy import secret_outputs_in
    from planrun.store import open_reader

    with open_reader(state_dir) as reader:
        in_run = secret_outputs_in(reader.events(run_id))
    return set(in_run.get(step_id, set()))
