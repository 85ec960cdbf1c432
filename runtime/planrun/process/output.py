"""An attempt's output: the log files it writes into, the pumps that copy it masked (and echoed)
from pipes when it must be, and what is read back of it (sizes for the heartbeat, stderr's tail)."""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING

from planrun.core.failure import WriteOrder
from planrun.core.launcher import LaunchSpec, SpawnError
from planrun.core.writes import write_all
from planrun.process.spec import PUMP_CHUNK, TAIL_BYTES, TAIL_LINES
from planrun.safefs import create_private, read_slice

if TYPE_CHECKING:
    from planrun.masking import StreamMasker


class Pump:
    """One masked output stream: a pipe from the child, a masker, the log file (and an echo)."""

    def __init__(
        self,
        read_fd: int,
        log_fd: int,
        patterns: tuple[bytes, ...],
        echo_fd: int = -1,
        order: tuple[WriteOrder, int] | None = None,  # record into it as stream 0 or 1
    ) -> None:
        self.read_fd = read_fd
        self.log_fd = log_fd
        self.echo_fd = echo_fd
        self.masker: StreamMasker | None = None
        if patterns:
            from planrun.masking import StreamMasker  # only plans with secrets mask output

            self.masker = StreamMasker(patterns)
        self.order = order

    def pump(self) -> bool:
        """Copy what is available; False at end of stream (then the pump is closed)."""
        while True:
            try:
                chunk = os.read(self.read_fd, PUMP_CHUNK)
            except BlockingIOError:
                return True
            if not chunk:
                self.close()
                return False
            if self.order is not None:
                self.order[0].add(self.order[1], chunk)
            self._write(self.masker.feed(chunk) if self.masker else chunk)

    def _write(self, data: bytes) -> None:
        write_all(self.log_fd, data)
        if self.echo_fd >= 0:
            try:
                write_all(self.echo_fd, data)
            except OSError:  # a closed pipe or a full disk ends the echo, never the step
                self.echo_fd = -1

    def close(self) -> None:
        if self.read_fd >= 0:
            if self.masker is not None:
                self._write(self.masker.flush())
            if self.order is not None:
                self.order[0].end(self.order[1])
            os.close(self.read_fd)
            os.close(self.log_fd)
            self.read_fd = self.log_fd = -1


def open_logs(spec: LaunchSpec) -> tuple[int, int]:
    out = _open_log(spec.stdout_path, spec.log_dir_fd)
    if spec.stderr_path == spec.stdout_path:
        return out, out  # one open file: both streams share the offset
    try:
        return out, _open_log(spec.stderr_path, spec.log_dir_fd)
    except SpawnError:
        os.close(out)
        raise


def masked_streams(logs: tuple[int, int], spec: LaunchSpec) -> tuple[int, int, list[Pump]]:
    """Pipes for the child's stdout and stderr, each pumped through a masker into its log."""
    out_log, err_log = logs
    patterns = spec.mask_patterns
    out_echo, err_echo = spec.echo_fds or (-1, -1)
    if err_log == out_log:  # one file for both: one pipe, so the order of lines is kept
        read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
        os.set_blocking(read_fd, False)
        return write_fd, write_fd, [Pump(read_fd, out_log, patterns, out_echo)]
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    for fd in (out_r, err_r):
        os.set_blocking(fd, False)
    order = WriteOrder()  # counts the line breaks of each chunk, on top of the masking
    pumps = [
        Pump(out_r, out_log, patterns, out_echo, (order, 0)),
        Pump(err_r, err_log, patterns, err_echo, (order, 1)),
    ]
    return out_w, err_w, pumps


def _open_log(path: str, dir_fd: int | None) -> int:
    try:
        if dir_fd is None:
            return create_private(path)
        return create_private(os.path.basename(path), dir_fd=dir_fd)
    except OSError as exc:
        raise SpawnError(f"cannot open log file {path}: {exc.strerror}") from None


def log_state(spec: LaunchSpec) -> tuple[tuple[int, int], float]:
    """Sizes of the two logs and the newest mtime (seconds since the epoch)."""
    sizes: list[int] = []
    newest = 0.0
    for path in (spec.stdout_path, spec.stderr_path):
        try:
            st = os.stat(path)
        except OSError:
            sizes.append(-1)
            continue
        sizes.append(st.st_size)
        newest = max(newest, st.st_mtime)
    return (sizes[0], sizes[1]), newest


def stderr_tail(path: str) -> str:
    """The last <= TAIL_LINES lines within the last TAIL_BYTES bytes of a file."""
    try:
        st = os.stat(path, follow_symlinks=False)
        if st.st_size == 0 or not stat.S_ISREG(st.st_mode):  # the common case: one syscall
            return ""
        data, size = read_slice(path, -TAIL_BYTES, TAIL_BYTES)  # no link, no pipe: a step's file
    except OSError:
        return ""
    if size > TAIL_BYTES and b"\n" in data:
        data = data.split(b"\n", 1)[1]  # drop the partial first line
    lines = data.decode(errors="replace").splitlines()
    return "\n".join(lines[-TAIL_LINES:])
