"""Following a log file that another process is still writing, line by line.

A step may have replaced its log (by a link to another file, a pipe, a device): logs are read
through planrun.safefs, which reads regular files only, without following links or blocking.
"""

from __future__ import annotations

from pathlib import Path

from planrun.safefs import UnsafeFileError, read_slice

_CHUNK = 1 << 20  # read at most 1 MiB per poll, so one chatty step cannot stall a view


class LogTail:
    """New complete lines of a growing file since the last call; the partial last line waits.

    The file may not exist yet (an attempt's log is created when it starts): that reads as empty.
    One that is not a regular file raises UnsafeFileError.
    """

    def __init__(self, path: str | Path, offset: int = 0) -> None:
        self.path = Path(path)
        self.offset = offset
        self._partial = b""

    def read_bytes(self) -> bytes:
        """Whatever was appended since the last call (complete or not)."""
        data, _size = read_slice(self.path, self.offset, _CHUNK)
        self.offset += len(data)
        return data

    def lines(self) -> list[str]:
        """Complete lines appended since the last call, without their newlines."""
        data = self._partial + self.read_bytes()
        *complete, self._partial = data.split(b"\n")
        return [_decode(line) for line in complete]

    def rest(self) -> list[str]:
        """At the end of the attempt: the remaining lines, including an unterminated last one."""
        lines = self.lines()
        while True:  # drain files larger than one chunk
            more = self.lines()
            if not more:
                break
            lines.extend(more)
        if self._partial:
            lines.append(_decode(self._partial))
            self._partial = b""
        return lines


def _decode(line: bytes) -> str:
    return line.decode("utf-8", errors="replace").rstrip("\r")


def read_tail(path: str | Path, max_lines: int, max_bytes: int = 16384) -> tuple[str, bool]:
    """The last `max_lines` lines (at most `max_bytes`) of a file, and whether it was cut; for
    a file that is not a regular one, a line saying so instead."""
    try:
        data, size = read_slice(path, -max_bytes, max_bytes)
    except UnsafeFileError as exc:
        return f"(not shown: {path}: {exc.strerror})", False
    start = max(0, size - max_bytes)
    text = data.decode("utf-8", errors="replace")
    lines = text.splitlines()
    if start > 0 and lines:
        lines = lines[1:]  # the first line was cut in the middle
    cut = start > 0 or len(lines) > max_lines
    return "\n".join(lines[-max_lines:]), cut
