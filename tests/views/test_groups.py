"""A matrix's and a fan-out's instances in the views (docs/views.md, "Groups"): one collapsible
row with counts per status in the report and the web UI (headless Chromium), one running row in
the live terminal view."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support import RunResult, run_plan
from test_live import ev, live, screen
from test_report_browser import open_report, write_report
from viewkit import grouped_plan, serving

from planrun.store import open_reader
from planrun.views.model import snapshot

MATRIX = ["test-3.10-1", "test-3.11-1", "test-3.11-2", "test-3.12-1", "test-3.12-2"]
INSTANCES = ["each[0]", "each[1]", "each[2]"]


@pytest.fixture(scope="module")
def grouped_run(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    result = run_plan(tmp_path_factory.mktemp("grouped"), grouped_plan())
    assert result.exit_code == 0, result.output
    assert result.statuses["test-3.12-2"] == "failed" and result.statuses["each[1]"] == "failed"
    return result


def test_the_snapshot_names_each_group_and_its_members(grouped_run: RunResult) -> None:
    with open_reader(grouped_run.state_dir) as reader:
        groups = snapshot(reader, grouped_run.run_id, with_logs=False)["groups"]

    assert groups == [
        {"name": "each", "kind": "for_each", "members": INSTANCES},
        {"name": "test", "kind": "matrix", "members": MATRIX},
    ]


def check_groups(page: Any) -> None:
    """What both pages show: folded group rows with their counts, opening to the tiles."""
    expect = pytest.importorskip("playwright.sync_api").expect
    matrix = page.locator('.group[data-group="test"]')
    head = matrix.locator(".group-head")
    expect(head).to_have_attribute("aria-expanded", "false")
    assert head.inner_text().split() == [
        "▸",
        "test",
        "5",
        "matrix",
        "instances",
        "✗",
        "1",
        "✓",
        "4",
    ]
    counts = matrix.locator(".count")
    assert [counts.nth(i).get_attribute("data-status") for i in range(2)] == ["failed", "success"]
    assert "s-failed" in (head.get_attribute("class") or "")  # drawn in its worst status' colour
    assert page.locator('.tile[data-step^="test-"]').count() == 0  # folded
    # ... on the timeline too: one row for the group, with every instance's bar
    label = page.locator('#timeline .row-label[data-group="test"]')
    assert label.text_content() == "▸ test[*]"
    assert page.locator('#timeline .row-label[data-step^="test-"]').count() == 0
    assert page.locator('#timeline rect.bar[data-step^="test-"]').count() == len(MATRIX)

    fanout = page.locator('.group[data-group="each"]')
    assert fanout.get_attribute("data-kind") == "for_each"
    assert fanout.locator(".group-head").inner_text().split()[1:] == [
        "each", "3", "instances", "✗", "1", "✓", "2",
    ]  # fmt: skip
    # the fan-out step itself is a step of the plan: its own tile, next to its instances' row
    assert page.locator('#grid > .tile[data-step="each"]').get_attribute("data-status") == "success"

    head.click()
    expect(head).to_have_attribute("aria-expanded", "true")
    expect(label).to_have_count(0)  # opened on the timeline too: a row per instance
    expect(page.locator('#timeline .row-label[data-step^="test-"]')).to_have_count(len(MATRIX))
    tiles = matrix.locator(".tile")
    assert [tiles.nth(i).get_attribute("data-step") for i in range(tiles.count())] == MATRIX
    assert matrix.locator('.tile[data-status="failed"]').get_attribute("data-step") == "test-3.12-2"

    page.locator('.chip[data-status="failed"]').click()  # the status filter reaches inside
    expect(tiles).to_have_count(1)
    assert tiles.first.get_attribute("data-step") == "test-3.12-2"
    page.locator('.chip[data-status="failed"]').click()
    expect(tiles).to_have_count(5)

    head.click()  # folds again
    expect(tiles).to_have_count(0)
    expect(label).to_have_count(1)
    label.click()  # the timeline's group row opens it as well
    expect(tiles).to_have_count(len(MATRIX))
    head.click()
    expect(tiles).to_have_count(0)
    # Selecting an instance elsewhere (its bar on the timeline) opens its group at its tile.
    page.locator('#timeline rect.bar[data-step="each[2]"]').click()
    selected = fanout.locator('.tile[data-step="each[2]"]')
    expect(selected).to_have_class("tile s-success selected")
    expect(fanout.locator(".group-head")).to_have_attribute("aria-expanded", "true")
    expect(page.locator('#timeline .row-label[data-step="each[2]"]')).to_have_count(1)


def test_the_report_folds_instances_into_group_rows(
    grouped_run: RunResult, page: Any, tmp_path: Path
) -> None:
    report = tmp_path / "report.html"
    write_report(grouped_run.state_dir, grouped_run.run_id, report)
    open_report(page, report)

    check_groups(page)
    # the graph draws the plan's steps: a fan-out's instances are its node (no JS error either)
    assert page.locator('#dag .node[data-step="each"]').count() == 1
    assert page.locator('#dag .node[data-step="each[0]"]').count() == 0
    assert page.locator("#dag .node").count() == 3 + len(MATRIX)


def test_the_ui_run_page_folds_instances_into_group_rows(grouped_run: RunResult, page: Any) -> None:
    with serving(grouped_run.state_dir) as server:
        page.goto(server.login_url)
        page.wait_for_url(server.url)
        page.goto(f"{server.url}#/runs/{grouped_run.run_id}")
        page.locator('.group[data-group="test"]').wait_for()

        check_groups(page)


def test_the_live_view_shows_a_group_s_running_instances_in_one_row() -> None:
    groups = {"test": {"kind": "matrix", "members": MATRIX}}
    view, _, clock = live(10, groups=groups)
    view(ev("step_started", "lint", 1))
    for step_id in MATRIX[:3]:
        view(ev("step_started", step_id, 1))
    clock.now += 2
    view(ev("step_succeeded", MATRIX[0], 1, exit_code=0, duration_sec=2))
    view(ev("step_failed", MATRIX[1], 1, reason="exit code 1", duration_sec=2))
    view(ev("step_started", MATRIX[3], 1))
    view(ev("step_expanded", "each", None, instances=INSTANCES, items=3))
    view(ev("step_started", "each[0]", 1))
    view(ev("step_started", "each[1]", 1))
    view(ev("step_retrying", "each[1]", 1, reason="exit code 1", delay_sec=1))

    rows = [line.split() for line in screen(view).splitlines()[1:4]]
    assert rows == [
        ["▶", "lint", "attempt", "1", "2.0s"],
        ["▶", "test[*]", "2", "running", "of", "5", "✓", "1", "✗", "1", "2.0s"],
        ["▶", "each[*]", "1", "running,", "1", "waiting", "to", "retry", "of", "3", "0.0s"],
    ]
    assert "[2/13]" in screen(view)  # every instance is a step: 10, then 3 more
    view.close()
