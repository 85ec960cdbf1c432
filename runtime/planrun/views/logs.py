"""`planrun logs [RUN] STEP`: print an attempt's stdout or stderr, or follow it while it runs."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TextIO

from planrun.core.printable import printable
from planrun.safefs import UnsafeFileError
from planrun.store import AttemptInfo, Reader
from planrun.views.inspect import open_state
from planrun.views.model import (
    NoAttemptError,
    Stream,
    ViewError,
    find_attempt,
    find_step,
    log_path,
    pick_run,
)
from planrun.views.tail import LogTail

POLL_SEC = 0.2


@dataclass
class LogRequest:
    state_dir: str
    run_ref: str | None  # None: the latest run
    step_id: str
    attempt: int | None = None  # None: the latest, and with --follow every later one too
    stream: Stream = "stdout"
    follow: bool = False
    as_json: bool = False


def logs(
    request: LogRequest,
    out: TextIO,
    err: TextIO,
    *,
    poll_sec: float = POLL_SEC,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    with open_state(request.state_dir) as reader, _refusing_unsafe():
        run_id = pick_run(reader, request.run_ref)
        find_step(reader, run_id, request.step_id)  # unknown step: a clear error, even with -f
        printer = _Printer(out, run_id, request)
        if not request.follow:
            attempt = find_attempt(reader, run_id, request.step_id, request.attempt)
            printer.attempt = attempt.attempt
            tail = LogTail(log_path(reader.state_dir, run_id, attempt, request.stream))
            printer.write(tail.rest())
            return 0
        _Follower(reader, run_id, request, printer, err, poll_sec, sleep).run()
    return 0


@contextmanager
def _refusing_unsafe() -> Iterator[None]:
    """A log a step replaced by a link, pipe or device is not printed: one line, exit 2."""
    try:
        yield
    except UnsafeFileError as exc:
        raise ViewError(f"cannot show {exc.filename}: {exc.strerror}") from None


class _Printer:
    """Log lines as text, or as JSON lines: `{"run_id", "step_id", "attempt", "stream", "line"}`."""

    def __init__(self, out: TextIO, run_id: str, request: LogRequest) -> None:
        self.out = out
        self.run_id = run_id
        self.request = request
        self.attempt = 0

    def write(self, lines: list[str]) -> None:
        if not lines:
            return
        if self.request.as_json:
            for line in lines:
                record = {
                    "run_id": self.run_id,
                    "step_id": self.request.step_id,
                    "attempt": self.attempt,
                    "stream": self.request.stream,
                    "line": line,
                }
                self.out.write(json.dumps(record, ensure_ascii=False) + "\n")
        else:
            self.out.write("".join(f"{line}\n" for line in lines))
        self.out.flush()


class _Follower:
    """Copies the attempt's log as it grows; moves on to a retry's next attempt (unless
    --attempt pins one); stops when the step or the run is over (finished, or its planrun died).
    """

    def __init__(
        self,
        reader: Reader,
        run_id: str,
        request: LogRequest,
        printer: _Printer,
        err: TextIO,
        poll_sec: float,
        sleep: Callable[[float], None],
    ) -> None:
        self.reader = reader
        self.run_id = run_id
        self.request = request
        self.printer = printer
        self.err = err
        self.poll_sec = poll_sec
        self.sleep = sleep

    def run(self) -> None:
        attempt = self._first_attempt()
        while attempt is not None:
            self._copy(attempt)
            if self.request.attempt is not None:
                return
            attempt = self._next_attempt(attempt.attempt)

    def _first_attempt(self) -> AttemptInfo | None:
        """The requested (or latest) attempt, waiting for the step to start if it has not."""
        while True:
            try:
                request = self.request
                return find_attempt(self.reader, self.run_id, request.step_id, request.attempt)
            except NoAttemptError:
                if not self._run_going():
                    raise
            self.sleep(self.poll_sec)

    def _copy(self, attempt: AttemptInfo) -> None:
        self.printer.attempt = attempt.attempt
        tail = LogTail(log_path(self.reader.state_dir, self.run_id, attempt, self.request.stream))
        while True:
            self.printer.write(tail.lines())
            current = self._attempt(attempt.attempt)
            if current.finished_at is not None or not self._run_going():
                self.printer.write(tail.rest())  # the attempt is closed: its log is complete
                return
            self.sleep(self.poll_sec)

    def _next_attempt(self, after: int) -> AttemptInfo | None:
        """A later attempt (a retry), waiting through the retry delay; None when there is none."""
        while True:
            later = [a for a in self._attempts() if a.attempt > after]
            if later:
                name = printable(self.request.step_id)
                self.err.write(f"planrun: {name}: attempt {later[0].attempt}\n")
                return later[0]
            step = find_step(self.reader, self.run_id, self.request.step_id)
            if step.status != "running" or not self._run_going():
                return None
            self.sleep(self.poll_sec)

    def _attempts(self) -> list[AttemptInfo]:
        return self.reader.attempts(self.run_id, self.request.step_id)

    def _attempt(self, number: int) -> AttemptInfo:
        return next(a for a in self._attempts() if a.attempt == number)

    def _run_going(self) -> bool:
        return self.reader.run(self.run_id).status == "running"
