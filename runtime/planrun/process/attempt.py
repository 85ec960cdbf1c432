"""One running attempt as the process set tracks it, and how its end is classified."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from planrun.core.launcher import LaunchSpec, Outcome
from planrun.process.output import Pump

if TYPE_CHECKING:
    import subprocess


@dataclass(eq=False)
class Attempt:
    key: str
    spec: LaunchSpec
    pid: int
    tag: str
    popen: subprocess.Popen[bytes] | None
    started_at: float  # time.time() at spawn
    t0: float  # time.monotonic() at spawn
    deadline: float | None  # monotonic wall-timeout deadline
    last_output: float  # monotonic estimate of when the logs last grew
    hb_checked: float  # monotonic time of the last heartbeat look
    sizes: tuple[int, int] = (0, 0)
    status: int | None = None  # raw wait status, once the main process is reaped
    status_lost: bool = False  # someone else reaped the main process
    outcome: Outcome | None = None  # set when planrun decided to stop the attempt
    reason: str = ""
    kill_at: float | None = None  # SIGTERM sent; SIGKILL at this monotonic time
    killing: bool = False  # SIGKILL phase
    group_gone: bool = False  # the process group has no member left (never signal it again)
    termed: set[int] = field(default_factory=set)  # adopted pids already sent SIGTERM
    pumps: list[Pump] = field(default_factory=list)  # open masked output streams
    drain_until: float | None = None  # tree dead: give the pumps until then to reach EOF

    @property
    def hb_at(self) -> float | None:
        hb = self.spec.heartbeat_timeout_sec
        return None if hb is None else self.last_output + hb


class Nobody:
    """What an adopted orphan belongs to when no attempt that could have started it is left."""


UNOWNED = Nobody()


def classify(att: Attempt) -> tuple[Outcome, int | None, int | None, str]:
    if att.outcome is not None:
        return att.outcome, None, None, att.reason
    if att.status_lost:
        return "exited", None, None, "exit status lost (reaped outside planrun)"
    status = att.status or 0
    if os.WIFSIGNALED(status):
        num = os.WTERMSIG(status)
        return "signalled", None, num, f"killed by signal {num} ({_signame(num)})"
    code = os.waitstatus_to_exitcode(status)
    return "exited", code, None, f"exit code {code}"


def _signame(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"


def secs(value: float) -> str:
    return f"{value:g}"
