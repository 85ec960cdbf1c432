"""Writing when writing can fail (a full disk, a closed pipe), for planc and planrun alike: a file
written whole or not at all, and a descriptor given up for the rest of the process."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def write_whole(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` so that a failure (a full disk) never leaves a truncated file where
    a good one was, and a reader never sees one half-written: a temporary file beside it,
    renamed over it once complete. A path that exists and is not a regular file (/dev/stdout, a
    named pipe) is written directly."""
    target = Path(path)
    if target.exists() and not target.is_file():
        with open(target, "wb") as handle:
            handle.write(data)
        return
    # 0o666: the mode a plain open() would give, the umask applied.
    replace_whole(target.name, data, 0o666, str(target.parent))


def replace_whole(name: str, data: bytes, mode: int, directory: str | int) -> None:
    """Write `data` to `name` in `directory` (a path, or a directory fd that resolves it without
    following links) through a temporary file renamed over it: whatever was at `name` (a link
    planted there, a pipe) is replaced, never written through."""
    path_dir = directory if isinstance(directory, str) else None
    fd_dir = directory if isinstance(directory, int) else None
    target = os.path.join(path_dir, name) if path_dir is not None else name
    temporary = os.path.join(path_dir or "", f".{name}.{os.urandom(4).hex()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(temporary, flags, mode, dir_fd=fd_dir)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temporary, target, src_dir_fd=fd_dir, dst_dir_fd=fd_dir)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary, dir_fd=fd_dir)
        raise


def write_all(fd: int, data: bytes) -> None:
    """os.write until all of `data` is written (a pipe or a signal may take it in parts)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def abandon(fd: int) -> None:
    """Point a descriptor that can no longer be written to at /dev/null, so that what a buffer
    still holds for it (the interpreter flushes stdout at exit) goes nowhere instead of failing
    a second time."""
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.dup2(devnull, fd)
        finally:
            os.close(devnull)
