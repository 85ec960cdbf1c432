"""Make tests/support.py importable from every test directory; let SIGINT reach planrun; kill
what a test leaves running; choose the Hypothesis profile."""

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.configuration import set_hypothesis_home_dir
from hypothesis.database import DirectoryBasedExampleDatabase

sys.path.insert(0, str(Path(__file__).parent))

# Hypothesis: the example counts written in the tests are CI's (HYPOTHESIS_PROFILE=ci, set by
# .ci/run); a local run (the default profile, "dev") runs a tenth of each, at least
# DEV_MIN_EXAMPLES. Hypothesis's home (the example database, its caches) lives under the system
# temp dir, so no .hypothesis/ appears in the working tree.
HYPOTHESIS_HOME = Path(tempfile.gettempdir()) / "plan-hypothesis"
DEV_DIVISOR = 10
DEV_MIN_EXAMPLES = 10
set_hypothesis_home_dir(HYPOTHESIS_HOME)
# As Hypothesis's own profile for CI: the same examples on every run, nothing stored.
settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    print_blob=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "dev",
    max_examples=DEV_MIN_EXAMPLES,
    database=DirectoryBasedExampleDatabase(HYPOTHESIS_HOME / "examples"),
)
HYPOTHESIS_PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "dev")
settings.load_profile(HYPOTHESIS_PROFILE)

# planrun keeps SIGINT and SIGTERM ignored when it starts with them ignored (docs/cli.md), and an
# ignored signal is inherited through exec. Should the suite itself run with them ignored (a
# background job of a script), handle them here, so that the planrun processes the tests start
# get them as a terminal's Ctrl-C or a `kill` would deliver them.
for _signum in (signal.SIGINT, signal.SIGTERM):
    if signal.getsignal(_signum) is signal.SIG_IGN:
        signal.signal(_signum, signal.default_int_handler)
# Under `nohup` SIGHUP is ignored the same way: a handler that does nothing lets the suite
# survive the hangup nohup was asked for, while exec resets it to the default in planrun.
if signal.getsignal(signal.SIGHUP) is signal.SIG_IGN:
    signal.signal(signal.SIGHUP, lambda signum, frame: None)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under the dev profile, a test's own `@settings(max_examples=N)` runs N / DEV_DIVISOR."""
    if HYPOTHESIS_PROFILE != "dev":
        return
    functions = {item.obj for item in items if isinstance(item, pytest.Function)}
    tests: set[Any] = {getattr(function, "__func__", function) for function in functions}
    for test in tests:
        if getattr(test, "is_hypothesis_test", False):
            # The attribute @settings itself sets; @given reads it each time the test runs.
            own: settings = test._hypothesis_internal_use_settings
            fewer = min(own.max_examples, max(DEV_MIN_EXAMPLES, own.max_examples // DEV_DIVISOR))
            test._hypothesis_internal_use_settings = settings(own, max_examples=fewer)


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
