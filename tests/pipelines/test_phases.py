"""plans/phases.yaml end to end: eight phases, two parallel workstreams and a gate each."""

from __future__ import annotations

import json
from pathlib import Path

from pipelines_support import PLANS, load_plan, run_pipeline

from planc.pipeline import compile_file

PHASES = range(8)
WORKSTREAMS = ("code", "docs")


def test_phases_shape() -> None:
    """The plan includes plans/fragments/phase.yaml once per phase: the compiled steps are the
    24 the plan had when it was written out by hand."""
    assert [item["include"] for item in load_plan("phases.yaml")["steps"]] == [
        "fragments/phase.yaml"
    ] * 8
    compiled = compile_file(str(PLANS / "phases.yaml"))
    assert compiled.ir is not None, compiled.diagnostics
    steps = {s["id"]: s for s in json.loads(compiled.ir)["steps"]}
    assert len(steps) == 24
    for phase in PHASES:
        for ws in WORKSTREAMS:
            expected = [f"p{phase - 1}.gate"] if phase else []
            assert steps[f"p{phase}.{ws}"].get("depends_on", []) == expected
        assert steps[f"p{phase}.gate"]["depends_on"] == [f"p{phase}.code", f"p{phase}.docs"]


def test_phases_run_in_order_with_every_gate_passing(tmp_path: Path) -> None:
    out = tmp_path / "markers"
    result = run_pipeline(tmp_path, "phases.yaml", {"out_dir": str(out)})

    assert result.exit_code == 0, result.output
    assert result.statuses == {
        f"p{phase}.{name}": "success" for phase in PHASES for name in (*WORKSTREAMS, "gate")
    }
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"phase{phase}.{name}.json" for phase in PHASES for name in (*WORKSTREAMS, "gate")
    )

    def written(phase: int, name: str) -> int:
        marker = json.loads((out / f"phase{phase}.{name}.json").read_text())
        assert (marker["phase"], marker["name"]) == (phase, name)
        return int(marker["time_ns"])

    seq = {(e.step_id, e.type): e.seq for e in result.events}
    for phase in PHASES:
        gate = written(phase, "gate")
        for ws in WORKSTREAMS:
            assert written(phase, ws) < gate
            # the store agrees: the gate started after the workstream's success was recorded
            assert (
                seq[(f"p{phase}.{ws}", "step_succeeded")] < seq[(f"p{phase}.gate", "step_started")]
            )
            if phase < 7:
                assert gate < written(phase + 1, ws)
                assert (
                    seq[(f"p{phase}.gate", "step_succeeded")]
                    < seq[(f"p{phase + 1}.{ws}", "step_started")]
                )
