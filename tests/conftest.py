"""Make tests/support.py importable from every test directory; let SIGINT reach planrun; kill
what a test leaves running."""

import contextlib
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

sys.path.insert(0, str(Path(__file__).parent))

# planrun keeps SIGINT and SIGTERM ignored when it starts with them ignored (docs/cli.md), and an
# ignored signal is inherited through exec. Should the suite itself run with them ignored (a
# background job of a script), handle them here, so that the planrun processes the tests start
# get them as a terminal's Ctrl-C or a `kill` would deliver them.
for _signum in (signal.SIGINT, signal.SIGTERM):
    if signal.getsignal(_signum) is signal.SIG_IGN:
        signal.signal(_signum, signal.default_int_handler)


@pytest.fixture
def spawned() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test starts (support.start_planrun): whatever still runs at the end is killed."""
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


@pytest.fixture(autouse=True)
def _no_process_outlives_its_test() -> Iterator[None]:
    """A safety net under each test's own clean-up: the descendants of this pytest process that
    the test started and left running (a server whose test failed before stopping it) are
    killed. Processes that existed before the test (a session's Dask cluster) are left alone."""
    me = psutil.Process()
    before = {(p.pid, p.create_time()) for p in _descendants(me)}
    yield
    left = [p for p in _descendants(me) if (p.pid, p.create_time()) not in before]
    for proc in left:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(left, timeout=10)


def _descendants(proc: psutil.Process) -> list[psutil.Process]:
    try:
        found = proc.children(recursive=True)
    except psutil.Error:
        return []
    alive = []
    for child in found:
        with contextlib.suppress(psutil.Error):
            child.create_time()
            alive.append(child)
    return alive
