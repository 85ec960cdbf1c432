"""The stat cache of input files (docs/fingerprints.md, "Fast when nothing changed"): a file is
hashed only when its (size, mtime_ns, inode) changed since its digest was recorded."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from planrun.statcache import StatCache
from planrun.store import RunStore


def old(path: Path) -> None:
    """Out of the racy window (a file changed in the last 2 s is not cached)."""
    stamp = time.time() - 60
    os.utime(path, (stamp, stamp))


def test_files_are_hashed_only_when_their_stat_changed(tmp_path: Path) -> None:
    RunStore.open(tmp_path / "state").close()
    src = tmp_path / "src"
    (src / "pkg").mkdir(parents=True)
    for name in ("a.py", "b.py", "pkg/c.py", "notes.txt", ".hidden.py"):
        (src / name).write_text(name)
        old(src / name)

    first = StatCache(tmp_path / "state")
    digests = first.digests(str(src), ["**/*.py", "notes.txt", "missing.txt"])
    assert digests == {
        n: hashlib.sha256(n.encode()).hexdigest() for n in ("a.py", "b.py", "notes.txt", "pkg/c.py")
    }
    assert first.hashed == 4
    first.save()
    first.close()

    warm = StatCache(tmp_path / "state")
    assert warm.digests(str(src), ["**/*.py", "notes.txt"]) == digests
    assert warm.hashed == 0
    warm.close()

    (src / "b.py").write_text("b, edited")  # size, mtime: hashed again
    old(src / "b.py")
    (src / "a.py").replace(src / "a.tmp")  # same content, another inode: hashed again
    (src / "a.tmp").write_text("a.py")
    (src / "a.tmp").replace(src / "a.py")
    old(src / "a.py")
    changed = StatCache(tmp_path / "state")
    again = changed.digests(str(src), ["**/*.py", "notes.txt"])
    assert again["b.py"] == hashlib.sha256(b"b, edited").hexdigest()
    assert again["a.py"] == digests["a.py"]
    assert changed.hashed == 2
    changed.save()
    changed.close()


def test_a_file_changed_just_now_is_not_cached(tmp_path: Path) -> None:
    RunStore.open(tmp_path / "state").close()
    (tmp_path / "fresh.txt").write_text("1")
    for _ in range(2):
        cache = StatCache(tmp_path / "state")
        cache.digests(str(tmp_path), ["fresh.txt"])
        assert cache.hashed == 1  # racily clean: hashed every time until it is 2 s old
        cache.save()
        cache.close()
