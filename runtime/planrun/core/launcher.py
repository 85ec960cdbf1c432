"""The launcher seam: what the executor asks of whatever runs its attempts, and the attempt's
vocabulary (its spec, its start, its end) every launcher speaks (docs/distributed.md).

`process.ProcessSet` is the local launcher; `planrun.dask_launcher` runs attempts on a Dask
cluster; `replay.ReplayLauncher` ends each attempt as it starts (`planc simulate`, `--dry-run`).
The executor's loop (`loop.Loop`) talks only to this protocol, so it does not know where a step
runs, or whether it runs at all.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal, Protocol

from planrun.core.byvalue import ByValue
from planrun.core.failure import WriteOrder

# "lost": a remote attempt whose worker died (planrun.dask_launcher)
Outcome = Literal["exited", "signalled", "timeout", "stalled", "cancelled", "spawn_error", "lost"]


class LauncherError(Exception):
    """The launcher cannot be used (unreachable scheduler, a resource no worker offers, ...):
    one human line; the run is refused before anything is recorded (exit 2)."""


@dataclass(frozen=True, eq=False, repr=False)
class Placement(ByValue):
    """Where a remote attempt landed, once its worker reports it (the `step_placed` event)."""

    key: str
    worker: str
    host: str
    pid: int


class Launcher(Protocol):
    """Starts, stops and waits for attempts, one per key (a step id) at a time."""

    def start(self, key: str, spec: LaunchSpec) -> Started:
        """Start an attempt; raises process.SpawnError when it cannot start."""
        ...

    def wait(self, timeout: float | None) -> list[Finished]:
        """Attempts that ended; [] after `timeout` seconds or a `wakeup()`."""
        ...

    def wakeup(self) -> None:
        """Make a blocked `wait` return (safe from a signal handler and from other threads)."""
        ...

    def cancel(self, key: str) -> None:
        """Stop an attempt gracefully (SIGTERM, the grace, SIGKILL); it ends `cancelled`."""
        ...

    def kill_all(self) -> None:
        """Kill every attempt's tree at once."""
        ...

    def placements(self) -> list[Placement]:
        """Placements reported since the last call (none for local attempts)."""
        ...

    def kill_leftovers(self, tags: list[str]) -> int:
        """`--resume`: kill the trees that attempts of a dead planrun, recorded with these tags
        and no pid (they ran elsewhere), left wherever this launcher runs attempts; return once
        they are dead, with how many there were. LauncherError when that cannot be made sure
        of. Attempts that ran here have a pid, and resume kills those itself."""
        ...

    @property
    def running(self) -> int: ...

    def __contains__(self, key: object) -> bool: ...

    def close(self) -> None:
        """Kill what still runs and release everything."""
        ...


@dataclass(frozen=True, eq=False, repr=False)
class LaunchSpec(ByValue):
    argv: list[str]  # final: for shell steps the caller passes ["/bin/sh", "-c", "..."]
    cwd: str  # absolute
    env: dict[str, str]  # the complete environment
    stdout_path: str  # created afresh (0600) and handed to the child; may equal stderr_path
    stderr_path: str
    timeout_sec: float | None  # wall clock
    heartbeat_timeout_sec: float | None  # no new bytes in stdout or stderr for this long
    kill_grace_sec: float  # SIGTERM -> grace -> SIGKILL
    # Secrets to mask (masking.patterns_for). When given, the child writes into pipes and
    # planrun copies the output, masked, into the log files: the one place output is written.
    mask_patterns: tuple[bytes, ...] = ()
    # Also copy the output, masked, to these descriptors (stdout's, stderr's): `planrun exec`
    # shows the command's output live. It takes the masking path, pipes and pumps, with or
    # without secrets; a descriptor that fails is dropped, the log is still written.
    echo_fds: tuple[int, int] | None = None
    # The directory of the two logs, opened without following links (RunStore.log_dir_fd): the
    # logs are created relative to it (openat), so no link planted by a step is followed.
    log_dir_fd: int | None = None


@dataclass(frozen=True, eq=False, repr=False)
class Started(ByValue):
    pid: int | None  # None: a remote attempt (launcher.Placement tells where it runs)
    pgid: int | None
    proc_start_time: float | None  # psutil.Process(pid).create_time()
    tag: str  # the PLANRUN_ATTEMPT_TAG value; lets kill_leftover() find escaped daemons


@dataclass(frozen=True, eq=False, repr=False)
class Finished(ByValue):
    key: str
    outcome: Outcome
    exit_code: int | None  # only for "exited"
    signal: int | None  # only for "signalled"
    reason: str
    stderr_tail: str
    duration_sec: float
    started_at: float
    finished_at: float
    order: WriteOrder | None = None  # pumped attempts: their last output, in the order written

    @classmethod
    def from_spawn_error(cls, key: str, error: SpawnError) -> Finished:
        """The record of an attempt that could not start (start() raised)."""
        now = time.time()
        return cls(key, "spawn_error", None, None, error.reason, "", 0.0, now, now)


class SpawnError(Exception):
    """The attempt could not be started; `reason` is one human line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
