"""Output streams whose failure ends the output, never the run.

planrun's text (progress lines, the `--json` event stream, the summary) goes to stdout and
stderr, which may be a pipe whose reader has gone (`planrun --json plan.yaml | head -1`) or a
file on a full disk. The run must not stop for that: its events are in the store, and a step
half-way through `git push` is not cut short because a log reader left. The first failure turns
the stream into a sink for the rest of the process: its descriptor is pointed at /dev/null, so
nothing (not even the interpreter's flush at exit) writes to it again, and the other stream says
so once (docs/cli.md).
"""

from __future__ import annotations

import contextlib
import io
from typing import TextIO, cast

from planrun.core.writes import abandon


class SurvivingStream(io.TextIOBase):
    def __init__(self, stream: TextIO, label: str) -> None:
        self._stream = stream
        self.label = label
        self.failure: str | None = None  # why the stream broke, once it did
        self.partner: SurvivingStream | None = None  # the stream that reports the break

    def write(self, text: str) -> int:
        if self.failure is None:
            try:
                return self._stream.write(text)
            except OSError as exc:
                self._failed(exc)
        return len(text)

    def flush(self) -> None:
        if self.failure is None:
            try:
                self._stream.flush()
            except OSError as exc:
                self._failed(exc)

    def isatty(self) -> bool:
        return self.failure is None and self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()

    def writable(self) -> bool:
        return True

    # TextIOBase's own `encoding` is None and read-only; rich asks it of its console's file.
    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._stream.encoding

    def _failed(self, exc: OSError) -> None:
        self.failure = exc.strerror or str(exc)
        # What the stream's buffer still holds, and whatever is written later, then goes nowhere
        # (a stream without a descriptor, e.g. in tests, just stays broken).
        with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
            abandon(self._stream.fileno())
        if self.partner is not None:
            self.partner.write(
                f"planrun: cannot write to {self.label} ({self.failure}); the run goes on"
                " without it\n"
            )
            self.partner.flush()


def surviving(out: TextIO, err: TextIO) -> tuple[TextIO, TextIO]:
    """stdout and stderr as streams that may break without stopping the run."""
    survivors = SurvivingStream(out, "stdout"), SurvivingStream(err, "stderr")
    survivors[0].partner, survivors[1].partner = survivors[1], survivors[0]
    return cast(TextIO, survivors[0]), cast(TextIO, survivors[1])
