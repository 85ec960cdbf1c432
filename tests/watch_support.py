"""Shared by the `planrun watch` tests: start a real watcher, read what it recorded."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from support import wait_for

from planrun.store import NoStateError, open_reader
from planrun.watch_state import read_watchers


class Watcher:
    """A `planrun watch` child process; its output goes to files (a long-running watcher would
    fill a pipe nobody reads)."""

    def __init__(
        self,
        args: list[str],
        cwd: Path,
        procs: list[subprocess.Popen[str]],
        state: Path,
        env: dict[str, str] | None = None,
        prefix: tuple[str, ...] = (),
    ) -> None:
        self.cwd = cwd
        self.state = state
        # Beside the state dir: outside whatever the watcher watches.
        state.mkdir(parents=True, exist_ok=True)
        self.out_path = state.parent / f"{state.name}-watch-{os.getpid()}-{len(procs)}.out"
        self.err_path = self.out_path.with_suffix(".err")
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            self.proc = subprocess.Popen(
                [
                    *prefix,
                    sys.executable,
                    "-m",
                    "planrun",
                    "watch",
                    "--state-dir",
                    str(state),
                    *args,
                ],
                cwd=cwd,
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                text=True,
                env=env,
            )
        procs.append(self.proc)

    @property
    def stderr(self) -> str:
        return self.err_path.read_text()

    def runs(self) -> list[dict[str, Any]]:
        """The recorded runs, oldest first: id, status and run_started's `watch`."""
        try:
            reader = open_reader(self.state)
        except NoStateError:
            return []
        with reader:
            infos = reader.runs(100_000)
            found = []
            for info in reversed(infos):
                started = reader.events(info.run_id)[0]
                found.append(
                    {
                        "run_id": info.run_id,
                        "status": info.status,
                        "watch": started.payload.get("watch"),
                    }
                )
            return found

    def finished_runs(self) -> int:
        try:
            reader = open_reader(self.state)
        except NoStateError:
            return 0
        with reader:
            infos = reader.runs(100_000)
        return sum(1 for r in infos if r.status not in ("running", "interrupted"))

    def wait_runs(self, count: int, timeout: float = 60) -> list[dict[str, Any]]:
        """Wait until `count` runs have finished (and the watcher is between runs)."""
        wait_for(
            lambda: self.finished_runs() >= count and self.watcher_state() != "running",
            timeout,
            f"{count} finished runs (stderr: {self.stderr[-2000:]})",
        )
        return self.runs()

    def watcher(self) -> dict[str, Any] | None:
        found = read_watchers(self.state, live_only=False)
        return found[0] if found else None

    def watcher_state(self) -> str | None:
        state = self.watcher()
        return None if state is None else str(state["state"])

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 30) -> int:
        self.proc.send_signal(signum)
        return self.proc.wait(timeout=timeout)


def shell_step(step_id: str, script: str, **more: Any) -> dict[str, Any]:
    return {"id": step_id, "command": script, "shell": True, "timeout_sec": 60, **more}
