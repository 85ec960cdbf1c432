"""The composed read model the report and the UI share, and log tailing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import RunResult

from planrun.store import open_reader
from planrun.views import model
from planrun.views.report import embed_json, render_page
from planrun.views.tail import LogTail, read_tail
from planrun.views.web import _whole_characters


def test_snapshot_has_every_step_attempt_and_the_failed_logs(sample_run: RunResult) -> None:
    with open_reader(sample_run.state_dir) as reader:
        data = model.snapshot(reader, sample_run.run_id[:10])
    assert data["run"]["run_id"] == sample_run.run_id
    assert data["run"]["done"] == data["run"]["total"] == 6
    assert data["plan"] == {
        "id": "SAMPLE",
        "version": "",
        "description": "a plan with one of everything",
    }
    steps = {s["step_id"]: s for s in data["steps"]}
    assert steps["build"]["depends_on"] == ["lint", "flaky"]
    assert steps["test"]["command"].startswith("sh -c echo collected")
    assert [(a["step_id"], a["attempt"], a["status"]) for a in data["attempts"]] == [
        ("lint", 1, "success"),
        ("flaky", 1, "failed"),
        ("flaky", 2, "success"),
        ("build", 1, "success"),
        ("test", 1, "failed"),
        ("package", 1, "success"),
    ]
    assert data["dag"]["nodes"]["package"][0] == 3 and data["dag"]["layers"] == 4
    assert data["logs"] == {
        "test": {
            "attempt": 1, "omitted": False,
            "stderr": "FAIL: test_parse\nAssertionError: 1 != 2", "stderr_cut": False,
            "stdout": "collected 3 items", "stdout_cut": False,
        }
    }  # fmt: skip
    json.dumps(data)  # JSON-ready


def test_log_tails_stop_at_the_budget(
    sample_run: RunResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(model, "LOG_BUDGET_BYTES", 10)
    with open_reader(sample_run.state_dir) as reader:
        steps = reader.steps(sample_run.run_id)
        attempts = reader.attempts(sample_run.run_id)
        logs = model.failed_logs(reader.state_dir, sample_run.run_id, steps, attempts)
    assert "stderr" in logs["test"] and "stdout" not in logs["test"]


def test_log_path_follows_the_state_dir_not_the_writers_cwd(sample_run: RunResult) -> None:
    with open_reader(sample_run.state_dir) as reader:
        attempt = model.find_attempt(reader, sample_run.run_id, "flaky", 1)
        path = model.log_path(reader.state_dir, sample_run.run_id, attempt, "stderr")
    assert path == sample_run.state_dir / "runs" / sample_run.run_id / "logs" / "flaky.1.stderr"
    assert path.read_text() == "not yet\n"


def test_read_tail(tmp_path: Path) -> None:
    path = tmp_path / "log"
    path.write_text("".join(f"line {i}\n" for i in range(100)))
    assert read_tail(path, 3) == ("line 97\nline 98\nline 99", True)
    text, cut = read_tail(path, 1000, max_bytes=20)
    assert cut and text == "line 98\nline 99"  # the line cut by the byte limit is dropped
    assert read_tail(tmp_path / "missing", 3) == ("", False)


def test_log_tail_returns_complete_lines_and_the_rest_at_the_end(tmp_path: Path) -> None:
    path = tmp_path / "log"
    tail = LogTail(path)
    assert tail.lines() == []  # not created yet
    path.write_bytes(b"a\nb")
    assert tail.lines() == ["a"]
    with path.open("ab") as handle:
        handle.write(b"c\r\nd \xff")
    assert tail.lines() == ["bc"]
    assert tail.rest() == ["d \ufffd"]


def test_a_log_chunk_never_ends_inside_a_character() -> None:
    text = "añ€😀".encode()
    for cut in range(len(text) + 1):
        kept = _whole_characters(text[:cut])
        assert text.startswith(kept)
        kept.decode("utf-8")  # raises if a character was cut
        assert len(text[:cut]) - len(kept) < 4


def test_embedded_json_cannot_close_its_script_element() -> None:
    page = render_page("<script>@@DATA@@</script>@@JS@@", "t", {"s": "</script><!-- @@JS@@"}, ())
    assert page.count("</script>") == 1
    assert json.loads(page[len("<script>") : page.index("</script>")]) == {
        "s": "</script><!-- @@JS@@"
    }
    assert embed_json("<") == '"\\u003c"'
