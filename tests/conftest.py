"""Make tests/support.py importable from every test directory; let SIGINT reach planrun; kill
what a test leaves running."""

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

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
