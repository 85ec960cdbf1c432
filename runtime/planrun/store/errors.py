"""The run store's errors, each one line the CLI prints, and how a path is quoted in them."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_SHOWN_PATH = 160  # characters of a path quoted in a message; a longer one is elided


class StoreError(Exception):
    """A run-store problem the CLI reports in one line."""


class NoStateError(StoreError):
    pass


class UnknownRunError(StoreError):
    pass


class AmbiguousRunError(UnknownRunError):
    pass


class RunExistsError(StoreError):
    pass


class RunLockedError(StoreError):
    pass


class DigestMismatchError(StoreError):
    pass


class StoreWriteError(StoreError):
    """Recording failed (disk full, I/O error, file size limit…): the run cannot go on."""


class StateLostError(StoreError):
    """state.db was deleted or truncated under a live run: recording into it would write into a
    file nobody can read again, so the run stops (exit 2, docs/state.md "Trust")."""


class DamagedStateError(StoreError):
    """state.db holds something this planrun cannot read (wrong tables, bad data): one line."""


def shown(path: str | Path) -> str:
    """A path as quoted in a one-line message: a very long one (past PATH_MAX, say) elided."""
    text = str(path)
    if len(text) <= _SHOWN_PATH:
        return text
    return f"{text[: _SHOWN_PATH // 2]}…{text[-_SHOWN_PATH // 2 :]} ({len(text)} characters)"


def no_state(root: Path) -> NoStateError:
    return NoStateError(
        f"no planrun state in {shown(root)} (no state.db): no run has been started there"
    )


# What a damaged state.db makes the read side raise: SQLite errors, text that is not UTF-8,
# JSON that does not parse, rows of the wrong shape.
DAMAGE = (sqlite3.Error, ValueError, TypeError, KeyError, IndexError)


@contextmanager
def reading(db: Path) -> Iterator[None]:
    try:
        yield
    except DAMAGE as exc:
        raise damaged(db, exc) from None


def damaged(db: Path, exc: BaseException) -> DamagedStateError:
    return DamagedStateError(
        f"{shown(db)} is damaged or not planrun's ({type(exc).__name__}: {exc});"
        " move it away or use another --state-dir"
    )


def unusable(root: Path, exc: OSError | sqlite3.Error) -> StoreError:
    """The state directory or its database cannot be used: one line that says which and why."""
    if isinstance(exc, (FileExistsError, NotADirectoryError)):
        return StoreError(f"cannot use {shown(root)} as the state directory: it is not a directory")
    if isinstance(exc, OSError):
        return StoreError(f"cannot use {shown(root)} as the state directory: {exc.strerror or exc}")
    db = shown(root / "state.db")
    if isinstance(exc, sqlite3.DatabaseError) and "not a database" in str(exc):
        return StoreError(
            f"{db} is not a planrun state database ({exc}); move it away or use another --state-dir"
        )
    return StoreError(f"cannot open {db}: {exc}")
