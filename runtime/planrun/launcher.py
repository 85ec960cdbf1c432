"""The launcher seam: what the executor asks of whatever runs its attempts (docs/distributed.md).

`process.ProcessSet` is the local launcher; `planrun.dask_launcher` runs attempts on a Dask
cluster; `replay.ReplayLauncher` ends each attempt as it starts (`planc simulate`, `--dry-run`).
The executor's loop (`loop.Loop`) talks only to this protocol, so it does not know where a step
runs, or whether it runs at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from planrun.process import Finished, LaunchSpec, Started

if TYPE_CHECKING:
    from planrun.ir import IR
    from planrun.store import AttemptInfo

# `planrun PLAN --executor URL`: where the run's attempts go [default: this machine].
EXECUTOR_ENV = "PLANRUN_EXECUTOR"
LOCAL = "local"


class LauncherError(Exception):
    """The launcher cannot be used (unreachable scheduler, a resource no worker offers, ...):
    one human line; the run is refused before anything is recorded (exit 2)."""


@dataclass(frozen=True)
class Placement:
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

    @property
    def running(self) -> int: ...

    def __contains__(self, key: object) -> bool: ...

    def close(self) -> None:
        """Kill what still runs and release everything."""
        ...


def open_launcher(url: str | None, ir: IR) -> Launcher | None:
    """The launcher `--executor URL` names; None for this machine (the executor's ProcessSet).
    Dask is imported only here, only for a dask:// URL."""
    if not url or url == LOCAL:
        return None
    try:
        import distributed  # noqa: F401
    except ImportError as exc:
        raise LauncherError(
            f"--executor {url}: needs the dask extra (pip install 'plan[dask]'): {exc}"
        ) from None
    from planrun.dask_launcher import DaskLauncher
    from planrun.run_secrets import secret_names

    has_secrets = bool(secret_names(ir) or ir.model.secret_params)
    return DaskLauncher(url, ir, has_secrets)


def kill_remote_leftovers(
    launcher: Launcher | None, attempts: list[AttemptInfo], tags: dict[tuple[str, int], str]
) -> int:
    """`--resume`: the attempts a dead planrun ran elsewhere (no pid recorded here) are killed
    by their tag on every worker of `launcher` before anything runs again; how many ran.
    LauncherError when the launcher cannot make sure of it: the resume is refused (exit 2)."""
    sweep = getattr(launcher, "kill_leftovers", None)
    remote = [
        tags[(a.step_id, a.attempt)]
        for a in attempts
        if a.pid is None and (a.step_id, a.attempt) in tags
    ]
    return int(sweep(remote)) if sweep is not None and remote else 0
