"""The front page's history grid (`/api/grid`) and the request files of a cancel (uiactions)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support import RunResult, run_plan
from viewkit import call, cookie, sample_plan, serving

from planrun.uiactions import requests_dir, take_requests, write_request
from planrun.views.web import UiServer


def grid(server: UiServer, query: str = "") -> tuple[int, Any]:
    answer = call(server, f"/api/grid{query}", headers=cookie(server))
    return answer.status, answer.json


def test_one_column_per_run_and_one_row_per_step(tmp_path: Path) -> None:
    first = run_plan(tmp_path, sample_plan())
    second = run_plan(tmp_path, sample_plan())
    with serving(first.state_dir) as server:
        status, data = grid(server)
    assert status == 200 and data["plan_ids"] == ["SAMPLE"]
    (plan,) = data["plans"]
    assert plan["plan_id"] == "SAMPLE"
    assert plan["steps"] == ["lint", "flaky", "build", "test", "package", "docs"]
    assert [run["run_id"] for run in plan["runs"]] == [first.run_id, second.run_id]  # oldest left
    cells = plan["runs"][1]["cells"]
    assert cells["test"]["status"] == "failed" and cells["test"]["reason"] == "exit code 3"
    assert cells["flaky"]["attempts"] == 2 and cells["flaky"]["duration_sec"] is not None
    assert cells["docs"]["status"] == "skipped" and cells["docs"]["reason"] == "condition"


def test_filters_by_plan_status_and_date(sample_run: RunResult) -> None:
    day = sample_run.events[0].ts[:10]
    with serving(sample_run.state_dir) as server:
        assert len(grid(server, "?plan=SAMPLE")[1]["plans"]) == 1
        assert grid(server, "?plan=OTHER")[1]["plans"] == []
        assert len(grid(server, "?status=success")[1]["plans"]) == 1
        assert grid(server, "?status=failed")[1]["plans"] == []
        assert len(grid(server, f"?since={day}&until={day}")[1]["plans"]) == 1
        assert grid(server, "?since=2099-01-01")[1]["plans"] == []
        assert grid(server, "?until=2000-01-01")[1]["plans"] == []
        (plan,) = grid(server, "?runs=1")[1]["plans"]
        assert len(plan["runs"]) == 1


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("?status=broken", "status must be one of running, success, failed, cancelled, interrupted, not 'broken'"),
        ("?since=2026-13-01", "since must be a date YYYY-MM-DD, not '2026-13-01'"),
        ("?until=yesterday", "until must be a date YYYY-MM-DD, not 'yesterday'"),
        ("?runs=0", "runs must be an integer from 1 to 200, not '0'"),
        ("?runs=-3", "runs must be an integer from 1 to 200, not '-3'"),
    ],
)  # fmt: skip
def test_a_bad_filter_is_a_400_naming_it(sample_run: RunResult, query: str, error: str) -> None:
    with serving(sample_run.state_dir) as server:
        assert grid(server, query) == (400, {"error": error})


def test_an_empty_state_dir_has_an_empty_grid(tmp_path: Path) -> None:
    with serving(tmp_path / "nothing") as server:
        status, data = grid(server)
    assert status == 200 and data["plans"] == [] and "no state.db" in data["message"]


def test_cancel_requests_are_taken_once_in_order_and_junk_is_dropped(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    assert take_requests(run) == []  # no directory yet
    write_request(run, {"action": "cancel", "remote": "127.0.0.1:1"})
    write_request(run, {"action": "cancel", "remote": "127.0.0.1:2", "extra": "dropped"})
    directory = requests_dir(run)
    (directory / "0-junk.json").write_text("not json")
    (directory / "1-list.json").write_text(json.dumps(["cancel"]))
    (directory / "2-unknown.json").write_text(json.dumps({"action": "delete-everything"}))
    (directory / "3-huge.json").write_text(json.dumps({"action": "cancel", "by": "x" * 5000}))
    assert take_requests(run) == [
        {"action": "cancel", "remote": "127.0.0.1:1"},
        {"action": "cancel", "remote": "127.0.0.1:2"},
    ]
    assert list(directory.iterdir()) == []
    assert take_requests(run) == []
