"""Starting an attempt's main process: posix_spawn when it runs in our cwd, Popen otherwise, in a
session of its own; a failed start explained in one line (SpawnError)."""

from __future__ import annotations

import errno
import os
import signal
import stat
from typing import TYPE_CHECKING

from planrun.core.launcher import LaunchSpec, SpawnError
from planrun.process.output import Pump, masked_streams, open_logs

if TYPE_CHECKING:  # subprocess is imported only for steps that need Popen (another cwd)
    import subprocess

# Python ignores these at startup; a step must see the defaults (as with Popen).
_RESET_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ)


def spawn(
    spec: LaunchSpec, env: dict[str, str], devnull: int
) -> tuple[int, subprocess.Popen[bytes] | None, list[Pump]]:
    """Start `spec` with `env`, stdin on `devnull`: its pid, its Popen (None when posix_spawn
    started it) and the pumps of its output (none when it writes straight into its logs)."""
    # posix_spawn costs the parent about half of what Popen does (measured,
    # docs/process.md) but cannot change directory: it is used whenever the
    # step runs in our own cwd, which is the common case.
    logs = open_logs(spec)
    piped = spec.mask_patterns or spec.echo_fds
    out, err, pumps = masked_streams(logs, spec) if piped else (*logs, [])
    try:
        if spec.cwd == _getcwd():
            return _posix_spawn(spec, env, devnull, out, err), None, pumps
        proc = _popen(spec, env, devnull, out, err)
        return proc.pid, proc, pumps
    except (OSError, ValueError) as exc:
        for pump in pumps:
            pump.close()
        if isinstance(exc, ValueError):  # a NUL character: no exec can pass it on
            raise _nul_error(spec, env) from None
        raise _spawn_error(exc, spec, env) from None
    finally:
        os.close(out)
        if err != out:
            os.close(err)


def _posix_spawn(spec: LaunchSpec, env: dict[str, str], devnull: int, out: int, err: int) -> int:
    actions = [
        (os.POSIX_SPAWN_DUP2, devnull, 0),
        (os.POSIX_SPAWN_DUP2, out, 1),
        (os.POSIX_SPAWN_DUP2, err, 2),
    ]
    argv0 = spec.argv[0]
    if "/" in argv0 or env.get("PATH") == os.environ.get("PATH"):
        # posix_spawnp searches our own PATH, which is the step's here; it
        # is cheaper than searching from Python (~75 us with a long PATH).
        start, executable = os.posix_spawnp, argv0
    else:
        start, executable = os.posix_spawn, _resolve(argv0, spec.cwd, env)
    return start(
        executable,
        spec.argv,
        env,
        file_actions=actions,
        setsid=True,
        setsigdef=_RESET_SIGNALS,
    )


def _popen(
    spec: LaunchSpec, env: dict[str, str], devnull: int, out: int, err: int
) -> subprocess.Popen[bytes]:
    import subprocess

    # Popen searches the PATH of `env`, in the child.
    return subprocess.Popen(
        spec.argv,
        cwd=spec.cwd,
        env=env,
        stdin=devnull,
        stdout=out,
        stderr=err,
        start_new_session=True,
    )


def _getcwd() -> str | None:
    try:
        return os.getcwd()
    except OSError:  # our own cwd was removed: every step takes the Popen path
        return None


def _nul_error(spec: LaunchSpec, env: dict[str, str]) -> SpawnError:
    """A command line, environment or cwd holding a NUL character (e.g. from an interpolated
    output): the kernel takes C strings, so the step cannot start."""
    for index, arg in enumerate(spec.argv):
        if "\0" in arg:
            where = "the command" if index == 0 else f"argument {index}"
            return SpawnError(f"{where} contains a NUL character, which no program can receive")
    for name, value in env.items():
        if "\0" in name or "\0" in value:
            shown = name.partition("\0")[0]
            return SpawnError(
                f"environment variable {shown} contains a NUL character, which no program can"
                " receive"
            )
    return SpawnError("the cwd contains a NUL character")


def _spawn_error(exc: OSError, spec: LaunchSpec, env: dict[str, str]) -> SpawnError:
    """Explain a failed spawn in one line; only runs on the error path."""
    argv0 = spec.argv[0]
    if exc.filename == spec.cwd:  # Popen's chdir in the child failed
        if exc.errno == errno.ENOENT:
            return SpawnError(f"cwd does not exist: {spec.cwd}")
        if exc.errno == errno.ENOTDIR:
            return SpawnError(f"cwd is not a directory: {spec.cwd}")
        return SpawnError(f"cwd not usable: {spec.cwd}: {exc.strerror}")
    try:
        _resolve(argv0, spec.cwd, env)
    except SpawnError as err:  # not found, or found but not executable
        return err
    if exc.errno in (errno.EACCES, errno.EPERM):
        return SpawnError(f"permission denied: {argv0}")
    if exc.errno == errno.ENOEXEC:
        return SpawnError(f"exec format error: {argv0}")
    if exc.errno == errno.ENOENT:  # the file exists, so its interpreter does not
        return SpawnError(f"cannot execute {argv0}: missing interpreter or loader")
    return SpawnError(f"cannot execute {argv0}: {exc.strerror}")


def _resolve(argv0: str, cwd: str, env: dict[str, str]) -> str:
    """Find the program like execvp would, with the step's PATH and cwd."""
    if "/" in argv0:
        if not _is_executable(os.path.join(cwd, argv0), argv0):
            raise SpawnError(f"command not found: {argv0}")
        return argv0  # relative to the child's cwd, like exec
    unusable: SpawnError | None = None
    for directory in os.get_exec_path(env):
        candidate = os.path.join(cwd, directory or ".", argv0)
        try:
            if _is_executable(candidate, argv0):
                return candidate
        except SpawnError as err:
            unusable = unusable or err  # execvp too keeps looking, then reports the first
    raise unusable or SpawnError(f"command not found: {argv0}")


def _is_executable(path: str, argv0: str) -> bool:
    """False when the path does not exist; SpawnError when it exists but cannot run."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return False
    except PermissionError:
        raise SpawnError(f"permission denied: {argv0}") from None
    except OSError as exc:  # e.g. a name too long, a symlink loop
        raise SpawnError(f"cannot execute {argv0}: {exc.strerror}") from None
    if not stat.S_ISREG(mode) or not os.access(path, os.X_OK):
        raise SpawnError(f"permission denied: {argv0}")
    return True
