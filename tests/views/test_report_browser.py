"""`planrun report`: the self-contained HTML file, rendered in headless Chromium, checked for what
a person sees. Set UPDATE_SCREENSHOTS=1 to refresh docs/report.png from this test."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from bigplan import big_plan
from click.testing import CliRunner
from support import REPO, RunResult, run_plan

from planrun.cli import main
from planrun.store import open_reader


def write_report(state_dir: Path, run_id: str, path: Path) -> None:
    result = CliRunner().invoke(
        main, ["report", run_id, "-o", str(path), "--state-dir", str(state_dir)]
    )
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith(f"planrun: wrote {path} (")


def open_report(page: Any, path: Path) -> list[str]:
    """Load the file; return every URL the page asked for (it must need nothing but itself)."""
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(path.as_uri())
    page.wait_for_selector("html[data-ready=true]")
    return requests


def test_report_shows_the_failed_step_and_one_bar_per_attempt(
    sample_run: RunResult, page: Any, tmp_path: Path
) -> None:
    report = tmp_path / "report.html"
    write_report(sample_run.state_dir, sample_run.run_id, report)
    requests = open_report(page, report)
    assert requests == [report.as_uri()]  # no CDN, no fonts, no data fetch

    assert page.locator("#run-status").inner_text() == "success"
    assert page.locator("#run-progress").inner_text() == "6/6"
    assert "null" not in page.locator("header.top").inner_text()

    failed = page.locator('.tile[data-step="test"]')
    assert failed.get_attribute("data-status") == "failed"
    assert "s-failed" in (failed.get_attribute("class") or "")
    assert failed.inner_text().split()[:2] == ["✗", "test"]
    red = failed.evaluate("node => getComputedStyle(node).borderLeftColor")
    assert red == "rgb(214, 57, 59)"  # --failed: the tile is drawn red, not just labelled
    assert page.locator('.tile[data-step="lint"]').get_attribute("data-status") == "success"
    assert page.locator('.tile[data-step="docs"]').get_attribute("data-status") == "skipped"

    bars = page.locator("#timeline rect.bar")
    assert bars.count() == 6  # one per attempt: lint, flaky ×2, build, test, package
    flaky = page.locator('#timeline rect.bar[data-step="flaky"]')
    assert [flaky.nth(i).get_attribute("data-status") for i in range(2)] == ["failed", "success"]
    assert [flaky.nth(i).get_attribute("data-attempt") for i in range(2)] == ["1", "2"]
    assert page.locator('#timeline rect.bar[data-step="docs"]').count() == 0  # never ran
    x1, x2 = (float(flaky.nth(i).get_attribute("x") or 0) for i in range(2))
    assert x2 > x1  # the retry comes later on the time axis

    assert page.locator("#dag g.node").count() == 6
    assert page.locator("#dag path.edge").count() == 5
    assert page.locator('#dag g.node[data-step="test"]').get_attribute("data-status") == "failed"

    log = page.locator('#sec-failed article[data-step="test"]')
    assert "FAIL: test_parse" in log.locator("pre.stderr").inner_text()
    assert "collected 3 items" in log.locator("pre.stdout").inner_text()

    page.locator('.chip[data-status="failed"]').click()  # filter the grid to failures
    assert page.locator(".tile").count() == 1
    page.locator('.tile[data-step="test"]').click()
    assert "selected" in (
        page.locator('#dag g.node[data-step="test"]').get_attribute("class") or ""
    )

    shot = tmp_path / "report.png"
    page.locator('.chip[data-status="failed"]').click()
    page.screenshot(path=str(shot), full_page=True)
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        shutil.copyfile(shot, REPO / "docs" / "report.png")


@pytest.mark.slow
def test_a_thousand_step_report_is_small_fast_and_complete(page: Any, tmp_path: Path) -> None:
    result = run_plan(tmp_path, big_plan())
    with open_reader(result.state_dir) as reader:
        attempts = len(reader.attempts(result.run_id))
        failed = sum(1 for s in reader.steps(result.run_id) if s.status == "failed")
    report = tmp_path / "big.html"
    started = time.perf_counter()
    write_report(result.state_dir, result.run_id, report)
    written = time.perf_counter() - started
    size = report.stat().st_size

    started = time.perf_counter()
    open_report(page, report)
    rendered = time.perf_counter() - started
    print(f"\n1,000-step report: {size / 1024:.0f} KiB, written in {written:.2f}s, "
          f"loaded and drawn in Chromium in {rendered:.2f}s")  # fmt: skip
    assert size < 1_500_000 and written < 5 and rendered < 15

    assert page.locator(".tile").count() == 1000
    assert page.locator("#timeline rect.bar").count() == attempts > 1000  # retries included
    assert page.locator("#dag g.node").count() == 1000
    assert page.locator("#sec-failed article").count() == failed > 0
    page.locator('.chip[data-status="failed"]').click()
    assert page.locator(".tile").count() == failed
    page.locator('.chip[data-status="failed"]').click()  # and off again
    page.locator("input[type=search]").fill("s19_")
    assert page.locator(".tile").count() == 50


def test_report_shows_the_worst_case_bound_and_its_critical_path(
    sample_run: RunResult, page: Any, tmp_path: Path
) -> None:
    import json

    from planrun.core.bound import bound_for_ir

    with open_reader(sample_run.state_dir) as reader:
        bound = bound_for_ir(json.loads(reader.ir(sample_run.run_id)))
    assert len(bound.critical_path) >= 2
    report = tmp_path / "report.html"
    write_report(sample_run.state_dir, sample_run.run_id, report)
    open_report(page, report)
    line = page.locator("#run-bound").inner_text()
    assert "worst case" in line
    assert "critical path " + " → ".join(bound.critical_path) in line
    outlined = page.locator("#timeline rect.bar.critical")
    marked = {outlined.nth(i).get_attribute("data-step") for i in range(outlined.count())}
    ran = {a.step_id for a in sample_run_attempts(sample_run)}
    assert marked == set(bound.critical_path) & ran


def sample_run_attempts(run: RunResult) -> list[Any]:
    with open_reader(run.state_dir) as reader:
        return reader.attempts(run.run_id)
