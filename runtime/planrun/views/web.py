"""`planrun ui`: a local web page over the state dir, live while planrun runs elsewhere.

Standard library only (http.server's ThreadingHTTPServer): the page is a single HTML file with
the same renderer as the report, the API is a few JSON/SSE routes over `model` (and the
actions of views/actions.py, which start or signal planrun processes), and the server
must only ever talk to this machine's browser, so a framework would add dependencies and
attack surface without adding anything we use. See docs/views.md.

Every request passes one gate first (webauth.Access.check: the Host, the token, CSRF for any
method but GET), and webserver.py bounds connections, request heads and their time.

GET routes (POST: the actions below; other methods get 405 once through the gate):
  /                                       the page (front page; `#/runs/ID` shows a run)
  /api/runs                               recent runs, and the live `planrun watch` watchers
  /api/runs/RUN                           the run's snapshot (what the report embeds)
  /api/runs/RUN/events?after=SEQ          server-sent events: `change` when new events are
                                          recorded, `end` once the run is over
  /api/runs/RUN/logs/STEP?attempt=N&stream=stdout|stderr&offset=BYTES
                                          a chunk of an attempt's log from `offset`
  /api/grid?plan=&status=&since=&until=   the front page's history grid (views/grid.py)
  /api/plans                              the plans the UI may start, with their params
  /api/runs/RUN/actions                   who did what to the run from the UI (ui_action)
POST routes (the actions, views/actions.py): /api/start, /api/runs/RUN/cancel,
  /api/runs/RUN/resume, /api/runs/RUN/steps/STEP/rerun
"""

from __future__ import annotations

import html
import json
import re
import sys
import threading
from collections.abc import Callable
from http import HTTPStatus
from typing import Any, TextIO
from urllib.parse import parse_qs, unquote, urlsplit

from planrun.safefs import UnsafeFileError, read_slice
from planrun.store import SQLITE_MAX_INT, NoStateError, Reader, StoreError
from planrun.views.actions import ActionError, Actions, dispatch, read_body, recorded_actions
from planrun.views.grid import FilterError, Filters, history
from planrun.views.inspect import open_state
from planrun.views.model import (
    Stream,
    ViewError,
    find_attempt,
    log_path,
    run_dict,
    run_duration,
    snapshot,
)
from planrun.views.report import asset, render_page
from planrun.views.webauth import TOKEN_QUERY, Access, chosen_token
from planrun.views.webserver import DEFAULT_LIMITS, BoundedHandler, BoundedServer, Limits
from planrun.watch_state import read_watchers

HOST = "127.0.0.1"  # never another interface: the page shows commands, logs and paths
SSE_POLL_SEC = 0.25
SSE_KEEPALIVE_SEC = 15.0
LOG_CHUNK = 256 * 1024
# Query numbers are counts and byte offsets: plain decimal digits, within SQLite's INTEGER.
_COUNT = re.compile(r"[0-9]{1,19}")


class UiServer(BoundedServer):
    def __init__(
        self,
        state_dir: str,
        port: int,
        token: str | None = None,
        limits: Limits = DEFAULT_LIMITS,
        plan_files: tuple[str, ...] = (),
    ) -> None:
        chosen = chosen_token(token)  # a bad one is an error before the port is taken
        self.state_dir = state_dir
        self.actions = Actions(state_dir, plan_files)  # so is a plan file that does not compile
        self.stopping = threading.Event()
        super().__init__((HOST, port), _Handler, limits)
        self.access = Access(chosen, self.server_address[1])
        self.page = _page(self.access.csrf)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server_address[1]}/"

    @property
    def login_url(self) -> str:
        """The URL to open, printed once: the only place the token is shown."""
        return f"{self.url}?{TOKEN_QUERY}={self.access.token}"

    def shutdown(self) -> None:
        self.stopping.set()  # ends the SSE loops
        super().shutdown()


class _NotFound(Exception):
    pass


class _BadRequest(Exception):
    pass


class _Handler(BoundedHandler):
    server: UiServer
    server_version = "planrun-ui"

    def do_GET(self) -> None:
        self._dispatch()

    # Mutating routes do not exist yet; these methods pass the same gate (token, then CSRF),
    # so the first POST route is protected by adding it to _route.
    def do_POST(self) -> None:
        self._dispatch()

    do_PUT = do_PATCH = do_DELETE = do_POST

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        try:
            verdict = self.server.access.check(self.command, url.path, query, self.headers)
            if verdict.log_in_to:
                self._log_in(verdict.log_in_to)
            elif not verdict.allowed:
                self._send_json({"error": verdict.error}, verdict.status)
            else:
                parts = [unquote(p) for p in url.path.split("/") if p]
                self._route(parts, {k: v[-1] for k, v in query.items()})
        except (StoreError, _NotFound) as exc:
            self._fail(HTTPStatus.NOT_FOUND, str(exc))
        except _BadRequest as exc:
            self._fail(HTTPStatus.BAD_REQUEST, str(exc))
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True  # the browser went away or stopped reading
        except Exception as exc:  # a bug: one line for the client and one on stderr
            where = f"{self.command} {url.path}"
            sys.stderr.write(f"planrun ui: {where}: {type(exc).__name__}: {exc}\n")
            self._fail(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error")

    def _fail(self, status: HTTPStatus, message: str) -> None:
        if self.responded:  # inside an answer (an event stream): all we can do is end it
            self.close_connection = True
        else:
            self._send_json({"error": message}, status)

    def _log_in(self, location: str) -> None:
        """The token came in the URL: keep it in a cookie and drop it from the address bar.

        The page itself goes on to `location` (a refresh, which replaces the entry with the
        token in the tab's history), not an HTTP redirect: after a redirect the browser treats
        the next page as reached from wherever the link was, and withholds a SameSite=Strict
        cookie from it when that is another site (a link in a web chat or a notebook).
        """
        target = html.escape(location)
        body = _LOGIN_PAGE.format(target=target).encode()
        self.send_response(HTTPStatus.OK)
        self.send_header("Set-Cookie", self.server.access.cookie())
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Security-Policy", "default-src 'none'")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _route(self, parts: list[str], query: dict[str, str]) -> None:
        if self.command == "POST" and self._act(parts):
            return
        if self.command != "GET":
            refusal = {"error": f"{self.command} is not allowed here"}
            self._send_json(refusal, HTTPStatus.METHOD_NOT_ALLOWED)
        elif not parts:
            self._send(self.server.page, "text/html")
        elif parts == ["api", "runs"]:
            self._send_json(self._runs())
        elif parts == ["api", "grid"]:
            self._send_json(self._grid(query))
        elif parts == ["api", "plans"]:
            self._send_json({"plans": [p.to_json() for p in self.server.actions.plans()]})
        elif len(parts) == 3 and parts[:2] == ["api", "runs"]:
            self._send_json(self._read(lambda reader: snapshot(reader, parts[2])))
        elif len(parts) == 4 and parts[:2] == ["api", "runs"] and parts[3] == "actions":
            self._send_json(self._read(lambda reader: recorded_actions(reader, parts[2])))
        elif len(parts) == 4 and parts[:2] == ["api", "runs"] and parts[3] == "events":
            after = query.get("after") or self.headers.get("Last-Event-ID") or "0"
            self._stream_events(parts[2], _int(after, "after"))
        elif len(parts) == 5 and parts[:2] == ["api", "runs"] and parts[3] == "logs":
            run_ref, step_id = parts[2], parts[4]
            self._send_json(self._read(lambda reader: _log_chunk(reader, run_ref, step_id, query)))
        else:
            raise _NotFound(f"no such page: /{'/'.join(parts)}")

    def _act(self, parts: list[str]) -> bool:
        """A POST route (an action, behind the gate's token and CSRF checks): True if it was one."""
        remote = f"{self.client_address[0]}:{self.client_address[1]}"
        try:
            body = read_body(self.headers, self.rfile)
            answer = dispatch(self.server.actions, parts, body, remote)
        except ActionError as exc:
            if exc.status == HTTPStatus.REQUEST_ENTITY_TOO_LARGE:
                self.close_connection = True  # its body was not read
            self._send_json({"error": str(exc)}, exc.status)
            return True
        if answer is None:
            return False
        self._send_json(answer, HTTPStatus.ACCEPTED)
        return True

    def _grid(self, query: dict[str, str]) -> dict[str, Any]:
        try:
            filters = Filters.parse(query)
        except FilterError as exc:
            raise _BadRequest(str(exc)) from None
        try:
            with open_state(self.server.state_dir) as reader:
                return history(reader, filters)
        except NoStateError as exc:
            return {"plans": [], "plan_ids": [], "message": str(exc)}

    def _runs(self) -> dict[str, Any]:
        watchers = read_watchers(self.server.state_dir)  # `planrun watch` processes, live
        try:
            with open_state(self.server.state_dir) as reader:
                runs = reader.runs(50)
                watched = reader.watch_info([r.run_id for r in runs])
        except NoStateError as exc:
            return {"runs": [], "message": str(exc), "watchers": watchers}
        listed = [{**run_dict(r), "elapsed_sec": run_duration(r)} for r in runs]
        for run in listed:
            run["watch"] = watched.get(run["run_id"])
        return {"runs": listed, "watchers": watchers}

    def _read(self, query: Callable[[Reader], dict[str, Any]]) -> dict[str, Any]:
        # One read-only connection per request: sqlite3 connections belong to their thread.
        with open_state(self.server.state_dir) as reader:
            return query(reader)

    def _stream_events(self, run_ref: str, after: int) -> None:
        with open_state(self.server.state_dir) as reader:
            run_id = reader.resolve(run_ref)
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            idle = 0.0
            while not self.server.stopping.is_set():
                events = reader.events(run_id, after)
                if events:
                    after = events[-1].seq
                    self._sse("change", {"seq": after, "events": len(events)}, after)
                    idle = 0.0
                elif reader.run(run_id).status != "running":
                    self._sse("end", {"seq": after}, after)
                    return
                elif idle >= SSE_KEEPALIVE_SEC:
                    self.wfile.write(b": keep-alive\n\n")
                    self.wfile.flush()
                    idle = 0.0
                self.server.stopping.wait(SSE_POLL_SEC)
                idle += SSE_POLL_SEC

    def _sse(self, event: str, data: dict[str, Any], seq: int) -> None:
        self.wfile.write(f"id: {seq}\nevent: {event}\ndata: {json.dumps(data)}\n\n".encode())
        self.wfile.flush()

    def _send_json(self, data: Any, status: HTTPStatus = HTTPStatus.OK) -> None:
        self._send(json.dumps(data).encode(), "application/json", status)

    def _send(self, body: bytes, kind: str, status: HTTPStatus = HTTPStatus.OK) -> None:
        self.send_response(status)
        self.send_header("Content-Type", f"{kind}; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _int(text: str, name: str, least: int = 0) -> int:
    if not _COUNT.fullmatch(text) or not least <= int(text) <= SQLITE_MAX_INT:
        raise _BadRequest(f"{name} must be an integer from {least}, not {text[:40]!r}")
    return int(text)


def _log_chunk(reader: Reader, run_ref: str, step_id: str, query: dict[str, str]) -> dict[str, Any]:
    """Up to LOG_CHUNK bytes of an attempt's log from `offset`; `complete` once it can't grow."""
    run_id = reader.resolve(run_ref)
    number = _int(query["attempt"], "attempt", 1) if "attempt" in query else None
    if query.get("stream", "stdout") not in ("stdout", "stderr"):
        raise _BadRequest("stream must be stdout or stderr")
    stream: Stream = "stderr" if query.get("stream") == "stderr" else "stdout"
    offset = _int(query.get("offset", "0"), "offset")
    attempt = find_attempt(reader, run_id, step_id, number)
    path = log_path(reader.state_dir, run_id, attempt, stream)
    try:
        data, size = read_slice(path, max(offset, 0), LOG_CHUNK)
    except UnsafeFileError as exc:
        raise _NotFound(f"cannot show {path}: {exc.strerror}") from None
    data = _whole_characters(data)
    end = min(offset, size) + len(data)
    closed = attempt.finished_at is not None or reader.run(run_id).status != "running"
    return {
        "step_id": step_id,
        "attempt": attempt.attempt,
        "stream": stream,
        "text": data.decode("utf-8", errors="replace"),
        "offset": end,
        "size": size,
        "complete": closed and end >= size,
    }


def _whole_characters(data: bytes) -> bytes:
    """Drop a UTF-8 sequence cut at the end of a chunk; the next chunk starts with it."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte < 0x80:
            return data
        if byte >= 0xC0:  # the lead byte: is its sequence complete?
            need = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return data if back >= need else data[:-back]
    return data


_LOGIN_PAGE = (
    '<!DOCTYPE html>\n<meta charset="utf-8"><meta http-equiv="refresh" content="0;url={target}">'
    '<title>planrun ui</title><a href="{target}">planrun ui</a>\n'
)


def _page(csrf: str) -> bytes:
    # The CSRF token is in the page (which only a token holder can load) for its requests
    # that change something to send back in the X-Planrun-CSRF header (webauth.py).
    data = {"csrf": csrf}
    scripts = ("render.js", "front.js", "ui.js")
    return render_page(asset("ui.html"), "planrun ui", data, scripts).encode()


def make_server(
    state_dir: str,
    port: int = 0,
    token: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
    plan_files: tuple[str, ...] = (),
) -> UiServer:
    return UiServer(state_dir, port, token, limits, plan_files)


def serve(
    state_dir: str,
    port: int,
    out: TextIO = sys.stdout,
    token: str | None = None,
    plan_files: tuple[str, ...] = (),
) -> int:
    """Serve until Ctrl-C; `token` (from $PLANRUN_UI_TOKEN) or a fresh one guards every route."""
    try:
        server = make_server(state_dir, port, token, plan_files=plan_files)
    except OSError as exc:
        raise ViewError(f"cannot listen on {HOST}:{port}: {exc.strerror or exc}") from None
    out.write(f"planrun ui: serving {server.state_dir} at {server.login_url} (Ctrl-C to stop)\n")
    out.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stopping.set()
        server.server_close()
        left = server.actions.still_running()
        if left:  # they go on by design (views/actions.py); say how to find them
            pids = ", ".join(str(pid) for pid in left)
            out.write(f"planrun ui: runs started here go on (planrun pid {pids}): `planrun runs`\n")
    return 0
