"""Input from outside, for planc and planrun alike: a file (a plan, an IR, a params file) read
whole but never past a bound, so that `planrun /dev/zero` is a one-line refusal and not a
MemoryError; and text from argv, the environment or a file name, which may not be UTF-8."""

from __future__ import annotations

import os
import re
import stat

# 32 MiB: a 100k-step plan is about 30 MB; anything larger is a mistake or an attack. The limit
# of plans and params files (docs/cli.md, "Input limits").
MAX_INPUT_BYTES = 32 * 1024 * 1024
# An IR writes out every default: the 18 MB benchmark plan of 100,000 steps compiles to 71 MB.
# planrun must run every IR planc writes, so IRs get eight times the plan limit (256 MiB).
MAX_IR_BYTES = 8 * MAX_INPUT_BYTES


class InputTooLarge(Exception):
    """The file holds more than `MAX_INPUT_BYTES`; `size` is None when it cannot be known (a
    device or a pipe, refused once one byte past the limit was read)."""

    def __init__(self, path: str, size: int | None, limit: int) -> None:
        self.path = path
        self.size = size
        held = "more than" if size is None else f"{size} bytes, more than"
        super().__init__(f"{path} holds {held} the {limit} bytes ({limit >> 20} MiB) allowed")


def read_bounded(path: str, limit: int = MAX_INPUT_BYTES, *, regular: bool = False) -> bytes:
    """The bytes of the file at `path`; InputTooLarge past `limit` (a regular file is refused
    from its size before anything is read); OSError as open() and read() raise it. With
    `regular`, anything but a regular file (a FIFO, /dev/zero, a directory) is refused with
    OSError "not a regular file": checked on the file opened (never stat, then open), which a
    FIFO cannot block."""
    if regular:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        handle = open(fd, "rb")  # noqa: SIM115 - closed by the with below
    else:
        handle = open(path, "rb")  # noqa: SIM115 - closed by the with below
    with handle:
        st = os.fstat(handle.fileno())
        if regular and not stat.S_ISREG(st.st_mode):
            raise OSError(0, "not a regular file")
        if st.st_size > limit:
            raise InputTooLarge(path, st.st_size, limit)
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise InputTooLarge(path, None, limit)
    return data


# Python decodes argv, the environment and file names with surrogateescape: each byte that is
# not UTF-8 becomes a lone surrogate U+DC80..U+DCFF, which cannot be encoded as UTF-8 again (in
# SQLite, JSON files, a terminal). A JSON `\\udcff` escape makes one too.
SURROGATE = re.compile("[\ud800-\udfff]")


def not_utf8(value: str) -> str | None:
    """Why `value` is not text that can be written as UTF-8, or None when it is."""
    match = SURROGATE.search(value)
    if match is None:
        return None
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:
        return f"byte 0x{code - 0xDC00:02X} at position {match.start()} is not UTF-8"
    return f"it holds the unpaired surrogate U+{code:04X} at position {match.start()}"


def as_text(value: str) -> str:
    """`value` (a file name, an argv word) with each byte that is not UTF-8 written as `\\xNN`:
    how a name is recorded (the IR's source path, a run's argv) while the file itself is opened
    with the name as it is."""
    if SURROGATE.search(value) is None:
        return value
    return os.fsencode(value).decode("utf-8", "backslashreplace")
