"""Files a step could have replaced: opened without following links, never blocking, bounded.

Steps run as the user who runs planrun and may write anywhere that user can, including the
state directory. So everything planrun opens there (logs, `$PLAN_OUTPUT`, events.jsonl, the
database) goes through this module: the last component is opened with O_NOFOLLOW (a planted
symlink is refused or replaced, never written through), O_NONBLOCK (a FIFO cannot block
planrun) and checked with fstat (a device, FIFO or directory is refused); reads are bounded.
Directories under the state dir are walked one component at a time relative to a directory fd
(openat), so a directory swapped for a link cannot redirect a write. docs/state.md, "Trust".
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterable
from pathlib import Path

_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
PRIVATE_FILE = 0o600  # every file planrun creates under the state dir (the umask may remove more)
PRIVATE_DIR = 0o700

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISLNK, "a symbolic link"),
)


class UnsafeFileError(OSError):
    """A path that is not a regular file (a link, pipe, device…) or larger than allowed; its
    `strerror` says which, for one-line messages such as f"cannot read {path}: {exc.strerror}"."""

    def __init__(self, path: str | Path, why: str) -> None:
        super().__init__(errno.EINVAL, why, str(path))


def kind(mode: int) -> str:
    """What a file that is not a regular one is, in words."""
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def open_regular(path: str | Path, *, dir_fd: int | None = None) -> int:
    """A read-only descriptor on the regular file at `path` (relative to `dir_fd` if given).

    FileNotFoundError passes through (callers treat a missing file as they see fit); a symlink,
    FIFO, device or directory raises UnsafeFileError without blocking or following anything.
    """
    try:
        fd = os.open(path, _READ, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafeFileError(path, "it is a symbolic link (not followed)") from None
        raise
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise UnsafeFileError(path, f"it is {kind(mode)}, not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_regular(path: str | Path, limit: int, *, dir_fd: int | None = None) -> bytes:
    """The whole regular file at `path`, at most `limit` bytes (UnsafeFileError beyond)."""
    fd = open_regular(path, dir_fd=dir_fd)
    try:
        size = os.fstat(fd).st_size
        if size > limit:
            raise UnsafeFileError(path, f"it holds {size} bytes; the limit is {limit}")
        data = read_fd(fd, 0, limit + 1)  # it may have grown since fstat
        if len(data) > limit:
            raise UnsafeFileError(path, f"it holds more than {limit} bytes; the limit is {limit}")
        return data
    finally:
        os.close(fd)


def read_fd(fd: int, offset: int, size: int) -> bytes:
    """Up to `size` bytes from `offset` (fewer only at the end of the file)."""
    chunks: list[bytes] = []
    while size > 0:
        chunk = os.pread(fd, size, offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def read_slice(path: str | Path, offset: int, size: int) -> tuple[bytes, int]:
    """Up to `size` bytes from `offset` of a regular file (a log that may still grow), and the
    file's size; a missing file reads as empty. `offset` < 0 counts from the end."""
    try:
        fd = open_regular(path)
    except FileNotFoundError:
        return b"", 0
    try:
        total = os.fstat(fd).st_size
        start = max(0, total + offset) if offset < 0 else min(offset, total)
        return read_fd(fd, start, size), total
    finally:
        os.close(fd)


def create_private(name: str | Path, *, dir_fd: int | None = None) -> int:
    """A new, empty regular file (mode 0600 less the umask) opened for writing at `name`.

    Whatever was at that name goes first: a stale file of a crashed attempt or a link planted
    by a step is removed (unlink removes a link, never its target), so nothing is written
    through it. The common case, nothing there, costs the one open.
    """
    try:
        return os.open(name, _CREATE, PRIVATE_FILE, dir_fd=dir_fd)
    except FileExistsError:
        pass
    try:
        os.unlink(name, dir_fd=dir_fd)
    except IsADirectoryError:
        raise UnsafeFileError(name, "it is a directory") from None
    except FileNotFoundError:
        pass  # gone meanwhile
    return os.open(name, _CREATE, PRIVATE_FILE, dir_fd=dir_fd)


def open_dirs(root: int, names: Iterable[str], *, create: bool = False) -> int:
    """A descriptor on root/name1/name2/…, each component opened with O_NOFOLLOW relative to
    the one before (created 0700 when `create`); UnsafeFileError if one is not a directory."""
    fd = os.dup(root)
    walked: list[str] = []
    try:
        for name in names:
            walked.append(name)
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(name, PRIVATE_DIR, dir_fd=fd)
            try:
                inner = os.open(name, _DIR, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    where = "/".join(walked)
                    raise UnsafeFileError(
                        where, f"{where} is not a directory (or is a link)"
                    ) from None
                raise
            os.close(fd)
            fd = inner
    except BaseException:
        os.close(fd)
        raise
    return fd


def trust_problem(st: os.stat_result) -> str | None:
    """Why a state dir or state.db with this stat is not to be trusted, or None: it must belong
    to the user running planrun and be writable by nobody else (as ssh and git's
    safe.directory require), since what it holds decides which commands planrun runs."""
    me = os.geteuid()
    if st.st_uid != me:
        return f"it is owned by uid {st.st_uid}, not by the user running planrun (uid {me})"
    if st.st_mode & 0o022:
        return f"it is writable by {_writers(st.st_mode)} (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def _writers(mode: int) -> str:
    who = [name for bit, name in ((0o020, "its group"), (0o002, "every user")) if mode & bit]
    return " and ".join(who)
