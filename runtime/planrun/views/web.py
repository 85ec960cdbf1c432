"""`planrun ui`: a local web page over the state dir, live while planrun runs elsewhere.

Standard library only (http.server's ThreadingHTTPServer): the page is a single HTML file with
the same renderer as the report, the API is four JSON/SSE routes over `model`, and the server
must only ever talk to this machine's browser, so a framework would add dependencies and
attack surface without adding anything we use. See docs/views.md.

Routes (GET only):
  /                                       the page (runs list; `#/runs/ID` shows a run)
  /api/runs                               recent runs, and the live `planrun watch` watchers
  /api/runs/RUN                           the run's snapshot (what the report embeds)
  /api/runs/RUN/events?after=SEQ          server-sent events: `change` when new events are
                                          recorded, `end` once the run is over
  /api/runs/RUN/logs/STEP?attempt=N&stream=stdout|stderr&offset=BYTES
                                          a chunk of an attempt's log from `offset`
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TextIO
from urllib.parse import parse_qs, unquote, urlsplit

from planrun.store import NoStateError, Reader, StoreError
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
from planrun.watch_state import read_watchers

HOST = "127.0.0.1"  # never another interface: the page shows commands, logs and paths
SSE_POLL_SEC = 0.25
SSE_KEEPALIVE_SEC = 15.0
LOG_CHUNK = 256 * 1024


class UiServer(ThreadingHTTPServer):
    daemon_threads = True  # SSE handlers block; they must not keep the process alive

    def __init__(self, state_dir: str, port: int) -> None:
        self.state_dir = state_dir
        self.stopping = threading.Event()
        super().__init__((HOST, port), _Handler)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server_address[1]}/"

    def shutdown(self) -> None:
        self.stopping.set()  # ends the SSE loops
        super().shutdown()


class _NotFound(Exception):
    pass


class _Handler(BaseHTTPRequestHandler):
    server: UiServer
    server_version = "planrun-ui"

    def do_GET(self) -> None:
        if not self._host_allowed():
            self._send_json({"error": "forbidden host"}, HTTPStatus.FORBIDDEN)
            return
        url = urlsplit(self.path)
        parts = [unquote(p) for p in url.path.split("/") if p]
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        try:
            self._route(parts, query)
        except (StoreError, _NotFound) as exc:
            self._send_json({"error": str(exc)}, HTTPStatus.NOT_FOUND)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the browser went away (closed tab, EventSource reconnect)

    def _route(self, parts: list[str], query: dict[str, str]) -> None:
        if not parts:
            self._send(_page(), "text/html")
        elif parts == ["api", "runs"]:
            self._send_json(self._runs())
        elif len(parts) == 3 and parts[:2] == ["api", "runs"]:
            self._send_json(self._read(lambda reader: snapshot(reader, parts[2])))
        elif len(parts) == 4 and parts[:2] == ["api", "runs"] and parts[3] == "events":
            after = query.get("after") or self.headers.get("Last-Event-ID") or "0"
            self._stream_events(parts[2], _int(after, "after"))
        elif len(parts) == 5 and parts[:2] == ["api", "runs"] and parts[3] == "logs":
            run_ref, step_id = parts[2], parts[4]
            self._send_json(self._read(lambda reader: _log_chunk(reader, run_ref, step_id, query)))
        else:
            raise _NotFound(f"no such page: {self.path}")

    def _host_allowed(self) -> bool:
        """Refuse other Host names, so a web page cannot reach us through DNS rebinding."""
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0]
        return host in (HOST, "localhost")

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
            self.send_header("Cache-Control", "no-cache")
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
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per poll would bury the URL; errors reach the page as JSON


def _int(text: str, name: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise _NotFound(f"{name} must be an integer, not {text!r}") from None


def _log_chunk(reader: Reader, run_ref: str, step_id: str, query: dict[str, str]) -> dict[str, Any]:
    """Up to LOG_CHUNK bytes of an attempt's log from `offset`; `complete` once it can't grow."""
    run_id = reader.resolve(run_ref)
    number = _int(query["attempt"], "attempt") if query.get("attempt") else None
    stream: Stream = "stderr" if query.get("stream") == "stderr" else "stdout"
    offset = _int(query.get("offset", "0"), "offset")
    attempt = find_attempt(reader, run_id, step_id, number)
    path = log_path(reader.state_dir, run_id, attempt, stream)
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, 2)
            handle.seek(min(offset, size))
            data = handle.read(LOG_CHUNK)
    except FileNotFoundError:
        size, data = 0, b""
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


def _page() -> bytes:
    return render_page(asset("ui.html"), "planrun ui", {}, ("render.js", "ui.js")).encode()


def make_server(state_dir: str, port: int = 0) -> UiServer:
    return UiServer(state_dir, port)


def serve(state_dir: str, port: int, out: TextIO = sys.stdout) -> int:
    try:
        server = make_server(state_dir, port)
    except OSError as exc:
        raise ViewError(f"cannot listen on {HOST}:{port}: {exc.strerror or exc}") from None
    out.write(f"planrun ui: serving {server.state_dir} at {server.url} (Ctrl-C to stop)\n")
    out.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stopping.set()
        server.server_close()
    return 0
