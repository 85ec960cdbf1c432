"""What a launcher is given and gives back: the spec of an attempt, its start and its end."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from planrun.failure import WriteOrder

# "lost": a remote attempt whose worker died (planrun.dask_launcher)
Outcome = Literal["exited", "signalled", "timeout", "stalled", "cancelled", "spawn_error", "lost"]

TAG_VAR = "PLANRUN_ATTEMPT_TAG"
# Leftovers of a step that already exited on its own get a short SIGTERM grace:
# the step's result is known, they only delay the next step.
LEFTOVER_GRACE_SEC = 1.0
TAIL_LINES = 20
TAIL_BYTES = 4096
# close() gives up on processes that do not die from SIGKILL within this time
# (uninterruptible sleep); it must not hang the caller forever.
CLOSE_TIMEOUT_SEC = 10.0
PUMP_CHUNK = 65536
# Masked output only: after the tree is dead, how long a pipe still held open by a process we
# could not attribute may delay the attempt's end.
DRAIN_GRACE_SEC = 1.0
# The longest single epoll wait: epoll's timeout overflows past ~2^31 ms, and a plan may ask for
# any timeout (`timeout_sec: 1e10` is valid); a longer wait is a series of these.
MAX_SELECT_SEC = 3600.0


@dataclass(frozen=True)
class LaunchSpec:
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


@dataclass(frozen=True)
class Started:
    pid: int | None  # None: a remote attempt (launcher.Placement tells where it runs)
    pgid: int | None
    proc_start_time: float | None  # psutil.Process(pid).create_time()
    tag: str  # the PLANRUN_ATTEMPT_TAG value; lets kill_leftover() find escaped daemons


@dataclass(frozen=True)
class Finished:
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
