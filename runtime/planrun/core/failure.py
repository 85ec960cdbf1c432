"""The output of a failed attempt as the user sees it: the tail of stdout and stderr together.

Test runners and linters (pytest, ruff, mypy) report on stdout, crashes on stderr: a failure
shows both. The order in which a step wrote to its two streams is known only when planrun read
them itself, which it does for the attempts of plans with secrets (their output is pumped through
the masker, planrun.process). Those attempts keep their last chunks in a `WriteOrder` as they are
read, and their tail comes interleaved as written. Every other attempt writes straight into its
two log files, at no cost to planrun; nothing records the order there, so its tail is stdout's
last lines, then stderr's. Nothing of this is computed for an attempt that succeeds.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from planrun.core.printable import printable

FAILURE_LINES = 20  # the line budget of a failed attempt's tail, both streams together
_TAIL_BYTES = 8192  # read at most this much of each log
STREAMS = ("stdout", "stderr")
MARKERS = {"stdout": "|", "stderr": "!"}  # the same marks as `planrun -v` uses


class WriteOrder:
    """In which order a pumped attempt completed lines on its two streams: runs of
    [stream, number of lines], the newest last (at most `limit` runs are kept).

    The pumps are serviced by one select loop and note each chunk as they read it (before the
    masker, which may hold a few bytes back but never adds or removes a line break of the
    output), so the runs are the order the step wrote its lines in, to the granularity of one
    read per stream per wake-up. Counting the line breaks of a chunk is the whole cost.
    """

    def __init__(self, limit: int = 256) -> None:
        self.runs: deque[list[int]] = deque(maxlen=limit)
        self.partial = [False, False]  # the stream's last line has no line break yet

    def add(self, stream: int, data: bytes) -> None:
        lines = data.count(b"\n")
        if lines:
            self._note(stream, lines)
        if data:
            self.partial[stream] = not data.endswith(b"\n")

    def end(self, stream: int) -> None:
        """The stream reached its end: an unterminated last line is complete now."""
        if self.partial[stream]:
            self.partial[stream] = False
            self._note(stream, 1)

    def _note(self, stream: int, lines: int) -> None:
        if self.runs and self.runs[-1][0] == stream:
            self.runs[-1][1] += lines
        else:
            self.runs.append([stream, lines])


def output_tail(
    stdout_path: str,
    stderr_path: str,
    order: WriteOrder | None = None,
    budget: int = FAILURE_LINES,
) -> dict[str, Any]:
    """The event payload's `output_tail`: `lines` as [stream, text] pairs, `order` ("written"
    or "streams": stdout's lines, then stderr's), `cut` (earlier lines are not shown) and the
    two log files where all of it is."""
    out, out_cut = _file_tail(stdout_path)
    err, err_cut = _file_tail(stderr_path)
    if order is not None and order.runs:
        shown, complete = _interleaved(order, out, err, budget)
        result_order = "written"
        cut = out_cut or err_cut or not complete
    else:
        out_n, err_n = _split_budget(len(out), len(err), budget)
        shown = [("stdout", t) for t in out[len(out) - out_n :]]
        shown += [("stderr", t) for t in err[len(err) - err_n :]]
        result_order = "streams"
        cut = out_cut or err_cut or out_n < len(out) or err_n < len(err)
    return {
        "lines": [[stream, text] for stream, text in shown],
        "order": result_order,
        "cut": cut,
        "stdout_log": stdout_path,
        "stderr_log": stderr_path,
    }


def _split_budget(out: int, err: int, budget: int) -> tuple[int, int]:
    """Half the budget each; what one stream does not need goes to the other."""
    half = budget // 2
    out_n = min(out, max(half, budget - err))
    return out_n, min(err, budget - out_n)


def _interleaved(
    order: WriteOrder, out: list[str], err: list[str], budget: int
) -> tuple[list[tuple[str, str]], bool]:
    """The last `budget` lines of both tails, placed by the runs from the newest back; and
    whether that covers all the lines of both."""
    left = [len(out), len(err)]
    tails = (out, err)
    picked: list[tuple[str, str]] = []
    for stream, count in reversed(order.runs):
        take = min(count, left[stream], budget - len(picked))
        for index in range(left[stream] - 1, left[stream] - 1 - take, -1):
            picked.append((STREAMS[stream], tails[stream][index]))
        left[stream] -= take
        if len(picked) == budget or left == [0, 0]:
            break
    picked.reverse()
    return picked, left == [0, 0]


def _file_tail(path: str) -> tuple[list[str], bool]:
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            if size == 0:
                return [], False
            start = max(0, size - _TAIL_BYTES)
            handle.seek(start)
            data = handle.read(_TAIL_BYTES)
    except OSError:
        return [], False
    if start > 0 and b"\n" in data:
        data = data.split(b"\n", 1)[1]  # the first line was cut in the middle
    lines = data.split(b"\n")
    if data.endswith(b"\n"):
        lines.pop()
    return [_decode(line) for line in lines], start > 0


def _decode(line: bytes) -> str:
    return line.decode("utf-8", errors="replace").rstrip("\r")


def tail_block(
    step_id: str, tail: Mapping[str, Any], run_id: str | None = None
) -> tuple[str, list[str]]:
    """A title and the lines (`| text` for stdout, `! text` for stderr) of a failed attempt's
    output, ending with where the full logs are; the shape every view prints."""
    lines: Sequence[Any] = tail.get("lines") or []
    written = tail.get("order") == "written"
    how = "in the order written" if written else "stdout, then stderr"
    more = "last " if tail.get("cut") else ""
    count = f"{len(lines)} {'line' if len(lines) == 1 else 'lines'}"
    title = f"{printable(step_id)} output ({more}{count}, {how}; | stdout, ! stderr)"
    if not lines:
        title = f"{step_id} output (none)"
    body = [
        f"{MARKERS.get(str(stream), '|')} {printable(str(text))}".rstrip() for stream, text in lines
    ]
    if not lines:
        body.append("(no output)")
    out_log, err_log = _shown(str(tail.get("stdout_log"))), _shown(str(tail.get("stderr_log")))
    base = out_log.removesuffix(".stdout")
    files = f"{base}.std{{out,err}}" if err_log == base + ".stderr" else f"{out_log}, {err_log}"
    command = f"planrun logs {run_id} {step_id} [--stderr]" if run_id else "planrun logs"
    body.append(f"full log: {files} ({command})")
    return title, body


def _shown(path: str) -> str:
    """A log's path as the reader would type it: relative when it is under the current directory
    (the default state dir, `.planrun`), absolute otherwise."""
    here = os.getcwd() + os.sep
    return path[len(here) :] if path.startswith(here) else path
