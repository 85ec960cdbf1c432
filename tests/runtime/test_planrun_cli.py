"""planrun's command line: exit codes, status, dry run, --only/--from, bad input, big output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support import collect, planc_cli, planrun_cli


def write(tmp_path: Path, plan: dict[str, Any], name: str = "plan.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(plan))
    return path


def chain_plan(effects: Path) -> dict[str, Any]:
    def step(step_id: str, deps: list[str]) -> dict[str, Any]:
        script = f"echo {step_id} >> {effects}"
        return {"id": step_id, "command": "sh", "args": ["-c", script], "depends_on": deps}

    return {
        "plan_id": "CHAIN",
        "globals": {"default_timeout_sec": 30},
        "steps": [
            step("a", []),
            step("b", ["a"]),
            step("c", ["b"]),
            step("d", ["c"]),
            step("x", []),
        ],
    }


def test_exit_codes_and_run_id(tmp_path: Path) -> None:
    good = write(
        tmp_path,
        {"plan_id": "G", "steps": [{"id": "a", "command": "true", "timeout_sec": 5}]},
        "good.json",
    )
    bad = write(
        tmp_path,
        {"plan_id": "B", "steps": [{"id": "a", "command": "false", "timeout_sec": 5}]},
        "bad.json",
    )
    ok = planrun_cli(str(good), "--state-dir", "s", cwd=tmp_path)
    assert ok.returncode == 0
    assert ok.stderr.startswith("planrun: run ")
    assert planrun_cli(str(bad), "--state-dir", "s", cwd=tmp_path).returncode == 1


def test_usage_errors_exit_2_without_traceback(tmp_path: Path) -> None:
    missing = planrun_cli("nope.json", cwd=tmp_path)
    assert missing.returncode == 2
    assert "cannot read nope.json" in missing.stderr
    invalid = write(
        tmp_path, {"plan_id": "X", "steps": [{"id": "a", "command": "true", "depends_on": ["zz"]}]}
    )
    compiled = planrun_cli(str(invalid), "--state-dir", "s", cwd=tmp_path)
    assert compiled.returncode == 2
    assert "error[unknown-dependency]" in compiled.stderr
    ir = tmp_path / "ir.json"
    ok_plan = write(
        tmp_path,
        {"plan_id": "T", "steps": [{"id": "a", "command": "true", "timeout_sec": 5}]},
        "ok.json",
    )
    assert planc_cli("compile", str(ok_plan), "-o", str(ir)).returncode == 0
    tampered = json.loads(ir.read_text())
    tampered["steps"][0]["command"] = "rm"
    ir.write_text(json.dumps(tampered))
    refused = planrun_cli(str(ir), "--state-dir", "s", cwd=tmp_path)
    assert refused.returncode == 2
    assert "digest mismatch" in refused.stderr
    tampered["ir_version"] = 99
    ir.write_text(json.dumps(tampered))
    version = planrun_cli(str(ir), cwd=tmp_path)
    assert version.returncode == 2
    assert "unsupported ir_version 99" in version.stderr
    for result in (missing, compiled, refused, version):
        assert "Traceback" not in result.stderr


def test_a_reader_that_goes_away_ends_the_output_not_the_run(tmp_path: Path) -> None:
    """`planrun --json plan | head -1`: the pipe breaks after the first event. That used to stop
    planrun mid-run (exit 1, the run left `interrupted`); now only the output stops."""
    gate = tmp_path / "gate"
    hold = {
        "id": "hold",
        "command": "sh",
        "args": ["-c", f"while [ ! -e {gate} ]; do sleep 0.01; done"],
    }
    plan = write(
        tmp_path,
        {
            "plan_id": "PIPE",
            "globals": {"default_timeout_sec": 60},
            "steps": [hold, *({"id": f"after{i}", "command": "true", "depends_on": ["hold"]}
                              for i in range(20))],
        },
    )  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "planrun", str(plan), "--state-dir", "s", "--json", "-q"],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        assert json.loads(proc.stdout.readline())["type"] == "run_started"
        proc.stdout.close()  # the reader goes; every later event meets a broken pipe
        gate.touch()
        err = proc.stderr.read()
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 0, err
    assert "planrun: cannot write to stdout (Broken pipe); the run goes on without it\n" in err
    assert "Traceback" not in err and "Exception ignored" not in err
    assert set(collect(tmp_path / "s", 0).statuses.values()) == {"success"}


def test_a_full_disk_under_stderr_ends_the_output_not_the_run(tmp_path: Path) -> None:
    plan = write(
        tmp_path,
        {"plan_id": "FULL", "steps": [{"id": "a", "command": "true", "timeout_sec": 30}]},
    )
    with open("/dev/full", "w") as full:
        ran = subprocess.run(
            [sys.executable, "-m", "planrun", str(plan), "--state-dir", "s"],
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=full,
            text=True,
            timeout=60,
        )
    assert ran.returncode == 0
    note = "planrun: cannot write to stderr (No space left on device); the run goes on without it\n"
    assert ran.stdout == note
    assert collect(tmp_path / "s", 0).statuses == {"a": "success"}


def test_limits_too_large_for_sqlite(tmp_path: Path) -> None:
    """Any int >= 1 is a valid max_concurrency; 10**20 used to crash planrun with an
    OverflowError from SQLite. From the plan it means no limit; on the command line, where
    planrun can say so, it is a usage error."""
    huge = 10**20
    plan = write(
        tmp_path,
        {
            "plan_id": "HUGE",
            "globals": {"max_concurrency": huge, "default_timeout_sec": 30},
            "steps": [{"id": f"s{i}", "command": "true"} for i in range(3)],
        },
    )
    ran = planrun_cli(str(plan), "--state-dir", "s", "-q", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    result = collect(tmp_path / "s", 0)
    assert set(result.statuses.values()) == {"success"}
    assert result.events[0].payload["max_concurrency"] == 2**63 - 1
    for args in ([str(plan), "-j", str(huge)], ["runs", "-n", str(huge)]):
        usage = planrun_cli(*args, "--state-dir", "s", cwd=tmp_path)
        assert usage.returncode == 2, usage.stderr
        assert f"{huge} is not in the range 1<=x<=9223372036854775807" in usage.stderr
        assert "Traceback" not in usage.stderr


@pytest.mark.parametrize("case", ["file", "garbage", "directory"])
def test_an_unusable_state_dir_is_a_usage_error_and_is_left_untouched(
    tmp_path: Path, case: str
) -> None:
    """A state dir that is a file, or a state.db that is not planrun's (random bytes, a
    directory): exit 2 with one line for every command, and nothing on disk changes."""
    plan = write(
        tmp_path, {"plan_id": "S", "steps": [{"id": "a", "command": "true", "timeout_sec": 5}]}
    )
    state = tmp_path / "state"
    garbage = bytes(range(256)) * 20
    if case == "file":
        state.write_bytes(garbage)
        expected = f"planrun: cannot use {state} as the state directory: it is not a directory"
        untouched = state
    else:
        state.mkdir()
        untouched = state / "state.db"
        if case == "garbage":
            untouched.write_bytes(garbage)
            expected = (
                f"planrun: {untouched} is not a planrun state database (file is not a database);"
                " move it away or use another --state-dir"
            )
        else:
            untouched.mkdir()
            expected = f"planrun: {untouched} is a directory, not a planrun state database"
    before = sorted(p.name for p in tmp_path.rglob("*"))
    run = planrun_cli(str(plan), "--state-dir", str(state), cwd=tmp_path)
    assert (run.returncode, run.stderr.splitlines()) == (2, [expected])
    for command in ("status", "runs"):
        result = planrun_cli(command, "--state-dir", str(state), cwd=tmp_path)
        assert result.returncode == 2
        assert "Traceback" not in result.stderr
        assert len(result.stderr.splitlines()) == 1
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
    if case != "directory":
        assert untouched.read_bytes() == garbage


def test_status_latest_and_json(tmp_path: Path) -> None:
    plan = write(tmp_path, chain_plan(tmp_path / "effects"))
    assert planrun_cli(str(plan), "--state-dir", "s", cwd=tmp_path).returncode == 0
    text = planrun_cli("status", "--state-dir", "s", cwd=tmp_path)
    assert text.returncode == 0
    assert "status success" in text.stdout
    assert text.stdout.splitlines()[1].split() == [
        "STEP",
        "STATUS",
        "ATTEMPTS",
        "DURATION",
        "EXIT",
        "REASON",
    ]
    as_json = json.loads(planrun_cli("status", "--json", "--state-dir", "s", cwd=tmp_path).stdout)
    assert as_json["status"] == "success"
    assert set(as_json["steps"]) == {"a", "b", "c", "d", "x"}
    unknown = planrun_cli("status", "nosuchrun", "--state-dir", "s", cwd=tmp_path)
    assert unknown.returncode == 2
    assert "unknown run" in unknown.stderr


def test_dry_run_prints_order_and_runs_nothing(tmp_path: Path) -> None:
    effects = tmp_path / "effects"
    plan = write(tmp_path, chain_plan(effects))
    result = planrun_cli(str(plan), "--dry-run", "--state-dir", "s", cwd=tmp_path)
    assert result.returncode == 0
    order = [line.split()[1] for line in result.stdout.splitlines()]
    assert order == ["a", "b", "c", "d", "x"]  # the longest chain first, then source order
    assert not effects.exists()
    assert not (tmp_path / "s").exists()


def test_only_and_from_reuse_an_earlier_run(tmp_path: Path) -> None:
    effects = tmp_path / "effects"
    plan = write(tmp_path, chain_plan(effects))
    # Nothing recorded yet: the steps c needs run first (docs/fingerprints.md); they used to
    # be refused ("need `a` (never run) … to have succeeded in an earlier run").
    first = planrun_cli(str(plan), "--only", "c", "--state-dir", "s", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert effects.read_text().split() == ["a", "b", "c"]
    started = [e for e in collect(tmp_path / "s", 0).events if e.type == "step_started"]
    why = {e.step_id: e.payload.get("why") for e in started}
    assert why == {s: "never succeeded in this state dir" for s in ("a", "b")} | {"c": None}
    assert planrun_cli(str(plan), "--state-dir", "s", cwd=tmp_path).returncode == 0
    effects.unlink()

    only = planrun_cli(str(plan), "--only", "c", "--state-dir", "s", cwd=tmp_path)
    assert only.returncode == 0, only.stderr
    assert effects.read_text().split() == ["c"]
    run = collect(tmp_path / "s", 0)
    assert run.statuses == {
        "a": "skipped",
        "b": "skipped",
        "c": "success",
        "d": "skipped",
        "x": "skipped",
    }
    assert run.reasons == {
        "a": "reused",
        "b": "reused",
        "c": None,
        "d": "not_selected",
        "x": "not_selected",
    }

    effects.unlink()
    from_c = planrun_cli(str(plan), "--from", "c", "--state-dir", "s", cwd=tmp_path)
    assert from_c.returncode == 0
    assert effects.read_text().split() == ["c", "d"]
    unknown = planrun_cli(str(plan), "--only", "cc", "--state-dir", "s", cwd=tmp_path)
    assert unknown.returncode == 2
    assert "no step `cc` in this plan; did you mean `c`?" in unknown.stderr


@pytest.mark.parametrize(
    ("selection", "reran"),
    [(["--only", "c"], ["c"]), (["--from", "c"], ["c", "d"])],
)
def test_a_resumed_selection_stays_a_selection(
    tmp_path: Path, selection: list[str], reran: list[str]
) -> None:
    """Fix and continue a failed --only/--from run: only the selection runs again. The resume
    used to run the reused steps again (skipped steps run again) and the ones left out."""
    effects, flag = tmp_path / "effects", tmp_path / "c-fails"
    plan_data = chain_plan(effects)
    plan_data["steps"][2]["args"] = ["-c", f"echo c >> {effects}; ! test -e {flag}"]
    plan = write(tmp_path, plan_data)
    assert planrun_cli(str(plan), "--state-dir", "s", cwd=tmp_path).returncode == 0
    effects.unlink()
    flag.touch()
    failed = planrun_cli(str(plan), *selection, "--state-dir", "s", "-q", cwd=tmp_path)
    assert failed.returncode == 1, failed.stderr
    run_id = collect(tmp_path / "s", 1).run_id
    before = collect(tmp_path / "s", 1, run_id=run_id).reasons
    effects.unlink()
    flag.unlink()  # the fix

    resumed = planrun_cli("--resume", run_id, str(plan), "--state-dir", "s", "-q", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert effects.read_text().split() == reran
    run = collect(tmp_path / "s", 0, run_id=run_id)
    assert {sid for sid, status in run.statuses.items() if status == "success"} == set(reran)
    kept = {sid: reason for sid, reason in before.items() if reason in ("reused", "not_selected")}
    assert {sid: run.reasons[sid] for sid in kept} == kept
    assert run.summary["status"] == "success"


def test_a_reused_step_brings_its_outputs(tmp_path: Path) -> None:
    """`--only b` reuses `a` from an earlier run; b reads a's output. It used to fail with
    "output v of step a is not set"."""
    counter = tmp_path / "n"
    bump = f"n=$(($(cat {counter} 2>/dev/null || echo 0) + 1)); echo $n > {counter}"
    plan = write(
        tmp_path,
        {
            "plan_id": "REUSED-OUTPUTS",
            "globals": {"default_timeout_sec": 30},
            "steps": [
                {
                    "id": "a",
                    "command": "sh",
                    "args": ["-c", f'{bump}; echo "v=value-$n" >> "$PLAN_OUTPUT"'],
                    "provides": ["v"],
                },
                {
                    "id": "b",
                    "command": "sh",
                    "args": ["-c", "echo got ${{ steps.a.outputs.v }}"],
                    "depends_on": ["a"],
                },
            ],
        },
    )
    assert planrun_cli(str(plan), "--state-dir", "s", "-q", cwd=tmp_path).returncode == 0
    only = planrun_cli(str(plan), "--only", "b", "--state-dir", "s", "-q", cwd=tmp_path)
    assert only.returncode == 0, only.stderr
    assert counter.read_text() == "1\n"  # a did not run again
    run = collect(tmp_path / "s", 0)
    logs = planrun_cli("logs", run.run_id, "b", "--state-dir", "s", cwd=tmp_path)
    assert logs.stdout == "got value-1\n"
    skipped = next(e for e in run.events if e.step_id == "a")
    assert (skipped.type, skipped.payload["reason"]) == ("step_skipped", "reused")
    assert skipped.payload["outputs"] == {"v": "value-1"}
    assert run.summary["steps"]["a"]["status"] == "skipped"
    shown = planrun_cli("show", "--json", "--state-dir", "s", cwd=tmp_path)
    assert json.loads(shown.stdout)["steps"][0]["outputs"] == {"v": "value-1"}


def test_only_runs_a_needed_step_that_failed_before(tmp_path: Path) -> None:
    """It used to be refused ("need `a` (failed) to have succeeded"); a needed step without a
    recorded success now runs, and fails here again."""
    plan = {
        "plan_id": "UPFAIL",
        "globals": {"default_timeout_sec": 10},
        "steps": [
            {"id": "a", "command": "false"},
            {"id": "b", "command": "true", "depends_on": ["a"]},
        ],
    }
    path = write(tmp_path, plan)
    assert planrun_cli(str(path), "--state-dir", "s", cwd=tmp_path).returncode == 1
    result = planrun_cli(str(path), "--only", "b", "--state-dir", "s", cwd=tmp_path)
    assert result.returncode == 1
    run = collect(tmp_path / "s", 1)
    assert run.statuses == {"a": "failed", "b": "cancelled"}
    (started,) = [e for e in run.events if e.type == "step_started"]
    assert started.payload["why"] == "never succeeded in this state dir"


def test_200_mb_of_output_with_bounded_memory(tmp_path: Path) -> None:
    plan = write(
        tmp_path,
        {
            "plan_id": "BIG",
            "steps": [
                {
                    "id": "flood",
                    "command": "head",
                    "args": ["-c", "200000000", "/dev/zero"],
                    "timeout_sec": 120,
                },
                {
                    "id": "stderr_flood",
                    "command": "sh",
                    "args": ["-c", "head -c 50000000 /dev/zero >&2"],
                    "timeout_sec": 120,
                },
            ],
        },
    )
    # The child reads its own high-water mark (VmHWM, per address space). ru_maxrss would not
    # do: Linux carries the parent's (pytest's) peak into it across fork and exec.
    code = (
        "import sys; from planrun.cli import main; sys.argv=['planrun', sys.argv[1], '--state-dir', 's', '-q'];\n"
        "try:\n    main()\nexcept SystemExit:\n"
        "    hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0].split()[1]\n"
        "    print(hwm, file=sys.stderr); raise"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(plan)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    peak_kib = int(result.stderr.strip().splitlines()[-1])
    assert peak_kib < 100 * 1024, f"planrun peak RSS {peak_kib} KiB"
    run = collect(tmp_path / "s", 0)
    logs = tmp_path / "s" / "runs" / run.run_id / "logs"
    assert (logs / "flood.1.stdout").stat().st_size == 200_000_000
    assert (logs / "stderr_flood.1.stderr").stat().st_size == 50_000_000


def test_heartbeat_stall_is_timed_out_stalled(tmp_path: Path) -> None:
    plan = write(
        tmp_path,
        {
            "plan_id": "STALL",
            "globals": {"kill_grace_sec": 1},
            "steps": [
                {
                    "id": "chatty",
                    "command": "sh",
                    "args": ["-c", "for i in 1 2 3 4 5 6; do echo $i; sleep 0.2; done"],
                    "heartbeat_timeout_sec": 1,
                    "timeout_sec": 30,
                },
                {
                    "id": "silent",
                    "command": "sh",
                    "args": ["-c", "echo start; sleep 30"],
                    "heartbeat_timeout_sec": 0.5,
                    "timeout_sec": 60,
                    "on_failure": "continue",
                },
            ],
        },
    )
    result = planrun_cli(str(plan), "--state-dir", "s", "-j", "2", cwd=tmp_path)
    run = collect(tmp_path / "s", result.returncode)
    assert run.statuses == {"chatty": "success", "silent": "timed_out"}
    assert run.reasons["silent"] == "stalled"
    timed_out = next(e for e in run.events if e.type == "step_timed_out")
    assert timed_out.payload["limit_sec"] == 0.5
    assert result.returncode == 0  # on_failure: continue


def test_dry_run_binds_params_and_shows_commands_on_one_line(tmp_path: Path) -> None:
    plan = write(
        tmp_path,
        {
            "plan_id": "DRY",
            "params": {"who": {"type": "string"}},
            "globals": {"default_timeout_sec": 5},
            "steps": [
                {
                    "id": "a",
                    "command": "echo",
                    "args": ["${{ params.who }}", "x\ny"],
                    "provides": ["o"],
                },
                {
                    "id": "b",
                    "command": "echo",
                    "args": ["${{ steps.a.outputs.o }}"],
                    "depends_on": ["a"],
                },
            ],
        },
    )
    shown = planrun_cli(str(plan), "--dry-run", "-p", "who=A B", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines() == [
        "   1. a  (echo 'A B' 'x\\ny')",
        "   2. b  (echo '${{ steps.a.outputs.o }}')",
    ]
    refused = planrun_cli(str(plan), "--dry-run", cwd=tmp_path)
    assert refused.returncode == 2
    assert "missing required param(s): who (string)" in refused.stderr
