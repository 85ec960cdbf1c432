"""What `planrun watch` watches: paths and globs to watched roots, ignore rules, and the thread
that turns file system events (watchfiles, on the Rust `notify` crate) into changed paths.

A glob such as `src/**/*.py` is watched from its longest directory prefix without wildcards
(`src`), and a change counts when its path, relative to the working directory, matches. Ignore
patterns follow .gitignore's shape: without `/` they match a name anywhere, with `/` the
relative path; a matched directory ignores everything under it. docs/cli.md (`planrun watch`).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from planrun.core.byvalue import ByValue

# Never a reason to run: version control, caches, editor swap and backup files. The directory
# names are watchfiles' DefaultFilter's; `4913` is the file vim creates to test a directory.
IGNORED_DIRS = frozenset(
    {".git", ".hg", ".svn", "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
    | {".hypothesis", ".tox", ".venv", "node_modules", ".idea"}
)
IGNORED_NAME = re.compile(r"\.py[cod]$|\.sw.$|~$|^\.#|^\.DS_Store$|^4913$|^flycheck_").search

# File systems where inotify sees only this machine's writes (or nothing): changes made on the
# server or another client would be missed, so they are polled (docs/cli.md).
NETWORK_FS = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "smbfs", "ncpfs", "afs", "9p", "ceph", "glusterfs", "lustre"}
    | {"gpfs", "beegfs", "fuse.sshfs", "fuse.glusterfs", "fuse.rclone", "fuse.s3fs", "davfs"}
)
POLL_INTERVAL_MS = 1000
STEP_MS = 20  # the Rust side hands a batch over after this long without a new event
_GLOB_CHARS = re.compile(r"[*?\[]")


class WatchPathError(Exception):
    """A watched path that does not exist, or a pattern that cannot be used: one line, exit 2."""


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A compiled regex for a path glob: `*` and `?` stop at `/`, `**` crosses directories,
    `[...]` is a character class (`[!...]` negated); `dir/**` matches `dir` itself too."""
    if pattern.endswith("/**"):
        return re.compile(glob_regex(pattern[:-3]).pattern[:-2] + r"(?:/.*)?\Z")
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        char = pattern[i]
        i += 1
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif (
            char == "["
            and (end := pattern.find("]", i + 1 if pattern[i : i + 1] == "!" else i)) > 0
        ):
            body = pattern[i:end].replace("\\", "\\\\")
            out.append("[^" + body[1:] + "]" if body.startswith("!") else "[" + body + "]")
            i = end + 1
        else:
            out.append(re.escape(char))
    return re.compile("".join(out) + r"\Z")


@dataclass(frozen=True, eq=False, repr=False)
class Matcher(ByValue):
    """Which changed paths (relative to `base`, POSIX separators) trigger a run."""

    base: Path
    roots: tuple[Path, ...]  # what the file system watcher is given
    include: tuple[re.Pattern[str], ...]
    ignore_names: tuple[re.Pattern[str], ...]
    ignore_paths: tuple[re.Pattern[str], ...]
    ignore_abs: tuple[Path, ...] = field(default=())  # the state dir, our own output files

    def relative(self, path: str) -> str:
        """`path` relative to the base when it is under it, else absolute; POSIX separators."""
        absolute = Path(path)
        try:
            return absolute.relative_to(self.base).as_posix() or "."
        except ValueError:
            return absolute.as_posix()

    def accepts(self, path: str) -> bool:
        absolute = Path(path)
        if any(absolute == d or d in absolute.parents for d in self.ignore_abs):
            return False
        rel = self.relative(path)
        parts = rel.split("/")
        if any(part in IGNORED_DIRS for part in parts[:-1]) or parts[-1] in IGNORED_DIRS:
            return False
        if IGNORED_NAME(parts[-1]):
            return False
        if any(rx.match(part) for rx in self.ignore_names for part in parts):
            return False
        prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        if any(rx.match(prefix) for rx in self.ignore_paths for prefix in prefixes):
            return False
        return any(rx.match(prefix) for rx in self.include for prefix in prefixes)


def build_matcher(
    base: str | Path, paths: Iterable[str], ignore: Iterable[str], state_dir: str | Path
) -> Matcher:
    """The watched roots and rules; WatchPathError when a watched path does not exist."""
    base_path = Path(base).resolve()
    roots: list[Path] = []
    include: list[re.Pattern[str]] = []
    for given in paths:
        if not given.strip():
            raise WatchPathError("an empty watch path")
        # The pattern made absolute, then relative to the base when under it (as changes are).
        absolute = os.path.normpath(os.path.join(base_path, given.strip()))
        if _GLOB_CHARS.search(absolute):
            fixed = "/".join(_prefix_without_globs(absolute.split("/"))) or "/"
            root = Path(fixed).resolve()
            pattern = _under(Path(absolute), base_path)
        else:
            root = Path(absolute).resolve()
            pattern = "**" if root == base_path else glob_escape(_under(root, base_path))
        if not root.exists():
            raise WatchPathError(f"watch path {given} does not exist (in {base_path})")
        include.append(glob_regex(pattern))
        # A single file is watched through its directory: editors save by renaming a new file
        # over the old one, which a watch on the file itself would lose.
        roots.append(root if root.is_dir() else root.parent)
    names = [glob_regex(p) for p in ignore if "/" not in p.rstrip("/")]
    rel_paths = [glob_regex(p.strip("/")) for p in ignore if "/" in p.rstrip("/")]
    state = Path(state_dir)
    state = (state if state.is_absolute() else Path.cwd() / state).resolve()
    return Matcher(
        base_path,
        _outermost(roots),
        tuple(include),
        tuple(names),
        tuple(rel_paths),
        (state, *_own_output_files()),
    )


def _own_output_files() -> list[Path]:
    """The files planrun's stdout and stderr are redirected to (`planrun watch … > watch.log`):
    each run writes to them, which must not trigger the next."""
    found = []
    for fd in (1, 2):
        try:
            target = Path(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            continue
        if target.is_absolute() and target.is_file():
            found.append(target.resolve())
    return found


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def _prefix_without_globs(parts: list[str]) -> Iterable[str]:
    for part in parts:
        if _GLOB_CHARS.search(part):
            return
        yield part


def _under(path: Path, base: Path) -> str:
    """`path` relative to `base` when under it, else absolute (as `Matcher.relative`)."""
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return path.as_posix()


def _outermost(roots: list[Path]) -> tuple[Path, ...]:
    """The roots, without those inside another (they would be watched twice)."""
    unique = sorted(set(roots), key=lambda p: len(p.parts))
    kept: list[Path] = []
    for root in unique:
        if not any(k == root or k in root.parents for k in kept):
            kept.append(root)
    return tuple(kept)


def network_filesystems(roots: Iterable[Path]) -> list[tuple[Path, str]]:
    """Each root that lives on a network file system, with its type (from /proc/self/mountinfo)."""
    try:
        lines = Path("/proc/self/mountinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    mounts: list[tuple[str, str]] = []
    for line in lines.splitlines():
        left, _, right = line.partition(" - ")
        fields, kinds = left.split(), right.split()
        if len(fields) >= 5 and kinds:
            mount_point = fields[4].encode().decode("unicode_escape")  # `\040` for a space
            mounts.append((mount_point, kinds[0]))
    found = []
    for root in roots:
        best = max(
            (m for m in mounts if root == Path(m[0]) or Path(m[0]) in root.parents),
            key=lambda m: len(m[0]),
            default=None,
        )
        if best is not None and best[1] in NETWORK_FS:
            found.append((root, best[1]))
    return found


class ChangeSource:
    """A daemon thread watching the roots; each batch of accepted paths goes to `sink`.

    `start` returns once the watches are in place (changes from then on are seen) or raises
    OSError or RuntimeError when they cannot be set up (the inotify limits on watches or
    instances: the caller retries with polling; PermissionError: an unreadable directory)."""

    def __init__(
        self,
        matcher: Matcher,
        sink: Callable[[list[str]], None],
        on_error: Callable[[BaseException], None],
        poll: bool,
    ) -> None:
        self.matcher = matcher
        self.sink = sink
        self.on_error = on_error
        self.poll = poll
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        from watchfiles._rust_notify import RustNotify  # the documented low-level API

        # ignore_permission_denied=False: with True, watchfiles also drops the inotify limit
        # error and leaves directories unwatched without a word.
        notify = RustNotify(
            [str(r) for r in self.matcher.roots], False, self.poll, POLL_INTERVAL_MS, True, False
        )
        self._thread = threading.Thread(
            target=self._run, args=(notify,), name="planrun-watch", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self, notify: object) -> None:
        try:
            with notify:  # type: ignore[attr-defined]
                while not self._stop.is_set():
                    raw = notify.watch(STEP_MS, STEP_MS, 500, self._stop)  # type: ignore[attr-defined]
                    if isinstance(raw, str):  # "timeout", "stop" or "signal" (main thread only)
                        continue
                    accepts, relative = self.matcher.accepts, self.matcher.relative
                    paths = sorted(
                        {relative(p) for change, p in raw if _counts(change, p) and accepts(p)}
                    )
                    if paths:
                        self.sink(paths)
        except Exception as exc:  # a watched directory removed, an I/O error: the loop reports
            self.on_error(exc)


MODIFIED = 2  # watchfiles.Change.modified


def _counts(change: int, path: str) -> bool:
    """A directory's own `modified` (its entries changed; polling reports it) is not a change
    of its own: the entry that was added or removed is reported as well."""
    return change != MODIFIED or not os.path.isdir(path)


def inotify_limit_hint(exc: Exception) -> str:
    """The one-line explanation of a watch that could not be set up."""
    # /proc/sys/user/ holds the limits of this user namespace (the ones in force in a
    # container); fs.inotify.* those of the machine's.
    limit = _read_int("/proc/sys/user/max_inotify_watches") or _read_int(
        "/proc/sys/fs/inotify/max_user_watches"
    )
    instances = _read_int("/proc/sys/user/max_inotify_instances")
    if instances is None:
        instances = _read_int("/proc/sys/fs/inotify/max_user_instances")
    known = f" (max_user_watches={limit}, max_user_instances={instances})" if limit else ""
    return (
        f"cannot watch with inotify: {exc}{known}; polling every {POLL_INTERVAL_MS / 1000:g}s"
        " instead. Raise the limit (sysctl fs.inotify.max_user_watches=524288) or watch fewer"
        " paths"
    )


def _read_int(path: str) -> int | None:
    try:
        return int(Path(path).read_text().strip())
    except (OSError, ValueError):
        return None


__all__ = ["ChangeSource", "Matcher", "WatchPathError", "build_matcher"]
