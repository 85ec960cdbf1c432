"""Spawning step attempts and controlling their process trees.

One attempt = one child process in its own session (so its pid is also its process group id and
session id), stdin on /dev/null, stdout/stderr written straight into log files. Completion is the
exit of that main process; the attempt is only reported once everything it left behind is dead
too. See docs/process.md for the design (subreaper, reaping rules, kill sequence, heartbeat) and
its limits.

Here: spec (the limits; an attempt's LaunchSpec, Started and Finished are the launcher
vocabulary of planrun.core.launcher), spawn (starting the main process), output
(log files, masked pumps, stderr's tail), attempt (one tracked attempt), reaping (the wait loop's
work: deadlines, kills, orphans), orphans (subreaper, attempt tags), process_set (ProcessSet),
leftovers (kill_leftover, for resume). May import: the runtime's leaf modules (procinfo, safefs,
failure, masking, writes; launcher for types only), never the store, the executor or planc.
Import from here.
"""

from planrun.process.leftovers import kill_leftover
from planrun.process.output import stderr_tail
from planrun.process.process_set import ProcessSet
from planrun.process.spec import (
    CLOSE_TIMEOUT_SEC,
    DRAIN_GRACE_SEC,
    LEFTOVER_GRACE_SEC,
    MAX_SELECT_SEC,
    PUMP_CHUNK,
    TAG_VAR,
    TAIL_BYTES,
    TAIL_LINES,
)

__all__ = [
    "CLOSE_TIMEOUT_SEC",
    "DRAIN_GRACE_SEC",
    "LEFTOVER_GRACE_SEC",
    "MAX_SELECT_SEC",
    "PUMP_CHUNK",
    "TAG_VAR",
    "TAIL_BYTES",
    "TAIL_LINES",
    "ProcessSet",
    "kill_leftover",
    "stderr_tail",
]
