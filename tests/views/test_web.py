"""`planrun ui`'s server: routes, errors, the Host check, server-sent events, the CLI.

Access control and bounds have their own files: test_web_access.py, test_web_bounds.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import RunResult
from viewkit import call, cookie, serving

from planrun.views.web import UiServer


@pytest.fixture
def server(sample_run: RunResult) -> Iterator[UiServer]:
    with serving(sample_run.state_dir) as running:
        yield running


def get(server: UiServer, path: str, host: str | None = None) -> tuple[int, Any]:
    """GET as the logged-in browser does (with the cookie); JSON bodies decoded."""
    headers = cookie(server) | ({"Host": host} if host else {})
    answer = call(server, path, headers=headers)
    kind = answer.headers["Content-Type"]
    return answer.status, answer.json if kind.startswith("application/json") else answer.text


def test_listens_on_loopback_only(server: UiServer) -> None:
    assert server.server_address[0] == "127.0.0.1"
    assert server.url.startswith("http://127.0.0.1:")


def test_the_page_is_one_self_contained_document(server: UiServer) -> None:
    status, page = get(server, "/")
    assert status == 200 and page.startswith("<!DOCTYPE html>")
    assert "class RunView" in page and "new EventSource" in page
    assert "http" not in page.split("<body>")[0].replace("http-equiv", "")  # no remote assets


def test_runs_and_a_run_snapshot(server: UiServer, sample_run: RunResult) -> None:
    status, data = get(server, "/api/runs")
    assert status == 200 and [r["run_id"] for r in data["runs"]] == [sample_run.run_id]
    status, snap = get(server, f"/api/runs/{sample_run.run_id[:14]}")
    assert status == 200 and snap["run"]["run_id"] == sample_run.run_id
    assert len(snap["attempts"]) == 6 and "test" in snap["logs"]


def test_log_chunks_from_an_offset(server: UiServer, sample_run: RunResult) -> None:
    base = f"/api/runs/{sample_run.run_id}/logs/test?stream=stderr"
    status, chunk = get(server, base)
    assert status == 200 and chunk["text"] == "FAIL: test_parse\nAssertionError: 1 != 2\n"
    assert chunk["complete"] and chunk["offset"] == chunk["size"] == len(chunk["text"])
    status, rest = get(server, f"{base}&offset=5")
    assert rest["text"] == chunk["text"][5:]
    status, flaky = get(server, f"/api/runs/{sample_run.run_id}/logs/flaky?attempt=1")
    assert flaky["text"] == "try 1\n" and flaky["attempt"] == 1


def test_errors_are_json_404s(server: UiServer, sample_run: RunResult) -> None:
    status, error = get(server, "/api/runs/nope")
    assert status == 404 and error["error"].startswith("unknown run 'nope'")
    status, error = get(server, f"/api/runs/{sample_run.run_id}/logs/nope")
    assert status == 404 and "has no step 'nope'" in error["error"]
    status, error = get(server, f"/api/runs/{sample_run.run_id}/logs/docs")
    assert status == 404 and "never started" in error["error"]
    status, error = get(server, "/etc/passwd")
    assert status == 404


def test_refuses_foreign_host_names(server: UiServer) -> None:
    # A page on evil.example whose name resolves to 127.0.0.1 (DNS rebinding) gets nothing.
    status, error = get(server, "/api/runs", host="evil.example:8765")
    assert status == 403 and error == {"error": "forbidden host"}
    assert get(server, "/api/runs", host=f"localhost:{server.server_address[1]}")[0] == 200


def test_events_stream_says_change_then_end_for_a_finished_run(
    server: UiServer, sample_run: RunResult
) -> None:
    answer = call(server, f"/api/runs/{sample_run.run_id}/events?after=3", headers=cookie(server))
    assert answer.headers["Content-Type"].startswith("text/event-stream")
    text = answer.text  # the server closes the stream after `end`
    last = len(sample_run.events)
    assert text == (
        f'id: {last}\nevent: change\ndata: {{"seq": {last}, "events": {last - 3}}}\n\n'
        f'id: {last}\nevent: end\ndata: {{"seq": {last}}}\n\n'
    )


def test_an_empty_state_dir_lists_no_runs(tmp_path: Path) -> None:
    with serving(tmp_path / "nothing-yet") as running:
        status, data = get(running, "/api/runs")
        assert status == 200 and data["runs"] == [] and "no planrun state" in data["message"]


def test_planrun_ui_command_serves_until_interrupted(sample_run: RunResult) -> None:
    ui = subprocess.Popen(
        [sys.executable, "-m", "planrun", "ui", "--port", "0", "--state-dir", str(sample_run.state_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
        env={k: v for k, v in os.environ.items() if k != "PLANRUN_UI_TOKEN"},
    )  # fmt: skip
    try:
        assert ui.stdout is not None
        line = ui.stdout.readline()
        assert line.startswith("planrun ui: serving ") and "http://127.0.0.1:" in line
        url = line.split(" at ")[1].split()[0]
        base, token = url.split("/?token=")
        assert len(token) == 43  # secrets.token_urlsafe(32)
        # The printed URL logs the browser in: a cookie, then the page without the token.
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        with browser.open(url, timeout=30) as response:  # a page that goes on to `/`
            assert 'http-equiv="refresh" content="0;url=/"' in response.read().decode()
        with browser.open(base + "/", timeout=30) as response:
            assert response.status == 200 and "class RunView" in response.read().decode()
        request = urllib.request.Request(base + "/api/runs")
        request.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(request, timeout=30) as response:
            assert json.load(response)["runs"][0]["run_id"] == sample_run.run_id
    finally:
        ui.send_signal(signal.SIGINT)
        out, err = ui.communicate(timeout=30)
    assert ui.returncode == 0
    assert (line + out + err).count(token) == 1  # printed once, logged nowhere else


def test_a_busy_port_is_a_clear_error(server: UiServer, sample_run: RunResult) -> None:
    port = str(server.server_address[1])
    result = subprocess.run(
        [sys.executable, "-m", "planrun", "ui", "--port", port, "--state-dir", str(sample_run.state_dir)],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.startswith(f"planrun: cannot listen on 127.0.0.1:{port}: ")
