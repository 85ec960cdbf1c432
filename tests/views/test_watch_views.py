"""The views of `planrun watch`: `planrun runs` groups a watcher's runs, the web UI's front page
shows each live watcher (state, last trigger, next run). Real watchers, a real store."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import planrun_cli, wait_for, write_plan
from viewkit import serving
from watch_support import Watcher, shell_step

from planrun.views.web import UiServer

Procs = list[subprocess.Popen[str]]


def _plan(tmp_path: Path, script: str) -> None:
    (tmp_path / "src").mkdir()
    write_plan(tmp_path, {"plan_id": "watched", "steps": [shell_step("a", script)]})


@pytest.fixture
def ui(tmp_path: Path) -> Iterator[UiServer]:
    with serving(tmp_path / "state") as server:
        yield server


def _api_runs(server: UiServer) -> dict[str, Any]:
    request = urllib.request.Request(server.url + "api/runs")
    request.add_header("Authorization", f"Bearer {server.access.token}")
    with urllib.request.urlopen(request, timeout=30) as response:
        data: dict[str, Any] = json.loads(response.read())
    return data


def test_planrun_runs_groups_a_watchers_runs(tmp_path: Path, spawned: Procs) -> None:
    _plan(tmp_path, "true")
    state = tmp_path / "state"
    watcher = Watcher(
        ["plan.json", "--no-files", "--interval", "1ms", "--max-runs", "3"],
        tmp_path,
        spawned,
        state,
    )
    assert watcher.proc.wait(timeout=60) == 0
    runs = watcher.runs()
    session = runs[0]["watch"]["session"]
    plain = planrun_cli("plan.json", "--state-dir", str(state), cwd=tmp_path)
    assert plain.returncode == 0
    listed = planrun_cli("runs", "--state-dir", str(state), "--color", "never", cwd=tmp_path)
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["RUN", "PLAN", "STATUS", "STARTED", "DURATION", "STEPS"]
    assert lines[1].startswith("2")  # the plain run, newest, not in a group
    assert lines[2].startswith(f"watch {session}  watched  watch: stopped")
    assert lines[2].endswith("✓3")
    newest_first = [r["run_id"] for r in reversed(runs)]
    assert [line.split()[0] for line in lines[3:]] == newest_first
    assert all(line.startswith("  2") for line in lines[3:])

    as_json = json.loads(
        planrun_cli("runs", "--state-dir", str(state), "--json", cwd=tmp_path).stdout
    )
    assert "watch" not in as_json[0]
    assert [r["watch"]["run"] for r in as_json[1:]] == [3, 2, 1]
    assert {r["watch"]["session"] for r in as_json[1:]} == {session}


def test_the_ui_lists_a_live_watcher_and_what_it_is_doing(
    tmp_path: Path, spawned: Procs, ui: UiServer
) -> None:
    _plan(tmp_path, "exit 3")
    watcher = Watcher(
        ["plan.json", "--backoff", "60s", "--interval", "1h"], tmp_path, spawned, tmp_path / "state"
    )
    wait_for(lambda: watcher.watcher_state() == "backing_off", 30, "the watcher backing off")
    data = _api_runs(ui)
    [live] = data["watchers"]
    run_id = data["runs"][0]["run_id"]
    assert live["state"] == "backing_off" and live["plan_id"] == "watched"
    assert live["next_run_reason"] == "backoff" and live["next_run_at"]
    assert live["last_trigger"]["kind"] == "start"
    assert live["last_run"] == {"run_id": run_id, "status": "failed", "exit_code": 1}
    assert live["runs"] == 1 and live["failures"] == 1
    assert data["runs"][0]["watch"]["session"] == live["session"]
    assert watcher.stop() == 130
    assert _api_runs(ui)["watchers"] == []  # a stopped watcher is not live any more


def test_a_killed_watcher_is_gone_not_live(tmp_path: Path, spawned: Procs, ui: UiServer) -> None:
    _plan(tmp_path, "true")
    watcher = Watcher(["plan.json"], tmp_path, spawned, tmp_path / "state")
    watcher.wait_runs(1)
    assert [w["state"] for w in _api_runs(ui)["watchers"]] == ["idle"]
    watcher.proc.kill()  # no chance to say it stopped
    watcher.proc.wait(timeout=30)
    assert _api_runs(ui)["watchers"] == []
    assert watcher.watcher_state() == "gone"


def test_the_front_page_shows_the_watcher(
    page: Any, tmp_path: Path, spawned: Procs, ui: UiServer
) -> None:
    expect = pytest.importorskip("playwright.sync_api").expect
    _plan(tmp_path, "exit 3")
    watcher = Watcher(["plan.json", "--backoff", "60s"], tmp_path, spawned, tmp_path / "state")
    wait_for(lambda: watcher.watcher_state() == "backing_off", 30, "the watcher backing off")
    state = watcher.watcher()
    assert state is not None
    page.goto(ui.login_url)
    row = page.locator(f'#watchers tr[data-watcher="{state["session"]}"]')
    expect(row).to_contain_text("backing off", timeout=30_000)
    expect(row).to_contain_text("(backoff)")
    expect(row).to_contain_text(f"failed {state['last_run']['run_id']}")
    assert watcher.stop() == 130
    expect(page.locator("#watchers")).to_have_count(0, timeout=30_000)
