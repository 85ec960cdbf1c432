"""A real Dask cluster on 127.0.0.1 (cluster.py) for the tests of this directory, stopped (every
process group) when the test or module is done. Skipped when the dask extra (distributed) is
not installed. Under pytest-xdist, `--dist loadfile` keeps each file on one worker, so a
module's tests share its one cluster (`--dist loadgroup` with an xdist_group mark would be the
finer tool, but pytest-xdist 3.8 on pytest 9.2 ignores the mark: pytest-xdist#1386)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from cluster import Cluster, start_cluster

TWO_WORKERS = {"cpu": [], "gpu": ["--resources", "gpu=1"]}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Shared by a module's tests: two workers, one offering gpu=1. Not by the session's: an
    in-process run of a later test (its ProcessSet, a subreaper) would take the cluster's
    processes, this process's children in sessions of their own, for orphans of its steps."""
    started = start_cluster(tmp_path_factory.mktemp("cluster"), TWO_WORKERS)
    yield started
    started.stop()


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A cluster of the test's own, for tests that kill a worker."""
    started = start_cluster(tmp_path / "cluster", TWO_WORKERS)
    yield started
    started.stop()
