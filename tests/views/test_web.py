"""`planrun ui`'s server: routes, errors, the Host check, server-sent events, the CLI."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import RunResult

from planrun.views.web import UiServer, make_server


@pytest.fixture
def server(sample_run: RunResult) -> Iterator[UiServer]:
    running = make_server(str(sample_run.state_dir), 0)
    thread = threading.Thread(target=running.serve_forever, daemon=True)
    thread.start()
    yield running
    running.shutdown()
    running.server_close()
    thread.join(10)


def get(server: UiServer, path: str, host: str | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(server.url + path.lstrip("/"))
    if host:
        request.add_header("Host", host)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read().decode()
            kind = response.headers["Content-Type"]
            return response.status, json.loads(body) if kind.startswith(
                "application/json"
            ) else body
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read().decode())


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
    url = f"{server.url}api/runs/{sample_run.run_id}/events?after=3"
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        text = response.read().decode()  # the server closes the stream after `end`
    last = len(sample_run.events)
    assert text == (
        f'id: {last}\nevent: change\ndata: {{"seq": {last}, "events": {last - 3}}}\n\n'
        f'id: {last}\nevent: end\ndata: {{"seq": {last}}}\n\n'
    )


def test_an_empty_state_dir_lists_no_runs(tmp_path: Path) -> None:
    running = make_server(str(tmp_path / "nothing-yet"), 0)
    thread = threading.Thread(target=running.serve_forever, daemon=True)
    thread.start()
    try:
        status, data = get(running, "/api/runs")
        assert status == 200 and data["runs"] == [] and "no planrun state" in data["message"]
    finally:
        running.shutdown()
        running.server_close()


def test_planrun_ui_command_serves_until_interrupted(sample_run: RunResult) -> None:
    ui = subprocess.Popen(
        [sys.executable, "-m", "planrun", "ui", "--port", "0", "--state-dir", str(sample_run.state_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert ui.stdout is not None
        line = ui.stdout.readline()
        assert line.startswith("planrun ui: serving ") and "http://127.0.0.1:" in line
        url = line.split(" at ")[1].split()[0]
        with urllib.request.urlopen(url + "api/runs", timeout=30) as response:
            assert json.load(response)["runs"][0]["run_id"] == sample_run.run_id
    finally:
        ui.send_signal(signal.SIGINT)
        ui.communicate(timeout=30)
    assert ui.returncode == 0


def test_a_busy_port_is_a_clear_error(server: UiServer, sample_run: RunResult) -> None:
    port = str(server.server_address[1])
    result = subprocess.run(
        [sys.executable, "-m", "planrun", "ui", "--port", port, "--state-dir", str(sample_run.state_dir)],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.startswith(f"planrun: cannot listen on 127.0.0.1:{port}: ")
