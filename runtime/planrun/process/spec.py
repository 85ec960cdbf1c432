"""The limits of local attempts: tags, graces, tails, pump and wait sizes."""

from __future__ import annotations

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
