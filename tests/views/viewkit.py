"""Shared by the view tests: sample plans, real planrun processes, waiting on conditions."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

from support import write_plan

from planrun.views.web import HOST, UiServer, make_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def sample_plan() -> dict[str, Any]:
    """Every outcome a view draws: success, a retry that then succeeds, a failure with its
    stderr (tolerated, so its dependent still runs), a skip."""
    return {
        "plan_id": "SAMPLE",
        "description": "a plan with one of everything",
        "globals": {"default_timeout_sec": 30, "max_concurrency": 2},
        "steps": [
            {
                "id": "lint",
                "command": "sh",
                "args": ["-c", "echo linting; sleep 0.3; echo lint ok"],
            },
            {
                "id": "flaky",
                "command": "sh",
                "args": [
                    "-c",
                    'echo "try $PLAN_ATTEMPT"; sleep 0.1; test "$PLAN_ATTEMPT" -ge 2 || { echo not yet >&2; exit 1; }',
                ],
                "retries": 2,
                "retry_delay_sec": 0.1,
            },
            {
                "id": "build",
                "command": "sh",
                "args": ["-c", "echo building; sleep 0.2"],
                "depends_on": ["lint", "flaky"],
            },
            {
                "id": "test",
                "command": "sh",
                "args": [
                    "-c",
                    "echo collected 3 items; sleep 0.2; echo 'FAIL: test_parse' >&2; echo 'AssertionError: 1 != 2' >&2; exit 3",
                ],
                "depends_on": ["build"],
                "on_failure": "continue",
            },
            {"id": "package", "command": "true", "depends_on": ["test"]},
            {
                "id": "docs",
                "command": "true",
                "depends_on": ["lint"],
                "condition": "steps.lint.exit_code != 0",
            },
        ],
    }


def grouped_plan() -> dict[str, Any]:
    """A matrix of 5 instances (3 × 2, one excluded) of which `test-3.12-2` fails, and a fan-out
    over 3 items of which `each[1]` fails; both tolerated (`continue`), so the run succeeds."""
    write = (
        "import os; open(os.environ['PLAN_OUTPUT'], 'a').write('tasks=[\"x\", \"bad\", \"z\"]\\n')"
    )
    return {
        "plan_id": "GROUPED",
        "globals": {"default_timeout_sec": 30, "max_concurrency": 4},
        "steps": [
            {"id": "list", "command": sys.executable, "args": ["-c", write], "provides": ["tasks"]},
            {
                "id": "each",
                "for_each": "${{ steps.list.outputs.tasks }}",
                "max_items": 5,
                "depends_on": ["list"],
                "command": "sh",
                "args": ["-c", 'test "$1" != bad', "sh", "${{ item }}"],
                "on_failure": "continue",
            },
            {
                "id": "test",
                "matrix": {
                    "python": ["3.10", "3.11", "3.12"],
                    "shard": [1, 2],
                    "exclude": [{"python": "3.10", "shard": 2}],
                },
                "fail_fast": False,
                "command": "sh",
                "args": ["-c", "test ${{ matrix.python }}-${{ matrix.shard }} != 3.12-2"],
                "on_failure": "continue",
            },
            {"id": "done", "command": "true", "depends_on": ["each", "test"]},
        ],
    }


def gated_plan(gate: Path) -> dict[str, Any]:
    """`wait` runs until the test creates `gate` (no sleep-based timing), printing as it goes;
    `boom` fails at once with a recognisable stderr."""
    script = f'echo waiting for gate; while [ ! -e "{gate}" ]; do sleep 0.05; done; echo gate open'
    return {
        "plan_id": "GATED",
        "globals": {"default_timeout_sec": 120, "max_concurrency": 2},
        "steps": [
            {"id": "wait", "command": "sh", "args": ["-c", script]},
            {
                "id": "boom",
                "command": "sh",
                "args": ["-c", "echo 'kaboom: the disk is lava' >&2; exit 4"],
                "on_failure": "continue",
            },
            {"id": "after", "command": "true", "depends_on": ["wait"]},
        ],
    }


def start_planrun(tmp_path: Path, plan: dict[str, Any], *args: str) -> subprocess.Popen[str]:
    """A real `planrun PLAN` in a child process, state in tmp_path/state."""
    path = write_plan(tmp_path, plan)
    return subprocess.Popen(
        [sys.executable, "-m", "planrun", str(path), "--state-dir", str(tmp_path / "state"), *args],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )


def latest_run(state_dir: Path) -> str | None:
    from planrun.store import open_reader

    with open_reader(state_dir) as reader:
        return reader.latest_run_id()


def step_status(state_dir: Path, step_id: str) -> str | None:
    from planrun.store import open_reader

    with open_reader(state_dir) as reader:
        run_id = reader.latest_run_id()
        if run_id is None:
            return None
        return {s.step_id: s.status for s in reader.steps(run_id)}.get(step_id)


@contextmanager
def serving(state_dir: Path, **options: Any) -> Iterator[UiServer]:
    """`planrun ui`'s server on a free port in a thread, shut down and closed afterwards;
    a planrun it launched and that still runs is killed, so a failed test leaves none behind."""
    server = make_server(str(state_dir), 0, **options)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        kill_launched(server)
        server.shutdown()
        server.server_close()
        thread.join(10)


def kill_launched(server: UiServer) -> None:
    """Kill the process group of each planrun the UI started that has not ended."""
    for pid in server.actions.still_running():
        # The UI's reaper thread may reap it between the check and the kill.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def bearer(server: UiServer) -> dict[str, str]:
    """The header an API client sends: the printed token."""
    return {"Authorization": f"Bearer {server.access.token}"}


@dataclass
class Answer:
    status: int
    headers: Message
    body: bytes

    @property
    def json(self) -> Any:
        assert self.headers["Content-Type"] == "application/json; charset=utf-8"
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode()


def cookie(server: UiServer) -> dict[str, str]:
    """The header a browser sends once it has logged in with the printed URL."""
    return {"Cookie": f"planrun-ui-{server.server_address[1]}={server.access.token}"}


def call(
    server: UiServer, path: str, method: str = "GET", headers: dict[str, str] | None = None
) -> Answer:
    """One request, exactly as given (no redirect followed, no header added but Host)."""
    connection = http.client.HTTPConnection(HOST, server.server_address[1], timeout=30)
    try:
        sent = {"Host": f"{HOST}:{server.server_address[1]}", **(headers or {})}
        connection.request(method, path, headers=sent)
        response = connection.getresponse()
        return Answer(response.status, response.msg, response.read())
    finally:
        connection.close()
