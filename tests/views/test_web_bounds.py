"""`planrun ui` under hostile clients: bad numbers, huge or slow request heads, too many
connections, a failing handler (docs/views.md). No sleeps: every wait is a socket timeout."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest
from support import RunResult, wait_for
from viewkit import call, cookie, serving

from planrun.views.web import UiServer
from planrun.views.webserver import MAX_HEAD_BYTES, MAX_REQUEST_LINE, Limits


@pytest.fixture
def server(sample_run: RunResult) -> Iterator[UiServer]:
    with serving(sample_run.state_dir) as running:
        yield running


def connect(server: UiServer, timeout: float = 10.0) -> socket.socket:
    client = socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=timeout)
    client.settimeout(timeout)
    return client


def request_bytes(server: UiServer, path: str = "/api/runs") -> bytes:
    port, token = server.server_address[1], server.access.token
    return (
        f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n\r\n"
    ).encode()


def read_all(client: socket.socket) -> bytes:
    """Until the server closes the connection (a socket.timeout fails the test)."""
    chunks = []
    while chunk := client.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def one_line_error(raw: bytes, status: int) -> str:
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0].split(b" ")[1] == str(status).encode(), raw[:200]
    assert b"application/json" in head and body.count(b"\n") == 0
    message: str = json.loads(body)["error"]
    return message


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("offset=-1", "offset must be an integer from 0, not '-1'"),
        ("offset=-99999999999999999999", "offset must be an integer from 0, not '-99999999999999999999'"),
        ("offset=abc", "offset must be an integer from 0, not 'abc'"),
        ("offset=1.5", "offset must be an integer from 0, not '1.5'"),
        ("offset=%2B5", "offset must be an integer from 0, not '+5'"),
        ("offset=1_000", "offset must be an integer from 0, not '1_000'"),
        ("offset=99999999999999999999", "offset must be an integer from 0, not '99999999999999999999'"),
        ("attempt=0", "attempt must be an integer from 1, not '0'"),
        ("attempt=-1", "attempt must be an integer from 1, not '-1'"),
        ("attempt=one", "attempt must be an integer from 1, not 'one'"),
        ("stream=stdin", "stream must be stdout or stderr"),
    ],
)  # fmt: skip
def test_a_bad_number_in_a_query_is_a_400(
    server: UiServer, sample_run: RunResult, query: str, error: str
) -> None:
    answer = call(
        server, f"/api/runs/{sample_run.run_id}/logs/test?{query}", headers=cookie(server)
    )
    assert (answer.status, answer.json) == (400, {"error": error})


def test_a_bad_event_sequence_is_a_400(server: UiServer, sample_run: RunResult) -> None:
    events = f"/api/runs/{sample_run.run_id}/events"
    for headers in ({}, {"Last-Event-ID": "-3"}):
        query = "" if headers else "?after=-3"
        answer = call(server, events + query, headers={**cookie(server), **headers})
        assert (answer.status, answer.json) == (400, {"error": "after must be an integer from 0, not '-3'"})  # fmt: skip


def test_a_failing_handler_is_a_one_line_500_and_the_server_goes_on(
    server: UiServer, sample_run: RunResult
) -> None:
    # Every real way to make a route raise is a bug that gets fixed, so the fault is put in
    # the server's own data: the state dir is not a path.
    state_dir, server.state_dir = server.state_dir, None  # type: ignore[assignment]
    try:
        for path in ("/api/runs", f"/api/runs/{sample_run.run_id}"):
            answer = call(server, path, headers=cookie(server))
            assert (answer.status, answer.json) == (500, {"error": "internal error"})
            assert b"Traceback" not in answer.body
    finally:
        server.state_dir = state_dir
    assert call(server, "/api/runs", headers=cookie(server)).status == 200


def test_a_request_line_or_head_too_long_is_refused(server: UiServer) -> None:
    long_path = "/api/runs?x=" + "a" * MAX_REQUEST_LINE
    client = connect(server)
    client.sendall(request_bytes(server, long_path))
    assert one_line_error(read_all(client), 414) == "Request-URI Too Long"
    # Headers of a legal size each, too many bytes together (http.server alone takes 6 MB).
    header = "X-Filler: " + "b" * 2000 + "\r\n"
    padding = header * (MAX_HEAD_BYTES // len(header) + 1)
    client = connect(server)
    client.sendall(request_bytes(server).replace(b"\r\n\r\n", b"\r\n" + padding.encode() + b"\r\n"))
    assert one_line_error(read_all(client), 431) == "Too many headers"
    client = connect(server)  # and one line longer than all of that
    client.sendall(b"GET /" + b"a" * (MAX_HEAD_BYTES + 10))
    assert one_line_error(read_all(client), 414) == "Request-URI Too Long"
    assert call(server, "/api/runs", headers=cookie(server)).status == 200


def test_one_connection_past_the_limit_gets_a_503_at_once(sample_run: RunResult) -> None:
    limit = 3
    with serving(sample_run.state_dir, limits=Limits(max_connections=limit)) as server:
        idle = [connect(server) for _ in range(limit)]  # connected, sending nothing
        try:
            extra = connect(server)
            extra.sendall(request_bytes(server))
            raw = read_all(extra)  # at once: a 10 s socket timeout would fail the test
            assert one_line_error(raw, 503) == "busy: too many connections, try again"
            assert b"\r\nRetry-After: 1\r\n" in raw and b"\r\nConnection: close\r\n" in raw
            extra.close()
        finally:
            for client in idle:
                client.close()
        # Their slots come back once the server sees them gone.
        answer = wait_for(
            lambda: call(server, "/api/runs", headers=cookie(server)).status == 200,
            what="a free connection slot",
        )
        assert answer


def test_an_idle_connection_is_dropped_after_the_head_timeout(sample_run: RunResult) -> None:
    limits = Limits(max_connections=1, head_timeout_sec=0.5)
    with serving(sample_run.state_dir, limits=limits) as server:
        client = connect(server)
        started = time.monotonic()
        assert read_all(client) == b""  # closed by the server, no answer
        assert 0.4 < time.monotonic() - started < 5
        wait_for(lambda: call(server, "/api/runs", headers=cookie(server)).status == 200)


def test_a_head_trickling_in_byte_by_byte_is_cut_off(sample_run: RunResult) -> None:
    """Slowloris: each byte comes before a per-read timeout would fire; the whole head cannot."""
    limits = Limits(max_connections=1, head_timeout_sec=1.0)
    with serving(sample_run.state_dir, limits=limits) as server:
        client = connect(server, timeout=0.1)
        endless = b"GET / HTTP/1.0\r\n" + b"X-Slow: 1\r\n" * 10_000
        started = time.monotonic()
        closed_after = None
        for byte in endless:
            try:
                client.send(bytes([byte]))
                if client.recv(1) == b"":  # waits 0.1 s for the server to give up
                    closed_after = time.monotonic() - started
                    break
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                closed_after = time.monotonic() - started
                break
            if time.monotonic() - started > 10:
                break
        assert closed_after is not None, "the server kept reading a head for 10 s"
        assert 0.9 < closed_after < 5
        wait_for(lambda: call(server, "/api/runs", headers=cookie(server)).status == 200)
