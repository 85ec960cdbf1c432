"""`planrun ui`'s actions from the command line: `planrun ui PLAN…`, the commands docs/views.md
shows, a run started from the UI outliving it (real processes, real signals)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from support import REPO, planrun_cli, wait_for, write_plan
from test_web_actions import param_plan, run_status, ui_actions


def test_ui_command_line_takes_plan_files_and_refuses_one_with_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"plan_id": "X", "steps": [{"id": "a"}]}')
    result = planrun_cli("ui", str(bad), "--port", "0", cwd=tmp_path)
    assert result.returncode == 2
    last = result.stderr.splitlines()[-1]
    assert last.startswith(f"planrun: cannot start {bad} from the UI: {bad} has errors"), last


def test_the_action_commands_in_docs_views_md_run_as_shown(tmp_path: Path) -> None:
    """The actions' console block of docs/views.md, with its greet.yaml, run as shown."""
    text = (REPO / "docs" / "views.md").read_text(encoding="utf-8")
    (block,) = [
        b for b in re.findall(r"```console\n(.*?)```", text, re.DOTALL) if "greet.yaml" in b
    ]
    plan = re.search(r"where `greet.yaml` is:\n\n```yaml\n(.*?)```", text, re.DOTALL)
    assert plan is not None
    (tmp_path / "greet.yaml").write_text(plan.group(1), encoding="utf-8")
    with socket.socket() as probe:  # a free port for the documented 8765, which may be taken
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLANRUN_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    lines = [line.replace("8765", port) for line in block.splitlines()]
    commands = [(i, line[2:]) for i, line in enumerate(lines) if line.startswith("$ ")]
    server: subprocess.Popen[str] | None = None
    script = ""  # the commands so far, replayed in one shell so that variables carry over
    try:
        for number, (index, command) in enumerate(commands):
            end = commands[number + 1][0] if number + 1 < len(commands) else len(lines)
            expected = lines[index + 1 : end]
            if command.endswith(" &"):
                server = subprocess.Popen(
                    ["bash", "-c", f"{script}\nexec {command.removesuffix(' &')}"],
                    cwd=tmp_path, env=env, text=True,
                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                )  # fmt: skip
                assert server.stdout is not None
                assert [server.stdout.readline().rstrip("\n")] == expected
                continue
            done = subprocess.run(
                ["bash", "-c", f"{script}\n{command}"], cwd=tmp_path, env=env,
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert (done.returncode, done.stdout.splitlines()) == (0, expected), command
            if command.startswith(("export ", "RUN=")):
                script += command + "\n"
            elif "/cancel" in command and "Bearer" in command:
                _wait_cancelled(tmp_path / ".planrun", tmp_path / "started.json")
    finally:
        if server is not None:
            server.terminate()
            server.communicate(timeout=30)


def _wait_cancelled(state: Path, started: Path) -> None:
    run_id = json.loads(started.read_text())["run_id"]
    wait_for(lambda: run_status(state, run_id) == "cancelled", what="the run cancelled")
    assert [a["action"] for a in ui_actions(state, run_id)] == ["start", "cancel"]


def test_a_run_started_from_the_ui_outlives_it(tmp_path: Path) -> None:
    """Ctrl-C on `planrun ui` neither stops nor loses a run it started: it says which go on."""
    gate = tmp_path / "gate"
    plan_file = write_plan(tmp_path, param_plan(gate))
    token = "a-test-token-0123456789"
    env = {**os.environ, "PLANRUN_UI_TOKEN": token}
    ui = subprocess.Popen(
        [sys.executable, "-m", "planrun", "ui", str(plan_file), "--port", "0"],
        cwd=tmp_path, env=env, text=True,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    state = tmp_path / ".planrun"
    try:
        assert ui.stdout is not None
        url = re.search(r"http://127\.0\.0\.1:(\d+)/", ui.stdout.readline())
        assert url is not None
        port = int(url.group(1))
        answer = _post_to_port(port, token, {"plan": "file-0", "params": {"who": "x"}})
        assert answer["run_id"]
        ui.send_signal(signal.SIGINT)
        out, _ = ui.communicate(timeout=60)
        assert ui.returncode == 0
        assert (
            out
            == f"planrun ui: runs started here go on (planrun pid {answer['pid']}): `planrun runs`\n"
        )
        assert run_status(state, answer["run_id"]) == "running"
        gate.touch()
        wait_for(lambda: run_status(state, answer["run_id"]) == "success", what="the run ends")
    finally:
        gate.touch()
        if ui.poll() is None:
            ui.kill()
            ui.communicate()


def _post_to_port(port: int, token: str, body: dict[str, Any]) -> dict[str, Any]:
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        connection.request("POST", "/api/start", body=json.dumps(body), headers=headers)
        response = connection.getresponse()
        data: dict[str, Any] = json.loads(response.read())
        assert response.status == 202, data
        return data
    finally:
        connection.close()


def test_planrun_ui_offers_the_getting_started_plan_with_its_params(tmp_path: Path) -> None:
    """`planrun ui hello.yaml`, as docs/getting-started.md says."""
    guide = (REPO / "docs" / "getting-started.md").read_text(encoding="utf-8")
    assert "`planrun ui hello.yaml`" in guide
    (hello,) = [
        b for b in re.findall(r"```yaml\n(.*?)```", guide, re.DOTALL) if b.startswith("plan_id:")
    ]
    (tmp_path / "hello.yaml").write_text(hello, encoding="utf-8")
    token = "a-test-token-0123456789"
    ui = subprocess.Popen(
        [sys.executable, "-m", "planrun", "ui", "hello.yaml", "--port", "0"],
        cwd=tmp_path, env={**os.environ, "PLANRUN_UI_TOKEN": token}, text=True,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert ui.stdout is not None
        url = re.search(r"(http://127\.0\.0\.1:\d+/)", ui.stdout.readline())
        assert url is not None
        request = urllib.request.Request(
            url.group(1) + "api/plans", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            (plan,) = json.load(response)["plans"]
        assert plan["key"] == "file-0" and plan["origin"] == str(tmp_path / "hello.yaml")
        assert plan["params"] and plan["steps"]
    finally:
        ui.send_signal(signal.SIGINT)
        ui.communicate(timeout=60)
    assert ui.returncode == 0
