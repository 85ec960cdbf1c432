"""A ThreadingHTTPServer with bounds, so no client can exhaust `planrun ui` (docs/views.md).

http.server alone gives each connection a thread for as long as the client keeps it open
without sending anything, and reads request heads of up to 100 lines of 64 KiB each. Here:

- at most `max_connections` connections are served at once; one past it is answered
  `503` at once (from the accepting thread, without blocking it) and closed;
- the request line and headers must arrive within `head_timeout_sec` in all, however slowly
  they trickle (slowloris), and be at most MAX_REQUEST_LINE / MAX_HEAD_BYTES long;
- a client that stops reading a response is dropped after WRITE_TIMEOUT_SEC;
- errors are answered with a one-line JSON body, never a traceback.
"""

from __future__ import annotations

import io
import json
import socket
import sys
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from http.client import HTTPException
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from planrun.core.byvalue import ByValue

MAX_REQUEST_LINE = 8 * 1024
MAX_HEAD_BYTES = 64 * 1024  # request line and headers together
WRITE_TIMEOUT_SEC = 30.0
PARKED_SEC = 2.0  # how long a refused connection may take to read its 503
MAX_PARKED = 64
DRAIN_READS = 16  # of 64 KiB, when closing

# Sent to every response: no sniffing, no framing (clickjacking), no Referer leaving the page.
SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
)


@dataclass(frozen=True, eq=False, repr=False)
class Limits(ByValue):
    max_connections: int = 32
    head_timeout_sec: float = 10.0


DEFAULT_LIMITS = Limits()


def _error_body(message: str) -> bytes:
    return json.dumps({"error": message}).encode()


def _busy_response() -> bytes:
    body = _error_body("busy: too many connections, try again")
    head = (
        "HTTP/1.0 503 Service Unavailable\r\n"
        "Content-Type: application/json; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\nRetry-After: 1\r\n"
        + "".join(f"{name}: {value}\r\n" for name, value in SECURITY_HEADERS)
        + "\r\n"
    )
    return head.encode() + body


class BoundedServer(ThreadingHTTPServer):
    daemon_threads = True  # SSE handlers block; they must not keep the process alive
    request_queue_size = 64  # a burst waits in the backlog to be answered (maybe 503)

    def __init__(
        self, address: tuple[str, int], handler: type[BoundedHandler], limits: Limits
    ) -> None:
        self.limits = limits
        self._slots = threading.BoundedSemaphore(limits.max_connections)
        self._parked: list[tuple[float, socket.socket]] = []
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self._refuse(request)
            return
        slot = _Slot(self._slots)
        try:
            thread = threading.Thread(
                target=self._serve_one, args=(request, client_address, slot), daemon=True
            )
            thread.start()
        except BaseException:  # no thread, or an interrupt while it starts: free the slot once
            slot.release()
            raise

    def _serve_one(self, request: Any, client_address: Any, slot: _Slot) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            # Free the slot before the client sees the connection end, so its next one fits.
            slot.release()
            self.shutdown_request(request)

    def shutdown_request(self, request: Any) -> None:
        """Close after reading what the client sent that we did not (a refused head's rest).

        Closing with unread bytes makes the kernel reset the connection, and a reset can
        destroy the answer before the client has read it. Reads only what has arrived, boundedly.
        """
        try:
            request.shutdown(socket.SHUT_WR)
            request.setblocking(False)
            for _ in range(DRAIN_READS):
                if not request.recv(65536):
                    break
        except OSError:
            pass
        self.close_request(request)

    def _refuse(self, request: socket.socket) -> None:
        """503 without blocking the accepting thread, then close a little later.

        Closing at once could reset the connection (unread request bytes) before the client
        read the answer, so the socket is half-closed and parked until it ends or times out.
        """
        try:
            request.setblocking(False)
            request.send(_busy_response())
            request.shutdown(socket.SHUT_WR)
        except OSError:
            request.close()
            return
        self._parked.append((time.monotonic() + PARKED_SEC, request))
        while len(self._parked) > MAX_PARKED:
            self._parked.pop(0)[1].close()

    def service_actions(self) -> None:
        """Between accepts: close parked connections that ended or whose time is up."""
        now = time.monotonic()
        keep = []
        for deadline, parked in self._parked:
            if deadline > now and not _ended(parked):
                keep.append((deadline, parked))
            else:
                parked.close()
        self._parked = keep

    def server_close(self) -> None:
        for _, parked in self._parked:
            parked.close()
        self._parked = []
        super().server_close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        kind, error, _ = sys.exc_info()
        if not isinstance(error, OSError):  # a client going away is not worth a line
            name = kind.__name__ if kind else "error"
            sys.stderr.write(f"planrun ui: {name}: {error}\n")


class _Slot:
    """One connection's hold on the server's slots, given back exactly once: by its thread when
    it ends, or by the accepting thread when no thread could take it (an interrupt may come in
    between the two)."""

    def __init__(self, slots: threading.BoundedSemaphore) -> None:
        self._slots = slots
        self._lock = threading.Lock()
        self._held = True

    def release(self) -> None:
        with self._lock:
            held, self._held = self._held, False
        if held:
            self._slots.release()


def _ended(parked: socket.socket) -> bool:
    """Read what the client sent; True once it closed its side (or the socket failed)."""
    try:
        while parked.recv(4096):
            pass
    except BlockingIOError:
        return False
    except OSError:
        return True
    return True


class _HeadTooLarge(HTTPException):
    pass


class _HeadReader(io.RawIOBase):
    """The socket as read by the handler, with a deadline and a byte budget while armed."""

    def __init__(self, connection: socket.socket) -> None:
        super().__init__()
        self.connection = connection
        self.deadline: float | None = None
        self.budget: int | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the request took too long to arrive")
            self.connection.settimeout(left)
        view = memoryview(buffer).cast("B")
        if self.budget is not None:
            if self.budget <= 0:
                raise _HeadTooLarge(f"request head over {MAX_HEAD_BYTES} bytes")
            view = view[: self.budget]
        count = self.connection.recv_into(view)
        if self.budget is not None:
            self.budget -= count
        return count


class BoundedHandler(BaseHTTPRequestHandler):
    server: BoundedServer
    raw_requestline: bytes
    responded = False

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.limits.head_timeout_sec)
        self._head = _HeadReader(self.connection)
        self.rfile = io.BufferedReader(self._head)

    def handle_one_request(self) -> None:
        self._head.deadline = time.monotonic() + self.server.limits.head_timeout_sec
        self._head.budget = MAX_HEAD_BYTES
        self.responded = False
        try:
            super().handle_one_request()
        except _HeadTooLarge:  # while reading the request line: parse_request had no chance
            self.requestline = self.request_version = self.command = ""
            self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG)
            self.close_connection = True

    def parse_request(self) -> bool:
        if len(self.raw_requestline) > MAX_REQUEST_LINE:
            self.requestline = self.request_version = self.command = ""
            self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG)
            return False
        parsed = super().parse_request()
        self._head.budget = None  # a body, if any, is the route's to bound
        return parsed

    def send_response(self, code: int, message: str | None = None) -> None:
        # The answer starts: no more reading, and a client that stops reading is dropped.
        self._head.deadline = None
        self.connection.settimeout(WRITE_TIMEOUT_SEC)
        self.responded = True
        super().send_response(code, message)
        for name, value in SECURITY_HEADERS:
            self.send_header(name, value)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """A one-line JSON body instead of http.server's HTML page."""
        status = HTTPStatus(code)
        self.send_response(status, message)
        self.send_header("Connection", "close")
        self.close_connection = True
        body = _error_body(message or status.phrase)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per poll would bury the URL; errors reach the page as JSON
