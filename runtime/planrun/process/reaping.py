"""What each turn of ProcessSet.wait does for the running attempts: reap their main processes,
fire their deadlines (timeout, heartbeat, kill grace), push their trees to death (the process
group, adopted orphans), drain their pumps, and record them finished. docs/process.md."""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import time
from collections.abc import Iterable

from planrun.core.launcher import Finished, Outcome
from planrun.process.attempt import UNOWNED, Attempt, Nobody, classify, secs
from planrun.process.orphans import child_pids, environ_tag
from planrun.process.output import Pump, log_state, stderr_tail
from planrun.process.spec import DRAIN_GRACE_SEC, LEFTOVER_GRACE_SEC
from planrun.procinfo import ProcStat, proc_stat


class Reaper:
    """The part of ProcessSet that drives attempts to their end; ProcessSet sets these up."""

    _attempts: dict[str, Attempt]
    _by_pid: dict[int, Attempt]
    _by_tag: dict[str, Attempt]
    _tags: dict[int, tuple[int, str | None]]  # adopted pid -> (starttime, tag)
    # Adopted pid that neither tag nor session attributes -> (starttime, the attempts running
    # when it was first seen): one of them started it.
    _suspects: dict[int, tuple[int, tuple[Attempt, ...]]]
    _finished: list[Finished]
    _own_sid: int
    _own_pgrp: int
    _selector: selectors.BaseSelector
    # pid -> pidfd of the processes whose exit must wake wait(): attempt
    # main processes, and adopted leftovers of attempts being stopped.
    _watched: dict[int, int]

    def _pump(self, pump: Pump) -> None:
        fd = pump.read_fd
        if fd >= 0 and not pump.pump():
            self._selector.unregister(fd)

    def _watch(self, pid: int) -> None:
        """Make the exit of `pid`, our unreaped child, wake wait().

        A pidfd is readable from the moment the process exits: unlike a
        Python-level SIGCHLD handler, it cannot miss an exit that happens just
        before the select.
        """
        if pid in self._watched:
            return
        try:
            fd = os.pidfd_open(pid)
        except OSError:  # Linux < 5.3: SIGCHLD alone wakes us
            return
        self._watched[pid] = fd
        self._selector.register(fd, selectors.EVENT_READ)

    def _unwatch(self, pid: int) -> None:
        fd = self._watched.pop(pid, None)
        if fd is not None:
            self._selector.unregister(fd)
            os.close(fd)

    def _deadlines(self) -> Iterable[float | None]:
        for att in self._attempts.values():
            if att.status is None and att.outcome is None:
                yield att.deadline
                yield att.hb_at
            yield att.kill_at
            yield att.drain_until

    def _service(self, child_event: bool) -> None:
        if child_event:
            self._reap()
        now = time.monotonic()
        for att in self._attempts.values():
            self._fire_deadlines(att, now)
        ending = [
            a for a in self._attempts.values() if a.status is not None or a.outcome is not None
        ]
        if not (child_event or ending):
            return
        adopted = self._sweep()
        for att in ending:
            if self._advance(att, adopted.get(att, []), now) and self._drained(att, now):
                self._finish(att, now)

    def _reap(self) -> None:
        # Per-pid waits: waitpid(-1) could steal the status of a child the host
        # process is waiting for (subprocess.run in the executor).
        for att in self._attempts.values():
            if att.status is None:
                self._reap_main(att)
        for pid in [pid for pid in self._watched if pid not in self._by_pid]:
            self._reap_adopted(pid)

    def _reap_main(self, att: Attempt) -> None:
        try:
            pid, status = os.waitpid(att.pid, os.WNOHANG)
        except ChildProcessError:  # the host reaped it: a broken constraint, see docs
            pid, status, att.status_lost = att.pid, 0, True
        if pid:
            att.status = status
            self._unwatch(att.pid)
            if att.popen is not None:  # so Popen never waits for it again
                att.popen.returncode = os.waitstatus_to_exitcode(status)

    def _fire_deadlines(self, att: Attempt, now: float) -> None:
        if att.status is None and att.outcome is None:
            if att.deadline is not None and now >= att.deadline:
                limit = secs(att.spec.timeout_sec or 0.0)
                self._stop(att, "timeout", f"timed out after {limit}s", att.spec.kill_grace_sec)
            elif (hb_at := att.hb_at) is not None and now >= hb_at:
                self._check_heartbeat(att, now)
        if att.kill_at is not None and now >= att.kill_at:
            self._escalate(att)

    def _check_heartbeat(self, att: Attempt, now: float) -> None:
        sizes, newest_mtime = log_state(att.spec)
        if sizes == att.sizes:
            limit = secs(att.spec.heartbeat_timeout_sec or 0.0)
            self._stop(att, "stalled", f"no output for {limit}s (stalled)", att.spec.kill_grace_sec)
            return
        # Date the last write by the files' mtime so a stall is declared one
        # heartbeat after the last byte, not up to two; clamp to the interval
        # since the previous look so a wall-clock jump cannot distort it.
        age = max(0.0, time.time() - newest_mtime)
        att.last_output = min(now, max(att.hb_checked, now - age))
        att.sizes = sizes
        att.hb_checked = now

    def _stop(self, att: Attempt, outcome: Outcome, reason: str, grace: float) -> None:
        att.outcome, att.reason = outcome, reason
        self._terminate(att, grace)

    def _terminate(self, att: Attempt, grace: float) -> None:
        if grace <= 0:
            self._escalate(att)
            return
        att.kill_at = time.monotonic() + grace
        self._signal_group(att, signal.SIGTERM)
        self._signal_group(att, signal.SIGCONT)  # a stopped process must run to see SIGTERM

    def _escalate(self, att: Attempt) -> None:
        att.killing, att.kill_at = True, None
        self._signal_group(att, signal.SIGKILL)

    def _signal_group(self, att: Attempt, sig: int) -> bool:
        """Signal the attempt's process group; return whether it still has members."""
        if att.group_gone:
            return False
        try:
            os.killpg(att.pid, sig)
        except ProcessLookupError:
            # Empty for good: its id can now be recycled, never signal it again.
            att.group_gone = True
        return not att.group_gone

    def _advance(self, att: Attempt, adopted: list[tuple[int, int]], now: float) -> bool:
        """Push the rest of a stopping or exited attempt's tree towards death.

        Returns True once nothing is left: the main process is reaped, the
        process group is empty, and no adopted orphan carries its tag.
        """
        if att.status is not None and not self._signal_group(att, 0) and not adopted:
            return True
        if att.kill_at is None and not att.killing:
            # Exited on its own but left processes behind.
            self._terminate(att, min(att.spec.kill_grace_sec, LEFTOVER_GRACE_SEC))
        for pid, _ in adopted:
            self._watch(pid)  # its death may be the last event of this tree
        if att.killing:
            self._signal_group(att, signal.SIGKILL)
            for pid, pgrp in adopted:
                self._signal_adopted(pid, pgrp, signal.SIGKILL)
        elif att.kill_at is not None:
            for pid, pgrp in adopted:
                if pid not in att.termed:
                    att.termed.add(pid)
                    self._signal_adopted(pid, pgrp, signal.SIGTERM)
                    self._signal_adopted(pid, pgrp, signal.SIGCONT)
        return False

    def _drained(self, att: Attempt, now: float) -> bool:
        """The tree is dead: its pipes reach EOF at once, unless a process nobody could
        attribute to the attempt still holds one; that one gets DRAIN_GRACE_SEC."""
        for pump in att.pumps:
            self._pump(pump)
        if all(pump.read_fd < 0 for pump in att.pumps):
            return True
        if att.drain_until is None:
            att.drain_until = now + DRAIN_GRACE_SEC
            return False
        if now < att.drain_until:
            return False
        for pump in att.pumps:
            if pump.read_fd >= 0:
                self._selector.unregister(pump.read_fd)
                pump.close()
        return True

    def _signal_adopted(self, pid: int, pgrp: int, sig: int) -> None:
        # Safe from pid reuse: it is our child and not reaped yet. Its group is
        # signalled only when it leads it, so that id is pinned by it too.
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
            if pgrp == pid and pgrp != self._own_pgrp:
                os.killpg(pgrp, sig)

    def _sweep(self) -> dict[Attempt, list[tuple[int, int]]]:
        """Reap adopted zombies; return the live adopted orphans of each attempt.

        Only children in a session other than ours are considered: every
        attempt runs in a session of its own, whereas children the host
        spawns normally share our session and are left to their owner.
        """
        found: dict[Attempt, list[tuple[int, int]]] = {}
        for pid in child_pids():
            if pid in self._by_pid:
                continue
            st = proc_stat(pid)
            if st is None or st.session == self._own_sid:
                continue
            if st.state in ("Z", "X"):
                self._reap_adopted(pid)
                continue
            att = self._attribute(pid, st)
            if isinstance(att, Nobody):  # no step still running can own it: kill it now
                self._signal_adopted(pid, st.pgrp, signal.SIGKILL)
                self._watch(pid)  # reaped when it is gone
            elif att is not None:
                found.setdefault(att, []).append((pid, st.pgrp))
        return found

    def _reap_adopted(self, pid: int) -> None:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == 0:
                return  # still running
        except ChildProcessError:
            pass
        self._tags.pop(pid, None)
        self._suspects.pop(pid, None)
        self._unwatch(pid)

    def _attribute(self, pid: int, st: ProcStat) -> Attempt | Nobody | None:
        """The attempt an adopted orphan belongs to: by its tag, else by its session; None while
        that cannot be told yet, UNOWNED when it belongs to no running attempt."""
        cached = self._tags.get(pid)
        if cached is None or cached[0] != st.starttime:
            cached = (st.starttime, environ_tag(pid))
            self._tags[pid] = cached
        tag = cached[1]
        owner = self._by_tag.get(tag) if tag is not None else None
        # A step that scrubbed its environment: fall back to its session.
        owner = owner or self._by_pid.get(st.session)
        return owner if owner is not None else self._suspected_owner(pid, st.starttime)

    def _suspected_owner(self, pid: int, starttime: int) -> Attempt | Nobody | None:
        """An orphan that left its step's session and scrubbed its environment (`env -i setsid
        daemon`) descends from one of the attempts running when it was first seen. Once a
        single one of them is left, it is that attempt's, and dies with its tree; if none is
        left, it is nobody's and is killed at once (docs/process.md)."""
        seen = self._suspects.get(pid)
        if seen is None or seen[0] != starttime:
            seen = (starttime, tuple(self._attempts.values()))
            self._suspects[pid] = seen
        alive = [att for att in seen[1] if self._attempts.get(att.key) is att]
        if not alive:
            return UNOWNED
        return alive[0] if len(alive) == 1 else None

    def _finish(self, att: Attempt, now: float) -> None:
        del self._attempts[att.key]
        del self._by_pid[att.pid]
        del self._by_tag[att.tag]
        outcome, exit_code, sig, reason = classify(att)
        duration = now - att.t0
        self._finished.append(
            Finished(
                key=att.key,
                outcome=outcome,
                exit_code=exit_code,
                signal=sig,
                reason=reason,
                stderr_tail=stderr_tail(att.spec.stderr_path),
                duration_sec=duration,
                started_at=att.started_at,
                finished_at=att.started_at + duration,
                order=att.pumps[0].order[0] if att.pumps and att.pumps[0].order else None,
            )
        )
