"""docs/dataflow.md end to end: params, $PLAN_OUTPUT, interpolation, secrets masking."""

from __future__ import annotations

import base64
import json
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from support import collect, planrun_cli, run_plan, write_plan

from planrun.core.params import ParamError, bind
from planrun.masking import StreamMasker, patterns_for
from planrun.outputs import OutputError, read_outputs

SECRET = "s3cr3t/value+with spaces&more"


def plan(*steps: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {
        "plan_id": "DATAFLOW",
        "globals": {"default_timeout_sec": 30},
        **top,
        "steps": list(steps),
    }


def sh(step_id: str, script: str, **fields: Any) -> dict[str, Any]:
    return {"id": step_id, "command": "sh", "args": ["-c", script], **fields}


DECLARED = {
    "repo": {
        "type": "string",
        "required": True,
        "default": None,
        "description": "",
        "choices": None,
    },
    "jobs": {"type": "int", "required": False, "default": 2, "description": "", "choices": None},
    "push": {
        "type": "bool",
        "required": False,
        "default": True,
        "description": "",
        "choices": None,
    },
    "target": {
        "type": "string",
        "required": False,
        "default": "main",
        "description": "",
        "choices": ["main", "dev"],
    },
}


def test_bind_params_by_type() -> None:
    bound = bind(DECLARED, {"repo": "/src", "jobs": "8", "push": "no"})
    assert bound == {"repo": "/src", "jobs": 8, "push": False, "target": "main"}
    assert bind(DECLARED, {"repo": "x", "jobs": " -12 "})["jobs"] == -12
    assert bind(DECLARED, {"repo": "x", "jobs": 3, "push": True})["jobs"] == 3


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({}, "missing required param(s): repo (string); pass them with -p NAME=VALUE"),
        (
            {"repo": "x", "jbos": "1"},
            "unknown param(s) jbos; this plan declares: jobs, push, repo, target",
        ),
        ({"repo": "x", "jobs": "many"}, "param jobs is an int; got 'many'"),
        # These three ended planrun (and planc simulate) with a ValueError from int().
        ({"repo": "x", "jobs": "²"}, "param jobs is an int; got '²'"),
        ({"repo": "x", "jobs": "--5"}, "param jobs is an int; got '--5'"),
        ({"repo": "x", "jobs": "-"}, "param jobs is an int; got '-'"),
        ({"repo": "x", "jobs": "٣"}, "param jobs is an int; got '٣'"),  # not read as 3
        ({"repo": "x", "push": "maybe"}, "param push is a bool (true/false); got 'maybe'"),
        ({"repo": "x", "target": "prod"}, "param target must be one of main, dev; got 'prod'"),
        ({"repo": 5}, "param repo is a string; got 5 (quote it in the params file)"),
    ],
)
def test_bad_params_are_refused(given: dict[str, Any], message: str) -> None:
    with pytest.raises(ParamError) as caught:
        bind(DECLARED, given)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[1, 2]", "must hold a JSON object of name: value"),
        ("{", "is not valid JSON: Expecting property name enclosed in double quotes"),
        ('{"n": ' + "[" * 100_000 + "]" * 100_000 + "}", "nests too deeply to be a params file"),
    ],
)
def test_a_bad_params_file_is_one_line_and_exit_2(
    tmp_path: Path, content: str, message: str
) -> None:
    """The deeply nested one ended planrun with a RecursionError traceback."""
    path = write_plan(tmp_path, plan(sh("a", "true"), params={"n": {"type": "int"}}))
    (tmp_path / "params.json").write_text(content)
    result = planrun_cli(
        str(path), "--params-file", "params.json", "--state-dir", "s", cwd=tmp_path
    )
    assert result.returncode == 2
    assert result.stderr.startswith(f"planrun: params file params.json {message}")
    assert len(result.stderr.splitlines()) == 1
    assert not (tmp_path / "s").exists()


def test_params_errors_exit_2_before_anything_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = write_plan(tmp_path, plan(sh("a", f"touch {marker}"), params={"n": {"type": "int"}}))
    result = planrun_cli(str(path), "--state-dir", "s", cwd=tmp_path)
    assert result.returncode == 2
    assert "missing required param(s): n (int)" in result.stderr
    assert not marker.exists() and not (tmp_path / "s").exists()
    params_file = tmp_path / "params.json"
    params_file.write_text(json.dumps({"n": 4}))
    ok = planrun_cli(str(path), "--params-file", str(params_file), "--state-dir", "s", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert marker.exists()


def test_outputs_flow_into_args_env_cwd_and_conditions(tmp_path: Path) -> None:
    (tmp_path / "sub dir").mkdir()
    steps = (
        sh(
            "produce",
            'echo "where=sub dir" >> "$PLAN_OUTPUT"; printf "notes<<END\\nline 1\\nline 2\\nEND\\n" >> "$PLAN_OUTPUT"',
            provides=["where", "notes"],
        ),
        {
            "id": "consume",
            "command": "python3",
            "args": [
                "-c",
                "import json,os,sys; print(json.dumps([sys.argv[1:], os.getcwd(), os.environ['NOTES']]))",
                "${{ steps.produce.outputs.where }}; rm -rf /",
                "--who=${{ params.who }}",
            ],
            "cwd": "${{ steps.produce.outputs.where }}",
            "env": {"NOTES": "${{ steps.produce.outputs.notes }}"},
            "depends_on": ["produce"],
        },
        {
            "id": "only_if_loud",
            "command": "true",
            "depends_on": ["produce"],
            "condition": "params.loud == true",
        },
        {
            "id": "if_output",
            "command": "true",
            "depends_on": ["produce"],
            "condition": "steps.produce.outputs.where == 'sub dir'",
        },
    )
    params = {
        "who": {"type": "string", "default": "world"},
        "loud": {"type": "bool", "default": False},
    }
    result = run_plan(tmp_path, plan(*steps, params=params), params=("who=a b",))
    assert result.exit_code == 0, result.output
    assert result.statuses == {
        "produce": "success",
        "consume": "success",
        "only_if_loud": "skipped",
        "if_output": "success",
    }
    log = result.state_dir / "runs" / result.run_id / "logs" / "consume.1.stdout"
    args, cwd, notes = json.loads(log.read_text())
    assert args == ["sub dir; rm -rf /", "--who=a b"]  # one argv element each, nothing parsed
    assert cwd == str(tmp_path / "sub dir")
    assert notes == "line 1\nline 2"
    assert result.summary["steps"]["produce"]["outputs"] == {
        "where": "sub dir",
        "notes": "line 1\nline 2",
    }
    started = next(e for e in result.events if e.type == "run_started")
    assert started.payload["params"] == {"who": "a b", "loud": False}


def test_unset_output_fails_the_reader_with_a_reason(tmp_path: Path) -> None:
    steps = (
        sh("produce", "true", provides=["ref"]),
        {
            "id": "use",
            "command": "echo",
            "args": ["${{ steps.produce.outputs.ref }}"],
            "depends_on": ["produce"],
        },
    )
    result = run_plan(tmp_path, plan(*steps))
    assert result.statuses == {"produce": "success", "use": "failed"}
    failed = next(e for e in result.events if e.type == "step_failed")
    assert failed.payload["reason"] == "output ref of step produce is not set"


def test_an_output_holding_a_nul_fails_its_reader_not_planrun(tmp_path: Path) -> None:
    steps = (
        sh("produce", "printf 'ref=a\\000b\\n' >> \"$PLAN_OUTPUT\"", provides=["ref"]),
        {
            "id": "use",
            "command": "echo",
            "args": ["${{ steps.produce.outputs.ref }}"],
            "depends_on": ["produce"],
        },
    )
    result = run_plan(tmp_path, plan(*steps))
    assert result.exit_code == 1
    assert result.statuses == {"produce": "success", "use": "failed"}
    failed = next(e for e in result.events if e.type == "step_failed")
    assert failed.payload["reason"] == (
        "argument 1 contains a NUL character, which no program can receive"
    )
    assert result.events[-1].type == "run_finished"


def test_undeclared_output_fails_the_step(tmp_path: Path) -> None:
    result = run_plan(
        tmp_path, plan(sh("produce", 'echo "other=1" >> "$PLAN_OUTPUT"', provides=["ref"]))
    )
    assert result.statuses == {"produce": "failed"}
    failed = next(e for e in result.events if e.type == "step_failed")
    assert (
        failed.payload["reason"]
        == "$PLAN_OUTPUT line 1 sets `other`, which the step does not provide (it provides ref)"
    )


def test_output_parser(tmp_path: Path) -> None:
    path = tmp_path / "out"
    path.write_text("a=1\n\nb=x=y\na=2\nc<<EOF\nmulti\nline\nEOF\n")
    assert read_outputs(str(path), frozenset({"a", "b", "c"})) == {
        "a": "2",
        "b": "x=y",
        "c": "multi\nline",
    }
    path.write_text("c<<EOF\nnever ends\n")
    with pytest.raises(OutputError, match="no line `EOF` ends `c`"):
        read_outputs(str(path), frozenset({"c"}))
    path.write_text("just words\n")
    with pytest.raises(OutputError, match="is not NAME=value"):
        read_outputs(str(path), frozenset({"c"}))


def test_resume_reuses_recorded_outputs(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    steps = (
        sh("produce", 'echo "ref=$(date +%s%N)" >> "$PLAN_OUTPUT"', provides=["ref"]),
        sh(
            "use",
            f'test -e {gate} && echo "$REF" > {tmp_path / "used"}',
            env={"REF": "${{ steps.produce.outputs.ref }}"},
            depends_on=["produce"],
        ),
    )
    first = run_plan(tmp_path, plan(*steps))
    assert first.statuses == {"produce": "success", "use": "failed"}
    gate.touch()
    second = run_plan(tmp_path, plan(*steps), resume=first.run_id)
    assert second.statuses == {"produce": "success", "use": "success"}
    assert (tmp_path / "used").read_text().strip() == first.summary["steps"]["produce"]["outputs"][
        "ref"
    ]


def test_secrets_are_masked_everywhere_and_withheld(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLAN_TEST_TOKEN", SECRET)
    monkeypatch.setenv("PLAN_TEST_OTHER", "another-secret-value")
    encoded = base64.b64encode(SECRET.encode()).decode()
    quoted = urllib.parse.quote(SECRET, safe="")
    # The step derives every form from its environment: the plan itself holds no secret.
    script = (
        'echo "raw $PLAN_TEST_TOKEN"; echo "b64 $(printf %s "$PLAN_TEST_TOKEN" | base64 -w0)";'
        " python3 -c \"import os,urllib.parse as u; print('url', u.quote(os.environ['PLAN_TEST_TOKEN'], safe=''))\" >&2;"
        ' echo "other=${PLAN_TEST_OTHER:-withheld}"; printf "%s" "$PLAN_TEST_TOKEN" | head -c 5; echo;'
        " exit 3"
    )
    # The value is checked in two halves: a command line holding a whole secret is not started.
    granted = 'test "${PLAN_TEST_OTHER%-secret-value}" = another'
    steps = (
        sh("leak", script, on_failure="continue"),
        sh("granted", granted, secrets=["PLAN_TEST_OTHER"]),
    )
    result = run_plan(tmp_path, plan(*steps, secrets=["PLAN_TEST_TOKEN"]))
    assert result.statuses == {"leak": "failed", "granted": "success"}
    logs = result.state_dir / "runs" / result.run_id / "logs"
    assert (logs / "leak.1.stdout").read_text().splitlines() == [
        "raw ***",
        "b64 ***",
        "other=withheld",
        SECRET[:5],
    ]
    assert (logs / "leak.1.stderr").read_text() == "url ***\n"
    failed = next(e for e in result.events if e.type == "step_failed")
    assert failed.payload["stderr_tail"] == "url ***"
    for form in (SECRET, encoded, quoted, urllib.parse.quote_plus(SECRET, safe="")):
        for path in result.state_dir.rglob("*"):
            if path.is_file():
                assert form.encode() not in path.read_bytes(), f"{form!r} leaked into {path}"
        assert form not in result.output


def test_stream_masker_catches_secrets_split_across_reads() -> None:
    patterns = patterns_for(["T"], {"T": "abcdefgh"})
    data = b"xxabcdefghyy" * 50
    for size in (1, 2, 3, 5, 7, 8, 13):
        masker = StreamMasker(patterns)
        out = (
            b"".join(masker.feed(data[i : i + size]) for i in range(0, len(data), size))
            + masker.flush()
        )
        assert out == b"xx***yy" * 50


def test_short_secret_values_are_not_masked_and_planrun_says_so(tmp_path: Path) -> None:
    assert patterns_for(["T"], {"T": "abc"}) == ()
    assert patterns_for(["T"], {}) == ()
    path = write_plan(
        tmp_path,
        plan(
            sh("show", 'echo "pin=$PLAN_TEST_PIN key=$PLAN_TEST_KEY"'),
            secrets=["PLAN_TEST_PIN", "PLAN_TEST_KEY", "PLAN_TEST_UNSET"],
        ),
    )
    env = {"PLAN_TEST_PIN": "123", "PLAN_TEST_KEY": "k3y!"}
    ran = planrun_cli(str(path), "--state-dir", "s", "-q", cwd=tmp_path, env=env)
    assert ran.returncode == 0, ran.stderr
    warnings = [line for line in ran.stderr.splitlines() if "warning" in line]
    assert warnings == [
        "planrun: warning: secret PLAN_TEST_PIN is shorter than 4 characters, too short to"
        " mask: its value appears as is in logs and events"
    ]
    result = collect(tmp_path / "s", 0)
    log = (tmp_path / result.events[1].payload["stdout_log"]).read_text()
    assert log == "pin=123 key=***\n"


def test_show_lists_outputs(tmp_path: Path) -> None:
    steps = (
        sh(
            "produce",
            'echo "ref=abc123" >> "$PLAN_OUTPUT"; printf "log<<E\\none\\ntwo\\nE\\n" >> "$PLAN_OUTPUT"',
            provides=["ref", "log"],
        ),
    )
    result = run_plan(tmp_path, plan(*steps))
    shown = planrun_cli("show", "--state-dir", str(result.state_dir), cwd=tmp_path)
    assert shown.returncode == 0
    assert shown.stdout.endswith(
        "outputs:\n  produce.log = one  (+1 more lines)\n  produce.ref = abc123\n"
    )
    as_json = json.loads(
        planrun_cli("show", "--json", "--state-dir", str(result.state_dir), cwd=tmp_path).stdout
    )
    assert as_json["steps"][0]["outputs"] == {"ref": "abc123", "log": "one\ntwo"}


def test_each_attempt_of_a_step_with_outputs_gets_a_fresh_empty_file(tmp_path: Path) -> None:
    script = (
        'test -f "$PLAN_OUTPUT" && test ! -s "$PLAN_OUTPUT" || exit 9; '
        'echo "ref=$PLAN_ATTEMPT" >> "$PLAN_OUTPUT"; test "$PLAN_ATTEMPT" = 2'
    )
    result = run_plan(tmp_path, plan(sh("produce", script, provides=["ref"], retries=1)))
    assert result.statuses == {"produce": "success"}
    assert result.summary["steps"]["produce"]["outputs"] == {"ref": "2"}


def test_a_step_without_outputs_writing_some_still_fails(tmp_path: Path) -> None:
    result = run_plan(tmp_path, plan(sh("quiet", 'echo "x=1" >> "$PLAN_OUTPUT"')))
    assert result.statuses == {"quiet": "failed"}
    failed = next(e for e in result.events if e.type == "step_failed")
    assert "sets `x`, which the step does not provide" in failed.payload["reason"]
