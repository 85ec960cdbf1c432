"""The files of a state dir as checked descriptors: state.db's trust and identity
(docs/state.md, "Trust"), and events.jsonl, rebuilt from SQLite when it lags or is torn."""

from __future__ import annotations

import errno
import os
import sqlite3
import stat
from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from planrun.core.writes import replace_whole, write_all
from planrun.safefs import (
    PRIVATE_DIR,
    PRIVATE_FILE,
    kind,
    open_dirs,
    read_fd,
    read_regular,
    trust_problem,
)
from planrun.store.errors import StateLostError, StoreError, no_state, shown, unusable
from planrun.store.schema import BUSY_TIMEOUT

_CREATE_DB = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_JSONL_FLAGS = os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class StateFiles:
    """The state dir as a checked descriptor, and its state.db (docs/state.md, "Trust"): both
    belong to the user running planrun and nobody else can write them; the database is a
    regular file (not a link), and is the file SQLite opened by name. Its identity (device,
    inode) and size then tell whether it was deleted, replaced or truncated under a live run
    (`check_alive`).

    state.db is only ever looked at with lstat, never opened here (but once, to create it
    0600): closing any descriptor of it would drop every POSIX lock this process holds on
    it, SQLite's included, and another process could then delete the WAL under an open
    connection."""

    def __init__(self, root_fd: int, db: os.stat_result) -> None:
        self.root_fd = root_fd
        self.db_size = db.st_size
        self.db_id = (db.st_dev, db.st_ino)
        self.lost: str | None = None

    @classmethod
    def open(cls, root: Path, *, create: bool) -> StateFiles:
        try:
            if create:
                os.makedirs(root, PRIVATE_DIR, exist_ok=True)
            root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise no_state(root) from None
        except OSError as exc:
            raise unusable(root, exc) from None
        try:
            _trust(os.fstat(root_fd), f"refusing to use {shown(root)} as the state directory")
            db = _check_db(root, root_fd, create)
        except BaseException:
            os.close(root_fd)
            raise
        return cls(root_fd, db)

    def verify(self, root: Path) -> None:
        """After SQLite opened state.db by name: it is the file checked, and its -wal/-shm are
        regular files of ours too (SQLite opens them following links)."""
        named = self._stat("state.db")
        if named is None or (named.st_dev, named.st_ino) != self.db_id:
            raise StoreError(f"{shown(root / 'state.db')} was replaced while it was opened")
        for suffix in ("-wal", "-shm"):
            st = self._stat(f"state.db{suffix}")
            if st is None:
                continue
            where = f"refusing to use {shown(root / ('state.db' + suffix))}"
            if not stat.S_ISREG(st.st_mode):
                raise StoreError(f"{where}: it is {kind(st.st_mode)}, not a regular file")
            _trust(st, where)
        self.db_size = named.st_size

    def check_alive(self, state_dir: Path) -> None:
        """One stat (relative to the dir fd): StateLostError if DIR/state.db is gone, is
        another file than the one SQLite writes into, or shrank (a database only grows:
        planrun never vacuums) since the last call."""
        if self.lost is None:
            st = self._stat("state.db")
            if st is None:
                self.lost = "deleted (or moved away)"
            elif (st.st_dev, st.st_ino) != self.db_id:
                self.lost = "replaced by another file"
            elif st.st_size < self.db_size:
                self.lost = f"truncated ({self.db_size} bytes, now {st.st_size})"
            else:
                self.db_size = st.st_size
                return
        raise StateLostError(
            f"{shown(state_dir / 'state.db')} was {self.lost} under the run: the run was stopped"
            " rather than record into a database nobody can read (its logs are kept under"
            f" {shown(state_dir / 'runs')})"
        )

    def close(self) -> None:
        fd, self.root_fd = self.root_fd, -1
        if fd >= 0:
            os.close(fd)

    def _stat(self, name: str) -> os.stat_result | None:
        try:
            return os.stat(name, dir_fd=self.root_fd, follow_symlinks=False)
        except FileNotFoundError:
            return None


class Closing(ABC):
    """Something holding state.db open: a `with` block closes it."""

    @abstractmethod
    def close(self) -> None:
        """Close everything it holds; safe to call twice."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def connect(
    root: Path,
    *,
    create: bool,
    setup: Callable[[sqlite3.Connection, StateFiles], None],
    **options: Any,
) -> tuple[sqlite3.Connection, StateFiles]:
    """DIR/state.db checked (StateFiles.open), opened by SQLite (read-only unless `create`) and
    made ready by `setup`; on any failure nothing is left open and the error is one line."""
    files = StateFiles.open(root, create=create)
    db = root / "state.db"
    target = str(db) if create else Path(os.path.abspath(db)).as_uri() + "?mode=ro"
    try:
        # isolation_level=None: transactions are explicit, so one event is one commit.
        conn = sqlite3.connect(
            target, uri=not create, isolation_level=None, timeout=BUSY_TIMEOUT, **options
        )
    except (OSError, sqlite3.Error) as exc:
        files.close()
        raise unusable(root, exc) from None
    try:
        setup(conn, files)
    except BaseException:
        conn.close()
        files.close()
        raise
    return conn, files


def _check_db(root: Path, root_fd: int, create: bool) -> os.stat_result:
    """lstat of DIR/state.db (created 0600 first if `create` and missing), checked like the
    dir: a regular file of ours that nobody else can write."""
    db = root / "state.db"
    try:
        if create:
            with suppress(FileExistsError):
                # Nothing else in this process can have it open: it did not exist.
                os.close(os.open("state.db", _CREATE_DB, PRIVATE_FILE, dir_fd=root_fd))
        st = os.stat("state.db", dir_fd=root_fd, follow_symlinks=False)
    except FileNotFoundError:
        raise no_state(root) from None
    except OSError as exc:
        if exc.errno == errno.EACCES and create:
            raise StoreError(f"cannot create {shown(db)}: {shown(root)} is not writable") from None
        raise StoreError(f"cannot open {shown(db)}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise StoreError(f"{shown(db)} is a directory, not a planrun state database")
    if stat.S_ISLNK(st.st_mode):
        raise StoreError(f"refusing to use {shown(db)}: it is a symbolic link")
    if not stat.S_ISREG(st.st_mode):
        raise StoreError(f"{shown(db)} is {kind(st.st_mode)}, not a planrun state database")
    _trust(st, f"refusing to use {shown(db)}")
    return st


def _trust(st: os.stat_result, refusal: str) -> None:
    problem = trust_problem(st)
    if problem is not None:
        raise StoreError(f"{refusal}: {problem}")


def open_run_files(
    root_fd: int, run_id: str, ir: bytes, lines: list[bytes]
) -> tuple[int, int, int, int]:
    """DIR/runs/RUN_ID and its logs/ (created if missing, reached without following links),
    ir.json rewritten unless it holds `ir`, and events.jsonl made to hold exactly `lines`:
    (run dir fd, logs dir fd, events.jsonl fd, how many lines the repair appended)."""
    run_fd = open_dirs(root_fd, ("runs", run_id), create=True)
    fds = [run_fd]
    try:
        fds.append(open_dirs(root_fd, ("runs", run_id, "logs"), create=True))
        try:
            same = read_regular("ir.json", len(ir), dir_fd=run_fd) == ir
        except OSError:
            same = False
        if not same:
            replace_whole("ir.json", bytes(ir), PRIVATE_FILE, run_fd)
        fds.append(open_jsonl(run_fd))
        reemitted = repair_jsonl(fds[2], lines)
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    return run_fd, fds[1], fds[2], reemitted


def open_jsonl(run_fd: int) -> int:
    """events.jsonl for reading and appending; anything else found at that name (a link, a pipe)
    is replaced by a new file (it is derived from SQLite), never written through."""
    try:
        fd = os.open("events.jsonl", _JSONL_FLAGS, PRIVATE_FILE, dir_fd=run_fd)
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
    else:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            return fd
        os.close(fd)
    os.unlink("events.jsonl", dir_fd=run_fd)
    return os.open("events.jsonl", _JSONL_FLAGS | os.O_EXCL, PRIVATE_FILE, dir_fd=run_fd)


def repair_jsonl(fd: int, lines: list[bytes]) -> int:
    """Make events.jsonl hold exactly `lines` (SQLite's events); return how many were appended.

    Keeps the longest prefix of the file that matches SQLite byte for byte, truncates the rest (a
    torn line from a crash mid-write, or anything SQLite does not have) and appends the events the
    file is missing (a crash between the SQLite commit and the file write).
    """
    data = read_fd(fd, 0, os.fstat(fd).st_size)
    offset = kept = 0
    for line in lines:
        if not data.startswith(line, offset):
            break
        offset += len(line)
        kept += 1
    if offset != len(data):
        os.ftruncate(fd, offset)
    write_all(fd, b"".join(lines[kept:]))
    return len(lines) - kept
