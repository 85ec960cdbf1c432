"""Which launcher runs a plan's attempts, by `--executor URL` (`$PLANRUN_EXECUTOR`): this
machine's process set or a Dask cluster (docs/distributed.md); and `--resume`'s sweep of the
attempts a dead planrun left running on the cluster's workers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from planrun.core.launcher import Launcher, LauncherError

if TYPE_CHECKING:
    from planrun.core.ir import IR
    from planrun.store import AttemptInfo

# `planrun PLAN --executor URL`: where the run's attempts go [default: this machine].
EXECUTOR_ENV = "PLANRUN_EXECUTOR"
LOCAL = "local"


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
    remote = [
        tags[(a.step_id, a.attempt)]
        for a in attempts
        if a.pid is None and (a.step_id, a.attempt) in tags
    ]
    return launcher.kill_leftovers(remote) if launcher is not None and remote else 0
