"""Input files of a step: expand its `sources` globs, hash each file's content, and skip the
hashing when the file's (size, mtime_ns, inode) are those recorded with its digest last time, as
ninja's log and git's index do (docs/fingerprints.md).

The cache is the `stat_cache` table of state.db (docs/state.md). It is only a cache: a row that
is missing or stale costs a hash, never a wrong answer, so it is written after the fact and a
failure to write it is ignored.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import sqlite3
import stat
import time
from collections.abc import Iterable
from pathlib import Path

CHUNK = 1 << 20
_MAGIC = re.compile(r"[*?\[]")  # what makes a pattern a glob, as for the glob module
# A file modified less than this long ago may be modified again within the same timestamp tick
# (2 s on FAT, a few ms on ext4) without its stat changing: its digest is used but not cached
# ("racily clean" in git's index).
RACY_NS = 2_000_000_000
# (size, mtime_ns, inode) of a path -> its content digest
Signature = tuple[int, int, int]


class StatCache:
    """Digests of files by path, reusing the recorded one while the file's stat is unchanged.

    `readonly` (a dry run) reads the table but records nothing."""

    def __init__(self, state_dir: str | Path, readonly: bool = False) -> None:
        self._db = Path(state_dir) / "state.db"
        self._readonly = readonly
        self._conn: sqlite3.Connection | None = None
        self._known: dict[str, tuple[Signature, str]] | None = None
        self._changed: dict[str, tuple[Signature, str]] = {}
        self.hashed = 0  # files whose content was read: what the benchmarks count

    def digests(self, cwd: str, patterns: Iterable[str]) -> dict[str, str]:
        """Each file matched by `patterns` (relative to `cwd`) -> its content digest, by path
        relative to `cwd`, sorted. Directories and files that vanish while we look are left out."""
        found: dict[str, str] = {}
        patterns = list(patterns)
        # A literal path needs no directory walk: its stat is the one digest() makes anyway.
        names = expand(cwd, [p for p in patterns if _MAGIC.search(p)])
        names += [os.path.normpath(p) for p in patterns if not _MAGIC.search(p)]
        for rel in sorted(set(names)):
            path = os.path.join(cwd, rel)
            try:
                digest = self.digest(path)
            except OSError:
                continue
            if digest is not None:
                found[rel] = digest
        return dict(sorted(found.items()))

    def digest(self, path: str) -> str | None:
        """The content digest of the regular file `path` (None for anything else)."""
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            return None
        signature = (st.st_size, st.st_mtime_ns, st.st_ino)
        known = self._table().get(path) or self._changed.get(path)
        if known is not None and known[0] == signature:
            return known[1]
        digest = file_digest(path)
        self.hashed += 1
        if time.time_ns() - st.st_mtime_ns > RACY_NS:
            self._changed[path] = (signature, digest)
        return digest

    def save(self) -> None:
        """Record the digests computed since the last save (best effort: it is a cache)."""
        if self._readonly or not self._changed:
            return
        rows = [(p, s[0], s[1], s[2], d) for p, (s, d) in self._changed.items()]
        try:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "INSERT OR REPLACE INTO stat_cache (path, size, mtime_ns, inode, digest)"
                " VALUES (?, ?, ?, ?, ?)",
                rows,
            )
            conn.execute("COMMIT")
        except sqlite3.Error:
            return
        assert self._known is not None
        self._known.update(self._changed)
        self._changed.clear()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _table(self) -> dict[str, tuple[Signature, str]]:
        """The whole table, read once: one query instead of one per file."""
        if self._known is None:
            self._known = {}
            try:
                rows = self._connection().execute(
                    "SELECT path, size, mtime_ns, inode, digest FROM stat_cache"
                )
                self._known = {p: ((s, m, i), d) for p, s, m, i, d in rows}
            except sqlite3.Error:
                pass  # no table yet (an older state.db read by a dry run): hash everything
        return self._known

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            uri = self._db.resolve().as_uri() + ("?mode=ro" if self._readonly else "")
            self._conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=10.0)
        return self._conn


def expand(cwd: str, patterns: Iterable[str]) -> list[str]:
    """The files and directories the glob patterns match under `cwd` (`**` spans directories;
    `*` does not match a leading dot, as in the shell), relative to `cwd`, sorted, no repeats."""
    matched: set[str] = set()
    for pattern in patterns:
        matched.update(glob.glob(pattern, root_dir=cwd, recursive=True))
    return sorted(os.path.normpath(m) for m in matched)


def file_digest(path: str) -> str:
    """sha256 of the file's content (docs/fingerprints.md says why sha256)."""
    hasher = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()
