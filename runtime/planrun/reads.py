"""Reading an input file (a plan, an IR, a params file) whole, but never more than a bound: for
planc and planrun alike, so that `planrun /dev/zero` is a one-line refusal, not a MemoryError."""

from __future__ import annotations

import os

# 32 MiB: a 100k-step plan is about 30 MB; anything larger is a mistake or an attack. One limit
# for plans, IRs and params files (docs/cli.md, "Input limits").
MAX_INPUT_BYTES = 32 * 1024 * 1024


class InputTooLarge(Exception):
    """The file holds more than `MAX_INPUT_BYTES`; `size` is None when it cannot be known (a
    device or a pipe, refused once one byte past the limit was read)."""

    def __init__(self, path: str, size: int | None) -> None:
        self.path = path
        self.size = size
        held = "more than" if size is None else f"{size} bytes, more than"
        super().__init__(f"{path} holds {held} the {MAX_INPUT_BYTES} bytes (32 MiB) allowed")


def read_bounded(path: str) -> bytes:
    """The bytes of the file at `path`; InputTooLarge past the limit (a regular file is refused
    from its size before anything is read); OSError as open() and read() raise it."""
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > MAX_INPUT_BYTES:
            raise InputTooLarge(path, size)
        data = handle.read(MAX_INPUT_BYTES + 1)
    if len(data) > MAX_INPUT_BYTES:
        raise InputTooLarge(path, None)
    return data
