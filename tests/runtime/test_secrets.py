"""Secrets never stored or shown raw (docs/dataflow.md, "Secrets"; issue 11 §1).

The end-to-end test runs a plan whose steps leak a secret through every door (stdout, stderr,
$PLAN_OUTPUT as a value and as a malformed line, a command named by it, a secret param), then
greps every file of the state dir and every view for the raw value and its URL-quoted forms.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import collect, planrun_cli, start_planrun, wait_for, write_plan

from planc.pipeline import compile_bytes
from planrun.core.ir import compute_digest
from planrun.masking import Masker, StreamMasker, patterns_of, secret_forms
from planrun.views.web import UiServer, make_server

# `/`, `+`, `=` and `&` make every URL encoding differ from the raw value.
SECRET = "Sup3rSecr3t/Val+ue=&Zq"
# 64 characters: `base64` wraps its 88-character encoding at 76 columns.
LONG = "L0ng-s3cret-" + "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUV"[:52]
PASSWORD = "pa55word-not-in-any-file"
ENV = {"PLAN_TEST_TOKEN": SECRET, "PLAN_TEST_LONG": LONG}


def forms_to_find(value: str) -> list[str]:
    return [
        value,
        urllib.parse.quote(value),
        urllib.parse.quote(value, safe=""),
        urllib.parse.quote_plus(value),
        base64.b64encode(value.encode()).decode(),
        base64.urlsafe_b64encode(value.encode()).decode(),
    ]


def sh(step_id: str, script: str, **fields: Any) -> dict[str, Any]:
    return {"id": step_id, "command": "sh", "args": ["-c", script], **fields}


def leaky_plan() -> dict[str, Any]:
    quote = (
        "python3 -c \"import os,urllib.parse as u; print(u.quote(os.environ['PLAN_TEST_TOKEN']))\""
    )
    return {
        "plan_id": "SECRETS",
        "params": {"password": {"type": "string", "secret": True}},
        "secrets": ["PLAN_TEST_LONG"],
        "globals": {"default_timeout_sec": 60},
        "steps": [
            sh(
                "mint",
                'echo "raw $PLAN_TEST_TOKEN"; echo "err $PLAN_TEST_TOKEN" >&2; ' + quote + ";"
                ' printf %s "$PLAN_TEST_LONG" | base64;'
                ' printf %s "$PLAN_TEST_LONG" | base64 -w0 | tr "+/" "-_"; echo;'
                ' echo "v=Bearer $PLAN_TEST_TOKEN" >> "$PLAN_OUTPUT"',
                secrets=["PLAN_TEST_TOKEN"],
                provides=["v"],
            ),
            sh(
                "use",
                'echo "got $V"; printf %s "$V" > "$RECEIVED"',
                env={"V": "${{ steps.mint.outputs.v }}", "RECEIVED": "received"},
                depends_on=["mint"],
            ),
            sh(
                "malformed",
                'echo "$PLAN_TEST_TOKEN" >> "$PLAN_OUTPUT"',
                secrets=["PLAN_TEST_TOKEN"],
                provides=["x"],
                on_failure="continue",
            ),
            sh(
                "unnamed",
                'echo "$PLAN_TEST_TOKEN" | sed "s/^/y=/" >> "$PLAN_OUTPUT"; exec "$PLAN_TEST_TOKEN"',
                secrets=["PLAN_TEST_TOKEN"],
                provides=["y"],
                on_failure="continue",
            ),
            sh(
                "param",
                'echo "password $P"; echo "p=$P" >> "$PLAN_OUTPUT"',
                env={"P": "${{ params.password }}"},
                provides=["p"],
            ),
        ],
    }


@pytest.fixture
def ui(tmp_path: Path) -> Iterator[UiServer]:
    running = make_server(str(tmp_path / "s"), 0)
    thread = threading.Thread(target=running.serve_forever, daemon=True)
    thread.start()
    yield running
    running.shutdown()
    running.server_close()
    thread.join(10)


def get(server: UiServer, path: str) -> str:
    request = urllib.request.Request(server.url + path.lstrip("/"))
    request.add_header("Authorization", f"Bearer {server.access.token}")
    with urllib.request.urlopen(request, timeout=30) as response:
        return str(response.read().decode())


def test_a_secret_is_in_no_file_of_the_state_dir_and_in_no_view(
    tmp_path: Path, ui: UiServer
) -> None:
    path = write_plan(tmp_path, leaky_plan())
    ran = planrun_cli(
        str(path), "--state-dir", "s", "-v", "-p", f"password={PASSWORD}", cwd=tmp_path, env=ENV
    )
    assert ran.returncode == 0, ran.stderr  # the failing steps have on_failure: continue
    result = collect(tmp_path / "s", 0)
    assert result.statuses == {
        "mint": "success",
        "use": "success",
        "malformed": "failed",
        "unnamed": "failed",
        "param": "success",
    }
    # The consumer received the raw value, through its environment.
    assert (tmp_path / "received").read_text() == f"Bearer {SECRET}"
    assert result.summary["steps"]["mint"]["outputs"] == {"v": "Bearer ***"}
    assert result.summary["steps"]["param"]["outputs"] == {"p": "***"}
    assert result.reasons["malformed"] == (
        "$PLAN_OUTPUT line 1 sets a name the step does not provide (it provides x; the name is"
        " not shown in a run with secrets)"
    )
    logs = tmp_path / "s" / "runs" / result.run_id / "logs"
    # raw, URL-quoted, base64 wrapped on two lines, base64url
    assert (logs / "mint.1.stdout").read_text().splitlines() == ["raw ***", *["***"] * 4]
    assert (logs / "mint.1.stderr").read_text() == "err ***\n"
    assert (logs / "use.1.stdout").read_text() == "got Bearer ***\n"
    assert (logs / "mint.1.outputs").read_text() == "v=Bearer ***\n"
    started = next(e for e in result.events if e.type == "run_started")
    assert started.payload["params"] == {"password": "***"}
    assert "password=***" in started.payload["argv"]

    state = tmp_path / "s"
    run = result.run_id
    views = {"run": ran.stdout + ran.stderr}
    for name, args in {
        "show": ["show", run],
        "show --json": ["show", run, "--json"],
        "status --json": ["status", run, "--json"],
        "report": ["report", run, "-o", str(tmp_path / "report.html")],
        **{f"logs {s}": ["logs", run, s] for s in result.statuses},
        **{f"logs --stderr {s}": ["logs", run, s, "--stderr"] for s in result.statuses},
    }.items():
        shown = planrun_cli(*args, "--state-dir", "s", cwd=tmp_path)
        assert shown.returncode == 0, (name, shown.stderr)
        views[name] = shown.stdout + shown.stderr
    views["report"] = (tmp_path / "report.html").read_text()
    assert "Bearer ***" in views["show --json"]
    views["ui runs"] = get(ui, "/api/runs")
    views["ui run"] = get(ui, f"/api/runs/{run}")
    for step in result.statuses:
        for stream in ("stdout", "stderr"):
            views[f"ui logs {step} {stream}"] = get(
                ui, f"/api/runs/{run}/logs/{step}?stream={stream}"
            )
    assert "Bearer ***" in views["ui run"]

    wrapped = subprocess.run(["base64"], input=LONG.encode(), capture_output=True, check=True)
    lines = wrapped.stdout.decode().split()
    assert len(lines) == 2  # the line break falls inside the encoding: both pieces are masked
    needles = [*forms_to_find(SECRET), *forms_to_find(LONG), *forms_to_find(PASSWORD), *lines]
    for file in state.rglob("*"):
        if file.is_file():
            data = file.read_bytes()
            for needle in needles:
                assert needle.encode() not in data, f"{needle!r} is in {file}"
    for name, text in views.items():
        for needle in needles:
            assert needle not in text, f"{needle!r} is in the output of {name}"


def plan_with_secret_output(gate: Path) -> dict[str, Any]:
    return {
        "plan_id": "SECRET-OUTPUT-RESUME",
        "globals": {"default_timeout_sec": 60},
        "steps": [
            sh(
                "mint",
                'echo "v=$PLAN_TEST_TOKEN" >> "$PLAN_OUTPUT"; echo "n=plain" >> "$PLAN_OUTPUT"',
                secrets=["PLAN_TEST_TOKEN"],
                provides=["v", "n"],
            ),
            sh(
                "use",
                f'test -e {gate} && test "$V" = "$N-secret"',
                env={"V": "${{ steps.mint.outputs.v }}", "N": "${{ steps.mint.outputs.n }}"},
                depends_on=["mint"],
            ),
        ],
    }


def test_a_secret_output_of_an_earlier_process_is_not_handed_on(tmp_path: Path) -> None:
    env = {"PLAN_TEST_TOKEN": "plain-secret"}
    gate = tmp_path / "gate"
    path = write_plan(tmp_path, plan_with_secret_output(gate))
    first = planrun_cli(str(path), "--state-dir", "s", cwd=tmp_path, env=env)
    assert first.returncode == 1
    run = collect(tmp_path / "s", 1)
    assert run.statuses == {"mint": "success", "use": "failed"}
    succeeded = next(e for e in run.events if e.type == "step_succeeded")
    assert succeeded.payload == {
        "exit_code": 0,
        "duration_sec": succeeded.payload["duration_sec"],
        "outputs": {"n": "plain", "v": "***"},
        "secret_outputs": ["v"],
    }
    gate.touch()
    # Resumed, `mint` is not run again and its secret output is not in the store.
    resumed = planrun_cli("--resume", run.run_id, "--state-dir", "s", cwd=tmp_path, env=env)
    assert resumed.returncode == 1
    after = collect(tmp_path / "s", 1, run_id=run.run_id)
    assert after.reasons["use"] == (
        "output v of step mint holds a secret, which planrun keeps only in the process that ran"
        " mint, not in the state dir; run it again with the steps that read it"
        " (planrun PLAN --from mint)"
    )
    assert after.types("mint").count("step_started") == 1
    # --only reuses `mint` from that run: the same reason, before anything starts.
    only = planrun_cli(str(path), "--only", "use", "--state-dir", "s", cwd=tmp_path, env=env)
    assert only.returncode == 1
    assert "output v of step mint holds a secret" in only.stderr
    # --from mint runs it again, and the value flows in memory to `use`.
    again = planrun_cli(str(path), "--from", "mint", "--state-dir", "s", cwd=tmp_path, env=env)
    assert again.returncode == 0, again.stderr


def test_a_command_line_holding_a_secret_is_not_started(tmp_path: Path) -> None:
    plan = {
        "plan_id": "ARGV",
        "secrets": ["PLAN_TEST_TOKEN"],
        "globals": {"default_timeout_sec": 60},
        "steps": [
            # It never names the secret (`T[O]KEN`): planc cannot tell its output holds it.
            sh(
                "read",
                'env | sed -n "s/^PLAN_TEST_T[O]KEN=/v=/p" >> "$PLAN_OUTPUT"',
                provides=["v"],
            ),
            {
                "id": "pass",
                "command": "touch",
                "args": ["started", "--token=${{ steps.read.outputs.v }}"],
                "depends_on": ["read"],
                "on_failure": "continue",
            },
            # A literal secret the user wrote into args.
            {
                "id": "literal",
                "command": "touch",
                "args": ["started", SECRET],
                "depends_on": ["pass"],
            },
        ],
    }
    path = write_plan(tmp_path, plan)
    ran = planrun_cli(str(path), "--state-dir", "s", cwd=tmp_path, env=ENV)
    assert ran.returncode == 1
    result = collect(tmp_path / "s", 1)
    assert result.statuses == {"read": "success", "pass": "failed", "literal": "failed"}
    reason = (
        "argument 2 of the command line holds a secret; not started (pass secrets and values"
        " holding them through `env:`)"
    )
    assert result.reasons["pass"] == reason
    assert result.reasons["literal"] == reason
    assert not (tmp_path / "started").exists()
    assert SECRET not in ran.stderr
    assert SECRET not in json.dumps([e.payload for e in result.events])
    started = [e.payload["argv"] for e in result.events if e.payload.get("argv")]
    assert ["touch", "started", "***"] in started
    # The plan as written is in the IR (state.db, ir.json): a literal secret stays there.


def test_secret_params_are_given_again_on_resume_and_never_shown(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    plan = {
        "plan_id": "SECRET-PARAM",
        "params": {"password": {"type": "string", "secret": True}, "n": {"type": "int"}},
        "globals": {"default_timeout_sec": 60},
        "steps": [
            sh(
                "login",
                f'test -e {gate} && echo "$P" > got',
                env={"P": "${{ params.password }}"},
            )
        ],
    }
    path = write_plan(tmp_path, plan)
    dry = planrun_cli(
        str(path), "--dry-run", "-p", f"password={PASSWORD}", "-p", "n=1", cwd=tmp_path
    )
    assert dry.returncode == 0 and PASSWORD not in dry.stdout
    bad = planrun_cli(str(path), "-p", f"password={PASSWORD}", "-p", "n=x", cwd=tmp_path)
    assert bad.returncode == 2 and "param n is an int; got 'x'" in bad.stderr
    first = planrun_cli(
        str(path),
        "--state-dir",
        "s",
        f"--param=password={PASSWORD}",
        "-p",
        "n=1",
        cwd=tmp_path,
    )
    assert first.returncode == 1
    recorded = collect(tmp_path / "s", 1)
    run = recorded.run_id
    assert "--param=password=***" in recorded.events[0].payload["argv"]
    refused = planrun_cli("--resume", run, "--state-dir", "s", cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr.strip().endswith(
        f"run {run} has secret param(s) password, whose values planrun does not store: give"
        " them again (-p password=VALUE)"
    )
    not_secret = planrun_cli("--resume", run, "--state-dir", "s", "-p", "n=2", cwd=tmp_path)
    assert not_secret.returncode == 2 and "n is not one" in not_secret.stderr
    gate.touch()
    resumed = planrun_cli(
        "--resume", run, "--state-dir", "s", "-p", f"password={PASSWORD}", cwd=tmp_path
    )
    assert resumed.returncode == 0, resumed.stderr
    assert (tmp_path / "got").read_text() == PASSWORD + "\n"
    state = (tmp_path / "s" / "state.db").read_bytes()
    assert PASSWORD.encode() not in state
    assert (
        json.loads(planrun_cli("status", "--json", "--state-dir", "s", cwd=tmp_path).stdout)[
            "status"
        ]
        == "success"
    )


# --- the masker --------------------------------------------------------------------------


def test_url_quoted_with_the_default_safe_slash_and_base64url_are_masked() -> None:
    masker = Masker(patterns_of([SECRET]))
    assert urllib.parse.quote(SECRET) == "Sup3rSecr3t/Val%2Bue%3D%26Zq"
    for form in forms_to_find(SECRET):
        assert masker.text(f"<{form}>") == "<***>", form


def test_base64_of_a_secret_inside_a_longer_text_is_masked() -> None:
    masker = Masker(patterns_of([LONG]))
    for before in ("", "u", "us", "user:"):
        encoded = base64.b64encode(f"{before}{LONG}\n".encode()).decode()
        masked = masker.text(encoded)
        assert "***" in masked
        # What is left is the few characters that also encode the bytes around the secret.
        assert len(masked.replace("***", "")) <= 12, (before, masked)


def test_wrapped_base64_keeps_its_lines_each_masked_whatever_the_chunks() -> None:
    encoded = base64.b64encode(LONG.encode())
    for width in (76, 64, 10):
        wrapped = b"\n".join(encoded[i : i + width] for i in range(0, len(encoded), width))
        data = b"before\n" + wrapped + b"\nafter\n"
        expected = b"before\n" + b"\n".join(b"***" for _ in wrapped.split(b"\n")) + b"\nafter\n"
        for size in (1, 2, 3, 7, 76, 77, 1000):
            masker = StreamMasker(patterns_of([LONG]))
            out = b"".join(masker.feed(data[i : i + size]) for i in range(0, len(data), size))
            assert out + masker.flush() == expected, (width, size)


def test_forms_are_at_least_four_characters_and_hex_is_not_one() -> None:
    forms = secret_forms("abcd")
    assert all(len(form) >= 4 for form in forms)
    assert b"61626364" not in forms  # hex is out of scope (docs/dataflow.md)


def test_an_outputs_file_a_killed_planrun_never_read_is_masked_on_resume(
    tmp_path: Path, spawned: list[subprocess.Popen[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLAN_TEST_TOKEN", SECRET)
    written, pid_file = tmp_path / "written", tmp_path / "step.pid"
    hang = f"if [ ! -e {written} ]; then touch {written}; echo $$ > {pid_file}; exec sleep 300; fi"
    plan = {
        "plan_id": "KILLED",
        "globals": {"default_timeout_sec": 600},
        "steps": [
            sh(
                "mint",
                f'echo "v=$PLAN_TEST_TOKEN" >> "$PLAN_OUTPUT"; {hang}',
                secrets=["PLAN_TEST_TOKEN"],
                provides=["v"],
            )
        ],
    }
    path = write_plan(tmp_path, plan)
    proc = start_planrun([str(path), "--state-dir", "s", "-q"], tmp_path, spawned)
    try:
        wait_for(lambda: pid_file.exists() and pid_file.read_text().strip() != "", what="mint")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        outputs = next((tmp_path / "s").rglob("mint.1.outputs"))
        assert SECRET in outputs.read_text()  # planrun died before reading it
        run = collect(tmp_path / "s", 0).run_id
        resumed = planrun_cli("--resume", run, "--state-dir", "s", "-q", cwd=tmp_path)
        assert resumed.returncode == 0, resumed.stderr
        assert outputs.read_text() == "v=***\n"
        for file in (tmp_path / "s").rglob("*"):
            assert not file.is_file() or SECRET.encode() not in file.read_bytes(), file
    finally:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)


def test_a_step_level_secret_does_not_reach_another_step_even_in_a_hand_made_ir(
    tmp_path: Path,
) -> None:
    plan = {
        "plan_id": "SCOPE",
        "globals": {"default_timeout_sec": 60},
        "steps": [
            sh("b", "true", secrets=["PLAN_TEST_TOKEN"]),
            sh(
                "c",
                'echo "$Y" > got',
                env={"Y": "${{ env.PLAN_TEST_TOKEN }}"},
                secrets=["PLAN_TEST_TOKEN"],
                depends_on=["b"],
            ),
        ],
    }
    result = compile_bytes("plan.json", json.dumps(plan).encode())
    assert result.ir is not None
    ir = json.loads(result.ir)
    # planc refuses this plan once `c` does not declare the secret (secret-out-of-scope):
    ir["steps"][1]["secrets"] = []
    del ir["digest"]
    ir["digest"] = compute_digest(ir)
    (tmp_path / "ir.json").write_text(json.dumps(ir))
    ran = planrun_cli("ir.json", "--state-dir", "s", cwd=tmp_path, env=ENV)
    assert ran.returncode == 1
    result_run = collect(tmp_path / "s", 1)
    assert result_run.reasons["c"] == "secret PLAN_TEST_TOKEN is not given to step c"
    assert not (tmp_path / "got").exists()


def test_a_short_secret_param_is_recorded_masked_and_planrun_warns(tmp_path: Path) -> None:
    plan = {
        "plan_id": "PIN",
        "params": {"pin": {"type": "string", "secret": True}},
        "globals": {"default_timeout_sec": 60},
        "steps": [sh("use", 'test -n "$PIN"', env={"PIN": "${{ params.pin }}"})],
    }
    path = write_plan(tmp_path, plan)
    ran = planrun_cli(str(path), "--state-dir", "s", "-q", "-p", "pin=123", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert (
        "planrun: warning: secret param pin is shorter than 4 characters, too short to mask: its"
        " value appears as is in logs and events"
    ) in ran.stderr.splitlines()
    started = collect(tmp_path / "s", 0).events[0].payload
    assert started["params"] == {"pin": "***"}
    assert started["argv"][-2:] == ["-p", "pin=***"]
