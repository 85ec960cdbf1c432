"""A real Dask cluster on 127.0.0.1 (cluster.py) for the tests of this directory, stopped (every
process group) when the test or module is done. Skipped when the dask extra (distributed) is
not installed. Under pytest-xdist (`--dist loadgroup`) this directory's tests go to one worker,
so that they share one module cluster rather than each worker starting its own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from cluster import Cluster, start_cluster

TWO_WORKERS = {"cpu": [], "gpu": ["--resources", "gpu=1"]}
HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.xdist_group("dask"))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Shared by a module's tests: two workers, one offering gpu=1."""
    started = start_cluster(tmp_path_factory.mktemp("cluster"), TWO_WORKERS)
    yield started
    started.stop()


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A cluster of the test's own, for tests that kill a worker."""
    started = start_cluster(tmp_path / "cluster", TWO_WORKERS)
    yield started
    started.stop()
