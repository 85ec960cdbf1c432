"""Who can read `planrun ui`: the token, its cookie, Bearer, the Host check, CSRF (docs/views.md).

Every route is asked as another local user would (no token, a wrong one, a stale cookie) and must
answer 403 with a short body that holds nothing of the state dir.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from support import REPO, RunResult
from viewkit import Answer, call, cookie, serving

from planrun.views.web import UiServer
from planrun.views.webauth import NO_TOKEN

FORBIDDEN = {"error": NO_TOKEN}


@pytest.fixture
def server(sample_run: RunResult) -> Iterator[UiServer]:
    with serving(sample_run.state_dir) as running:
        yield running


def routes(run_id: str) -> list[str]:
    """Every route, and paths that are none (a 404 would still say the token was good)."""
    return [
        "/",
        "/api/runs",
        f"/api/runs/{run_id}",
        f"/api/runs/{run_id}/events?after=0",
        f"/api/runs/{run_id}/logs/test?stream=stderr",
        f"/api/runs/{run_id}/logs/test?offset=-1",
        "/api/runs/nope",
        "/etc/passwd",
    ]


def assert_refused(
    answer: Answer, sample_run: RunResult, error: dict[str, str] = FORBIDDEN
) -> None:
    assert answer.status == 403 and answer.json == error
    assert "Set-Cookie" not in answer.headers
    for secret in (sample_run.run_id, sample_run.run_id[:8], "FAIL", "SAMPLE", "planrun"):
        assert secret not in answer.text.replace("planrun ui", "")


def test_every_route_refuses_a_request_without_the_token(
    server: UiServer, sample_run: RunResult
) -> None:
    for path in routes(sample_run.run_id):
        assert_refused(call(server, path), sample_run)


def test_methods_the_server_does_not_speak_reveal_nothing(
    server: UiServer, sample_run: RunResult
) -> None:
    for method in ("OPTIONS", "TRACE", "PROPFIND"):  # no CORS preflight is ever granted
        for headers in ({}, cookie(server)):
            answer = call(server, f"/api/runs/{sample_run.run_id}", method, headers)
            assert answer.status == 501
            assert answer.json == {"error": f"Unsupported method ('{method}')"}
            assert "Access-Control-Allow-Origin" not in answer.headers


def test_every_route_refuses_a_wrong_token_however_it_comes(
    server: UiServer, sample_run: RunResult
) -> None:
    port, token = server.server_address[1], server.access.token
    wrong = [
        token[:-1] + ("A" if token[-1] != "A" else "B"),  # one character off
        token[:-1],  # a prefix
        token + "x",
        "",
        "é" + token[1:],  # not ASCII: still a plain refusal
    ]
    for path in routes(sample_run.run_id):
        joiner = "&" if "?" in path else "?"
        for bad in wrong:
            cases: list[tuple[str, dict[str, str]]] = [
                (f"{path}{joiner}token={quote(bad)}", {}),
                (path, {"Cookie": f"planrun-ui-{port}={bad}"}),
                (path, {"Authorization": f"Bearer {bad}"}),
            ]
            for target, headers in cases:
                assert_refused(call(server, target, headers=headers), sample_run)
    # The right token in another server's cookie (another port) is not this server's cookie.
    other = {"Cookie": f"planrun-ui-{port + 1}={token}"}
    assert_refused(call(server, "/api/runs", headers=other), sample_run)
    # A wrong token in the URL is refused even next to a good cookie: a stale link says so.
    stale = call(server, "/?token=stale-token-from-yesterday", headers=cookie(server))
    assert_refused(stale, sample_run)


def login_page(target: str) -> str:
    """What the printed URL answers: the cookie, and a page that goes on to `target`."""
    target = target.replace("&", "&amp;")
    return (
        f'<!DOCTYPE html>\n<meta charset="utf-8"><meta http-equiv="refresh" content="0;url={target}">'
        f'<title>planrun ui</title><a href="{target}">planrun ui</a>\n'
    )


def test_the_token_in_the_url_becomes_a_cookie_and_leaves_the_url(
    server: UiServer, sample_run: RunResult
) -> None:
    port, token = server.server_address[1], server.access.token
    assert server.login_url == f"http://127.0.0.1:{port}/?token={token}"
    login = call(server, f"/?token={token}")
    assert login.status == 200 and login.text == login_page("/")
    assert login.headers["Set-Cookie"] == (
        f"planrun-ui-{port}={token}; HttpOnly; SameSite=Strict; Path=/"
    )
    assert login.headers["Content-Security-Policy"] == "default-src 'none'"
    assert login.headers["Referrer-Policy"] == "no-referrer"
    # Other parameters stay; only the token goes.
    deep = f"/api/runs/{sample_run.run_id}/logs/test?stream=stderr"
    assert call(server, f"{deep}&token={token}").text == login_page(deep)
    # Never to another site: `//evil.example/x` would be.
    elsewhere = call(server, f"//evil.example/x?token={token}")
    assert elsewhere.text == login_page("/evil.example/x")

    # From then on the cookie alone opens every route.
    page = call(server, "/", headers=cookie(server))
    assert page.status == 200 and page.text.startswith("<!DOCTYPE html>")
    assert token not in page.text  # the page never shows the token
    runs = call(server, "/api/runs", headers=cookie(server))
    assert runs.status == 200 and runs.json["runs"][0]["run_id"] == sample_run.run_id
    log = call(server, deep, headers=cookie(server))
    assert log.status == 200 and log.json["text"].startswith("FAIL: test_parse")
    events = call(server, f"/api/runs/{sample_run.run_id}/events", headers=cookie(server))
    assert events.status == 200 and "event: end" in events.text


def test_a_bearer_token_serves_scripts(server: UiServer, sample_run: RunResult) -> None:
    bearer = {"Authorization": f"Bearer {server.access.token}"}
    answer = call(server, f"/api/runs/{sample_run.run_id}", headers=bearer)
    assert answer.status == 200 and answer.json["run"]["run_id"] == sample_run.run_id
    assert "Set-Cookie" not in answer.headers


def test_the_host_check_holds_with_the_token(server: UiServer, sample_run: RunResult) -> None:
    # A page on evil.example resolving to 127.0.0.1 (DNS rebinding) gets nothing, token or not.
    bearer = {"Authorization": f"Bearer {server.access.token}"}
    for headers in ({}, cookie(server), bearer):
        for host in ("evil.example", "evil.example:8765", "127.0.0.1.evil.example", ""):
            answer = call(server, "/api/runs", headers={**headers, "Host": host})
            assert_refused(answer, sample_run, {"error": "forbidden host"})
        login = call(server, f"/?token={server.access.token}", headers={"Host": "evil.example"})
        assert_refused(login, sample_run, {"error": "forbidden host"})
    localhost = {**bearer, "Host": f"localhost:{server.server_address[1]}"}
    assert call(server, "/api/runs", headers=localhost).status == 200


def test_every_answer_forbids_framing_sniffing_and_caching(server: UiServer) -> None:
    for answer in (call(server, "/"), call(server, "/", headers=cookie(server))):
        assert answer.headers["X-Frame-Options"] == "DENY"
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["Cache-Control"] == "no-store"
        assert answer.headers["Referrer-Policy"] == "no-referrer"


def csrf_token(server: UiServer) -> str:
    """What the page's script reads: the CSRF token embedded in the page."""
    page = call(server, "/", headers=cookie(server)).text
    data = page.split('<script type="application/json" id="ui-data">')[1].split("</script>")[0]
    token: str = json.loads(data)["csrf"]
    return token


def test_requests_that_change_something_need_the_page_s_csrf_token(
    server: UiServer, sample_run: RunResult
) -> None:
    """No route changes anything yet; the gate is there for the first one (405 = let through)."""
    origin = {"Origin": f"http://127.0.0.1:{server.server_address[1]}"}
    csrf = {"X-Planrun-CSRF": csrf_token(server)}
    assert csrf["X-Planrun-CSRF"] not in (server.access.token, "")
    refused = [
        ({}, FORBIDDEN),  # no token at all
        (cookie(server), {"error": "forbidden: cross-origin request"}),  # no Origin
        ({**cookie(server), **csrf, "Origin": "http://evil.example"}, None),
        ({**cookie(server), **csrf, "Origin": "null"}, None),
        ({**cookie(server), **origin}, {"error": "forbidden: missing or wrong X-Planrun-CSRF header"}),
        ({**cookie(server), **origin, "X-Planrun-CSRF": server.access.token}, None),
    ]  # fmt: skip
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        for headers, error in refused:
            answer = call(server, f"/api/runs/{sample_run.run_id}", method, headers)
            assert answer.status == 403, (method, headers)
            assert_refused(answer, sample_run, error or answer.json)
        # The query token is for opening the page (GET) only: it logs nothing in here.
        answer = call(server, f"/?token={server.access.token}", method, {**origin, **csrf})
        assert_refused(answer, sample_run)
        # Through the gate: the page's own request, or a script with its Bearer token.
        for headers in ({**cookie(server), **origin, **csrf}, {"Authorization": f"Bearer {server.access.token}"}):  # fmt: skip
            answer = call(server, f"/api/runs/{sample_run.run_id}", method, headers)
            assert answer.status == 405
            assert answer.json == {"error": f"{method} is not allowed here"}


def test_each_server_has_its_own_random_token(sample_run: RunResult) -> None:
    with serving(sample_run.state_dir) as one, serving(sample_run.state_dir) as two:
        assert one.access.token != two.access.token and len(one.access.token) == 43
        assert one.access.csrf != two.access.csrf
        assert call(two, "/api/runs", headers=cookie(one)).status == 403


def test_planrun_ui_token_sets_the_token_for_scripts(sample_run: RunResult) -> None:
    token = "a-token-for-my-script_0123"
    ui = subprocess.Popen(
        [sys.executable, "-m", "planrun", "ui", "--port", "0", "--state-dir", str(sample_run.state_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
        env={**os.environ, "PLANRUN_UI_TOKEN": token},
    )  # fmt: skip
    try:
        assert ui.stdout is not None
        line = ui.stdout.readline()
        assert line.endswith(f"/?token={token} (Ctrl-C to stop)\n")
    finally:
        ui.terminate()
        ui.communicate(timeout=30)


@pytest.mark.parametrize(
    "token", ["short", "x" * 15, "has space in it 0123456", "ünïcödé-tokens-aaaa"]
)
def test_a_weak_or_unsafe_planrun_ui_token_is_refused(sample_run: RunResult, token: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "planrun", "ui", "--port", "0", "--state-dir", str(sample_run.state_dir)],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        env={**os.environ, "PLANRUN_UI_TOKEN": token},
    )  # fmt: skip
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        "planrun: PLANRUN_UI_TOKEN must be 16 to 256 characters of A-Z, a-z, 0-9, _ and -\n"
    )


def shown_ui_commands() -> list[tuple[str, list[str]]]:
    """The `planrun ui` console block of docs/views.md: each `$ ` command and what it prints."""
    text = (REPO / "docs" / "views.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```console\n(.*?)```", text, re.DOTALL)
    (block,) = [b for b in blocks if "$ planrun ui --port" in b]
    steps: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            steps[-1][1].append(line)
    return steps


def test_the_ui_commands_in_docs_views_md_run_as_shown(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a free port for the documented 8765, which may be taken
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLANRUN_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    server: subprocess.Popen[str] | None = None
    steps = shown_ui_commands()
    assert [command.split()[0] for command, _ in steps] == ["export", "planrun", "curl", "curl"]
    try:
        for shown, printed in steps:
            command = shown.replace("8765", port)
            expected = [line.replace("8765", port) for line in printed]
            if command.startswith("export "):
                name, _, value = command.removeprefix("export ").partition("=")
                env[name] = value
                assert expected == []
            elif command.endswith(" &"):
                server = subprocess.Popen(
                    ["bash", "-c", f"exec {command.removesuffix(' &')}"],
                    cwd=tmp_path, env=env, text=True,
                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                )  # fmt: skip
                assert server.stdout is not None
                assert [server.stdout.readline().rstrip("\n")] == expected
            else:
                done = subprocess.run(
                    ["bash", "-c", command], cwd=tmp_path, env=env,
                    capture_output=True, text=True, timeout=60,
                )  # fmt: skip
                assert (done.returncode, done.stdout.splitlines()) == (0, expected), command
    finally:
        if server is not None:
            server.terminate()
            server.communicate(timeout=30)
