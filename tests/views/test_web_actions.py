"""`planrun ui`'s actions over HTTP: start, cancel, resume, re-run a step (docs/views.md).

Real planrun processes started by the server, real signals, real SQLite; each action's refusal
(no token, no CSRF header or origin, bad params, unknown run) and its `ui_action` event.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest
from support import wait_for, write_plan
from viewkit import Answer, bearer, call, cookie, gated_plan, serving, start_planrun

from planrun.store import open_reader
from planrun.views.web import UiServer
from planrun.views.webauth import NO_TOKEN


def param_plan(gate: Path) -> dict[str, Any]:
    """Every param type the form knows, and a step that waits on `gate` (never on a sleep)."""
    script = (
        'echo "hello ${{ params.who }} ${{ params.mode }} ${{ params.count }} ${{ params.loud }}";'
        f' while [ ! -e "{gate}" ]; do sleep 0.05; done; echo done'
    )
    return {
        "plan_id": "PARAMS",
        "description": "greets someone, when the gate opens",
        "params": {
            "who": {"type": "string", "description": "who to greet"},
            "mode": {"type": "string", "choices": ["fast", "slow"], "default": "fast"},
            "count": {"type": "int", "default": 1},
            "loud": {"type": "bool", "default": False},
        },
        "globals": {"default_timeout_sec": 120},
        "steps": [
            {"id": "hello", "command": "sh", "args": ["-c", script]},
            {"id": "after", "command": "true", "depends_on": ["hello"]},
        ],
    }


def post(server: UiServer, path: str, body: Any = None, **headers: str) -> Answer:
    data = {} if body is None else body
    sent = {**bearer(server), "Content-Type": "application/json", **headers}
    return call_with_body(server, path, json.dumps(data).encode(), sent)


def call_with_body(server: UiServer, path: str, body: bytes, headers: dict[str, str]) -> Answer:
    import http.client

    from planrun.views.web import HOST

    port = server.server_address[1]
    connection = http.client.HTTPConnection(HOST, port, timeout=60)
    try:
        connection.request("POST", path, body=body, headers={"Host": f"{HOST}:{port}", **headers})
        response = connection.getresponse()
        return Answer(response.status, response.msg, response.read())
    finally:
        connection.close()


def ui_actions(state: Path, run_id: str) -> list[dict[str, Any]]:
    with open_reader(state) as reader:
        return [e.payload for e in reader.events(run_id) if e.type == "ui_action"]


def run_status(state: Path, run_id: str) -> str:
    with open_reader(state) as reader:
        return reader.run(run_id).status


def step_statuses(state: Path, run_id: str) -> dict[str, str]:
    with open_reader(state) as reader:
        return {s.step_id: s.status for s in reader.steps(run_id)}


@contextmanager
def ui_with_plan(tmp_path: Path, plan: dict[str, Any]) -> Iterator[tuple[UiServer, Path]]:
    plan_file = write_plan(tmp_path, plan)
    state = tmp_path / "state"
    with serving(state, plan_files=(str(plan_file),)) as server:
        yield server, state


def test_plans_lists_the_command_line_plans_with_their_params(tmp_path: Path) -> None:
    with ui_with_plan(tmp_path, param_plan(tmp_path / "gate")) as (server, _):
        answer = call(server, "/api/plans", headers=bearer(server))
    assert answer.status == 200
    (plan,) = answer.json["plans"]
    assert plan["key"] == "file-0" and plan["plan_id"] == "PARAMS" and plan["source"] == "file"
    assert plan["params"]["mode"] == {
        "type": "string", "required": False, "default": "fast", "choices": ["fast", "slow"],
        "description": "", "secret": False,
    }  # fmt: skip
    assert plan["params"]["who"]["required"] is True
    assert plan["steps"] == ["hello", "after"]


def test_start_cancel_and_resume_record_who_did_it(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    with ui_with_plan(tmp_path, param_plan(gate)) as (server, state):
        params = {"who": "ada", "mode": "slow", "count": "3", "loud": True}
        started = post(server, "/api/start", {"plan": "file-0", "params": params})
        assert started.status == 202, started.body
        run_id = started.json["run_id"]
        assert started.json["action"] == "start" and Path(started.json["log"]).is_file()
        wait_for(lambda: step_statuses(state, run_id)["hello"] == "running", what="hello running")
        with open_reader(state) as reader:
            first = reader.events(run_id)[0]
        assert first.payload["params"] == {"who": "ada", "mode": "slow", "count": 3, "loud": True}
        (action,) = ui_actions(state, run_id)
        assert action["action"] == "start" and action["remote"].startswith("127.0.0.1:")
        assert action["by"] == f"planrun ui (pid {os.getpid()})" and action["requested_at"]

        cancelled = post(server, f"/api/runs/{run_id}/cancel")
        assert cancelled.status == 202, cancelled.body
        assert cancelled.json["signal"] == "SIGTERM"
        wait_for(lambda: run_status(state, run_id) == "cancelled", what="run cancelled")
        assert step_statuses(state, run_id) == {"hello": "cancelled", "after": "cancelled"}
        assert [a["action"] for a in ui_actions(state, run_id)] == ["start", "cancel"]
        shown = call(server, f"/api/runs/{run_id}/actions", headers=bearer(server)).json
        assert shown["run_id"] == run_id and shown["actions"][0]["seq"] == 2  # after run_started
        assert [a["action"] for a in shown["actions"]] == ["start", "cancel"]

        again = post(server, f"/api/runs/{run_id}/cancel")
        assert again.status == 409
        assert again.json == {"error": f"run {run_id} is not running (it is cancelled)"}

        gate.touch()
        resumed = post(server, f"/api/runs/{run_id}/resume")
        assert resumed.status == 202, resumed.body
        assert resumed.json["run_id"] == run_id
        wait_for(lambda: run_status(state, run_id) == "success", what="resumed run success")
        assert [a["action"] for a in ui_actions(state, run_id)] == ["start", "cancel", "resume"]

        done = post(server, f"/api/runs/{run_id}/resume")
        assert done.status == 409
        assert done.json == {"error": f"run {run_id} is success: nothing to resume"}


def test_rerun_starts_a_new_run_of_one_step_with_the_same_params(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    gate.touch()
    with ui_with_plan(tmp_path, param_plan(gate)) as (server, state):
        first = post(server, "/api/start", {"plan": "file-0", "params": {"who": "bo"}})
        assert first.status == 202, first.body
        original = first.json["run_id"]
        wait_for(lambda: run_status(state, original) == "success", what="first run")

        answer = post(server, f"/api/runs/{original}/steps/after/rerun")
        assert answer.status == 202, answer.body
        rerun = answer.json["run_id"]
        assert rerun != original and answer.json["of"] == original
        wait_for(lambda: run_status(state, rerun) != "running", what="rerun ends")
        assert step_statuses(state, rerun) == {"hello": "skipped", "after": "success"}
        (action,) = ui_actions(state, rerun)
        assert action["action"] == "rerun" and action["step"] == "after"
        with open_reader(state) as reader:
            assert reader.events(rerun)[0].payload["params"]["who"] == "bo"

        unknown = post(server, f"/api/runs/{original}/steps/aftr/rerun")
        assert unknown.status == 404
        assert unknown.json == {"error": f"run {original} has no step 'aftr'; did you mean after?"}


def test_a_recorded_plan_can_be_started_again(tmp_path: Path) -> None:
    """A plan run from the terminal earlier is startable with the IR its latest run recorded."""
    state = tmp_path / "state"
    planrun = start_planrun(tmp_path, gated_plan(tmp_path / "gate"))
    (tmp_path / "gate").touch()
    assert planrun.wait(60) == 0
    planrun.communicate()
    with serving(state) as server:
        (plan,) = call(server, "/api/plans", headers=bearer(server)).json["plans"]
        assert plan["plan_id"] == "GATED" and plan["source"] == "recorded"
        answer = post(server, "/api/start", {"plan": plan["key"]})
        assert answer.status == 202, answer.body
        run_id = answer.json["run_id"]
        wait_for(lambda: run_status(state, run_id) != "running", what="the run ends")
        assert step_statuses(state, run_id)["after"] == "success"


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"plan": "file-0"}, "missing required param(s): who (string); pass them with -p NAME=VALUE"),
        ({"plan": "file-0", "params": {"who": "x", "mode": "medium"}},
         "param mode must be one of fast, slow; got 'medium'"),
        ({"plan": "file-0", "params": {"who": "x", "count": "many"}},
         "param count is an int; got 'many'"),
        ({"plan": "file-0", "params": {"who": "x", "colour": "red"}},
         "unknown param(s) colour; this plan declares: count, loud, mode, who"),
        ({"plan": "file-0", "params": ["who"]}, "params must be a JSON object of name: value"),
        ({}, "plan must be the key of a startable plan (GET /api/plans)"),
        ({"plan": 0}, "plan must be the key of a startable plan (GET /api/plans)"),
    ],
)  # fmt: skip
def test_bad_start_requests_are_refused_with_a_clear_message(
    tmp_path: Path, body: dict[str, Any], error: str
) -> None:
    with ui_with_plan(tmp_path, param_plan(tmp_path / "gate")) as (server, state):
        answer = post(server, "/api/start", body)
        assert (answer.status, answer.json) == (400, {"error": error})
        assert server.actions.still_running() == []
    assert not state.exists()  # nothing was started


@pytest.mark.parametrize(
    "key", ["/etc/passwd", "../plan.json", "file-1", "file-٠", "file-" + "9" * 5000, "run-x"]
)
def test_only_a_listed_key_names_a_plan_never_a_path(tmp_path: Path, key: str) -> None:
    with ui_with_plan(tmp_path, param_plan(tmp_path / "gate")) as (server, state):
        answer = post(server, "/api/start", {"plan": key, "params": {"who": "x"}})
        assert answer.status == 404
        assert answer.json == {"error": f"no startable plan {key[:80]!r} (see GET /api/plans)"}
    assert server.actions.still_running() == []
    assert not state.exists()  # nothing was started


def test_a_body_that_is_not_json_is_a_400(tmp_path: Path) -> None:
    with ui_with_plan(tmp_path, param_plan(tmp_path / "gate")) as (server, _):
        answer = call_with_body(server, "/api/start", b"who=ada", bearer(server))
    assert answer.status == 400
    assert answer.json == {"error": "the body must be a JSON object"}


@pytest.mark.parametrize("action", ["cancel", "resume", "steps/build/rerun"])
def test_a_run_that_does_not_exist_is_a_404(tmp_path: Path, action: str) -> None:
    gate = tmp_path / "gate"
    gate.touch()
    with ui_with_plan(tmp_path, param_plan(gate)) as (server, state):
        first = post(server, "/api/start", {"plan": "file-0", "params": {"who": "x"}})
        wait_for(lambda: run_status(state, first.json["run_id"]) == "success", what="a run")
        answer = post(server, f"/api/runs/20990101T000000Z-000000/{action}")
    assert answer.status == 404
    assert answer.json["error"].startswith("unknown run '20990101T000000Z-000000'")


@pytest.mark.parametrize(
    "path", ["/api/start", "/api/runs/X/cancel", "/api/runs/X/resume", "/api/runs/X/steps/a/rerun"]
)
def test_actions_need_the_token_and_from_a_browser_the_csrf_header_and_origin(
    tmp_path: Path, path: str
) -> None:
    with ui_with_plan(tmp_path, param_plan(tmp_path / "gate")) as (server, state):
        body = json.dumps({"plan": "file-0", "params": {"who": "x"}}).encode()
        origin = f"http://127.0.0.1:{server.server_address[1]}"
        csrf = {"X-Planrun-CSRF": server.access.csrf}
        refused = {
            "no token": ({}, NO_TOKEN),
            "wrong token": ({"Authorization": "Bearer " + "x" * 43}, NO_TOKEN),
            "cookie, no CSRF": ({**cookie(server), "Origin": origin}, "forbidden: missing or wrong X-Planrun-CSRF header"),
            "cookie, no Origin": ({**cookie(server), **csrf}, "forbidden: cross-origin request"),
            "cookie, other Origin": ({**cookie(server), **csrf, "Origin": "http://evil.example"}, "forbidden: cross-origin request"),
            "CSRF alone": ({**csrf, "Origin": origin}, NO_TOKEN),
        }  # fmt: skip
        for why, (headers, error) in refused.items():
            answer = call_with_body(server, path, body, headers)
            assert (why, answer.status, answer.json) == (why, 403, {"error": error})
        assert server.actions.still_running() == []
        assert not state.exists()  # nothing ran, nothing was read or written

        host = call_with_body(server, path, body, {**bearer(server), "Host": "evil.example"})
        assert host.status == 403 and host.json == {"error": "forbidden host"}


def test_the_page_s_own_post_passes_the_gate(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    with ui_with_plan(tmp_path, param_plan(gate)) as (server, state):
        origin = f"http://localhost:{server.server_address[1]}"
        headers = {**cookie(server), "Origin": origin, "X-Planrun-CSRF": server.access.csrf}
        body = json.dumps({"plan": "file-0", "params": {"who": "x"}}).encode()
        answer = call_with_body(server, "/api/start", body, headers)
        assert answer.status == 202, answer.body
        gate.touch()
        wait_for(lambda: run_status(state, answer.json["run_id"]) == "success", what="success")


def test_cancel_signals_only_the_run_s_own_planrun(tmp_path: Path) -> None:
    """A run started from the terminal is cancelled through its recorded owner (pid and start
    time); once that process is gone the run is `interrupted` and nothing is signalled."""
    gate = tmp_path / "gate"
    planrun = start_planrun(tmp_path, gated_plan(gate))
    state = tmp_path / "state"
    try:
        run_id = wait_for(lambda: _running_run(state), what="a running run")
        with serving(state) as server:
            answer = post(server, f"/api/runs/{run_id}/cancel")
            assert answer.status == 202, answer.body
            assert answer.json["pid"] == planrun.pid
            _, _err = planrun.communicate(timeout=60)
            assert planrun.returncode == 130
            assert run_status(state, run_id) == "cancelled"
            assert [a["action"] for a in ui_actions(state, run_id)] == ["cancel"]

            killed = start_planrun(tmp_path, gated_plan(gate.with_name("gate2")))
            second = wait_for(lambda: _running_run(state), what="a second running run")
            killed.kill()  # SIGKILL: the run is left `running`, its owner gone
            killed.communicate(timeout=60)
            gone = post(server, f"/api/runs/{second}/cancel")
            assert gone.status == 409
            assert gone.json == {"error": f"run {second} is not running (it is interrupted)"}
    finally:
        gate.touch()
        gate.with_name("gate2").touch()
        if planrun.poll() is None:
            planrun.kill()
            planrun.communicate()
        _kill_leftover_groups(state)


def _running_run(state: Path) -> str | None:
    with open_reader(state) as reader:
        for run in reader.runs(5):
            if run.status == "running" and any(
                s.status == "running" for s in reader.steps(run.run_id)
            ):
                return run.run_id
    return None


def _kill_leftover_groups(state: Path) -> None:
    """Steps of a planrun killed with SIGKILL keep running in their own group: end them."""
    if not state.exists():
        return
    with open_reader(state) as reader:
        for run in reader.runs(20):
            for attempt in reader.attempts(run.run_id):
                if attempt.finished_at is None and attempt.pgid:
                    with suppress(OSError):
                        os.killpg(attempt.pgid, signal.SIGKILL)


def test_a_started_run_sees_neither_the_ui_token_nor_the_action(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLANRUN_UI_TOKEN", "a-token-from-the-environment-0123")
    plan = {
        "plan_id": "ENV",
        "globals": {"default_timeout_sec": 60},
        "steps": [{"id": "env", "command": "sh", "args": ["-c", "env | grep ^PLANRUN_ || true"]}],
    }
    with ui_with_plan(tmp_path, plan) as (server, state):
        answer = post(server, "/api/start", {"plan": "file-0"})
        assert answer.status == 202, answer.body
        run_id = answer.json["run_id"]
        wait_for(lambda: run_status(state, run_id) == "success", what="the run")
    names = (state / "runs" / run_id / "logs" / "env.1.stdout").read_text().split()
    assert [n.split("=")[0] for n in names if n.startswith("PLANRUN_UI")] == []
    assert [a["action"] for a in ui_actions(state, run_id)] == ["start"]


def test_a_body_over_the_limit_is_a_413(tmp_path: Path) -> None:
    with ui_with_plan(tmp_path, param_plan(tmp_path / "gate")) as (server, _):
        body = json.dumps({"plan": "file-0", "params": {"who": "x" * 70_000}}).encode()
        answer = call_with_body(server, "/api/start", body, bearer(server))
    assert answer.status == 413
    assert answer.json == {"error": "body over 65536 bytes"}


def test_a_second_cancel_kills_at_once_as_a_second_ctrl_c(tmp_path: Path) -> None:
    """The first cancel gives the running step its grace (it ignores SIGTERM, the grace is 120
    s); the second kills it at once, as a second Ctrl-C does."""
    gate = tmp_path / "gate"
    stubborn = f"trap '' TERM; echo up; while [ ! -e '{gate}' ]; do sleep 0.05; done"
    plan = {
        "plan_id": "STUBBORN",
        "globals": {"default_timeout_sec": 300, "kill_grace_sec": 120},
        "steps": [{"id": "stubborn", "command": "sh", "args": ["-c", stubborn]}],
    }
    with ui_with_plan(tmp_path, plan) as (server, state):
        try:
            run_id = post(server, "/api/start", {"plan": "file-0"}).json["run_id"]
            log = state / "runs" / run_id / "logs" / "stubborn.1.stdout"
            wait_for(lambda: log.exists() and log.read_text() == "up\n", what="the step is up")
            assert post(server, f"/api/runs/{run_id}/cancel").status == 202
            wait_for(lambda: len(ui_actions(state, run_id)) == 2, what="the first cancel recorded")
            assert run_status(state, run_id) == "running"  # the step has its grace
            assert post(server, f"/api/runs/{run_id}/cancel").status == 202
            wait_for(lambda: run_status(state, run_id) == "cancelled", what="killed at once")
        finally:
            gate.touch()
        assert [a["action"] for a in ui_actions(state, run_id)] == ["start", "cancel", "cancel"]
        with open_reader(state) as reader:
            (attempt,) = reader.attempts(run_id, "stubborn")
        assert attempt.status == "cancelled"  # within wait_for's 30 s, not after the 120 s grace


def test_a_planrun_that_refuses_to_start_is_a_409_with_its_message(tmp_path: Path) -> None:
    """Resuming a run with a secret param needs its value again, which the UI never passes: the
    resumed planrun refuses, and the UI answers 409 with its message."""
    plan = {
        "plan_id": "SECRET_PARAM",
        "params": {"token": {"type": "string", "secret": True}},
        "steps": [{"id": "use", "command": "false"}],
    }
    path = write_plan(tmp_path, plan)
    started = start_planrun(tmp_path, plan, "-p", "token=s3cr3t-value")
    assert started.wait(60) == 1
    started.communicate()
    with serving(tmp_path / "state") as server:
        (run,) = call(server, "/api/runs", headers=bearer(server)).json["runs"]
        answer = post(server, f"/api/runs/{run['run_id']}/resume")
    assert path.exists()
    assert answer.status == 409
    assert answer.json["error"].startswith("planrun exited with 2: planrun: ")
    assert "secret param" in answer.json["error"] and "token" in answer.json["error"]


def test_re_running_a_step_runs_what_it_needs_when_no_success_matches(tmp_path: Path) -> None:
    """Re-running `after` needs `hello`, which never succeeded: it runs first (docs/fingerprints.md)."""
    gate = tmp_path / "gate"
    with ui_with_plan(tmp_path, param_plan(gate)) as (server, state):
        run_id = post(server, "/api/start", {"plan": "file-0", "params": {"who": "x"}}).json[
            "run_id"
        ]
        wait_for(lambda: step_statuses(state, run_id)["hello"] == "running", what="hello running")
        assert post(server, f"/api/runs/{run_id}/cancel").status == 202
        wait_for(lambda: run_status(state, run_id) == "cancelled", what="cancelled")
        gate.touch()
        answer = post(server, f"/api/runs/{run_id}/steps/after/rerun")
        assert answer.status == 202, answer.body
        rerun = answer.json["run_id"]
        wait_for(lambda: run_status(state, rerun) == "success", what="the re-run succeeding")
        assert step_statuses(state, rerun) == {"hello": "success", "after": "success"}


def test_a_plan_with_secret_params_is_not_started_from_the_ui(tmp_path: Path) -> None:
    """Its value would travel in the started planrun's argv, readable by every local user."""
    plan = {
        "plan_id": "SECRETIVE",
        "params": {"token": {"type": "string", "secret": True}},
        "steps": [{"id": "use", "command": "true"}],
    }
    with ui_with_plan(tmp_path, plan) as (server, state):
        answer = post(server, "/api/start", {"plan": "file-0", "params": {"token": "s3cr3t-value"}})
    assert answer.status == 400
    assert answer.json["error"] == (
        "plan SECRETIVE has secret params (token): start it from a terminal with -p,"
        " the UI does not pass secrets"
    )
    assert not (state / "runs").exists() or not any((state / "runs").iterdir())
