"""What interrupts a run: the signal handlers that count interrupts for the executor's loop."""

from __future__ import annotations

import signal
from collections.abc import Callable
from types import FrameType
from typing import Any

# What interrupts a run: Ctrl-C, `kill`, and the terminal or SSH session going away (SIGHUP, as
# in make; `nohup planrun …` has it ignored and runs on).
INTERRUPTS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupts:
    """SIGINT/SIGTERM/SIGHUP handlers that only count; the executor's loop acts on the count.

    The runner installs them before it records the run, so an interrupt from then on cancels
    the run cleanly instead of leaving it `interrupted`. A signal planrun was started with
    ignored stays ignored (docs/cli.md)."""

    def __init__(self) -> None:
        self.count = 0
        self.wake: Callable[[], None] = _no_wake  # the executor's, once it exists
        self.installed = False
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        if self.installed:
            return
        self.installed = True
        for signum in INTERRUPTS:
            if signal.getsignal(signum) is not signal.SIG_IGN:
                self._previous[signum] = signal.signal(signum, self._handle)

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
        self.installed = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1
        self.wake()


def _no_wake() -> None:
    """Before the executor's loop exists there is nothing to wake: it reads the count first."""
