"""A failed step explains itself: the tail of stdout and stderr (interleaved as written when the
output is pumped), a line budget, where the full log is; GitHub annotations, groups and the job
summary; plain lines under other CI; tolerated failures; the whole timeline after a resume."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from planrun.ci import summary_markdown
from planrun.core.failure import WriteOrder, output_tail, tail_block
from planrun.core.launcher import Finished, LaunchSpec
from planrun.process import ProcessSet
from planrun.store import open_reader
from planrun.views.model import snapshot

WAIT_LIMIT = 30.0

# Writes A to stdout, waits until planrun has read it (the pipe is empty: FIONREAD), B to stderr
# (likewise), then C to stdout: the order the streams were written in is known without a sleep.
ORDERED = """
import fcntl, struct, sys, termios, time
def put(stream, text):
    stream.write(text + "\\n"); stream.flush()
    end = time.monotonic() + 30
    while time.monotonic() < end:
        pending = fcntl.ioctl(stream.fileno(), termios.FIONREAD, b"\\0\\0\\0\\0")
        if struct.unpack("i", pending)[0] == 0:
            return
        time.sleep(0.001)
put(sys.stdout, "A out")
put(sys.stderr, "B err")
put(sys.stdout, "C out")
sys.exit(1)
"""


def run_attempt(tmp_path: Path, masked: bool) -> Finished:
    out, err = tmp_path / "s.1.stdout", tmp_path / "s.1.stderr"
    spec = LaunchSpec(
        argv=[sys.executable, "-c", ORDERED],
        cwd=str(tmp_path),
        env=dict(os.environ),
        stdout_path=str(out),
        stderr_path=str(err),
        timeout_sec=None,
        heartbeat_timeout_sec=None,
        kill_grace_sec=5.0,
        mask_patterns=(b"secret-value-123",) if masked else (),
    )
    with ProcessSet() as procs:
        procs.start("s", spec)
        end = time.monotonic() + WAIT_LIMIT
        while time.monotonic() < end:
            for finished in procs.wait(end - time.monotonic()):
                return finished
    raise AssertionError("the attempt never finished")


def test_pumped_output_comes_interleaved_in_the_order_written(tmp_path: Path) -> None:
    finished = run_attempt(tmp_path, masked=True)
    assert finished.order is not None
    tail = output_tail(str(tmp_path / "s.1.stdout"), str(tmp_path / "s.1.stderr"), finished.order)
    assert tail["order"] == "written"
    assert tail["lines"] == [["stdout", "A out"], ["stderr", "B err"], ["stdout", "C out"]]
    assert tail["cut"] is False


def test_unpumped_output_is_stdout_then_stderr(tmp_path: Path) -> None:
    finished = run_attempt(tmp_path, masked=False)
    assert finished.order is None  # nothing recorded for a step that writes to its files
    tail = output_tail(str(tmp_path / "s.1.stdout"), str(tmp_path / "s.1.stderr"), finished.order)
    assert tail["order"] == "streams"
    assert tail["lines"] == [["stdout", "A out"], ["stdout", "C out"], ["stderr", "B err"]]


@pytest.mark.parametrize(
    ("out_lines", "err_lines", "shown"), [(30, 30, (10, 10)), (3, 40, (3, 17)), (40, 2, (18, 2))]
)
def test_the_line_budget_is_shared_between_the_streams(
    tmp_path: Path, out_lines: int, err_lines: int, shown: tuple[int, int]
) -> None:
    out, err = tmp_path / "o", tmp_path / "e"
    out.write_text("".join(f"out {i}\n" for i in range(out_lines)))
    err.write_text("".join(f"err {i}\n" for i in range(err_lines)))
    tail = output_tail(str(out), str(err), None, budget=20)
    streams = [stream for stream, _ in tail["lines"]]
    assert (streams.count("stdout"), streams.count("stderr")) == shown
    assert tail["lines"][-1] == ["stderr", f"err {err_lines - 1}"]  # the last lines are kept
    assert tail["cut"] is True


def test_an_order_that_lost_its_oldest_runs_shows_what_it_can_place(tmp_path: Path) -> None:
    out, err = tmp_path / "o", tmp_path / "e"
    out.write_text("a\nb\nc\n")
    err.write_text("boom\nno newline")
    order = WriteOrder(limit=3)
    order.add(0, b"a\nb\n")
    order.add(1, b"boom\n")
    order.add(0, b"c\n")
    order.add(1, b"no newline")
    order.end(1)  # the unterminated last line counts at the end of the stream
    assert [list(run) for run in order.runs] == [[1, 1], [0, 1], [1, 1]]
    tail = output_tail(str(out), str(err), order)
    assert tail["lines"] == [["stderr", "boom"], ["stdout", "c"], ["stderr", "no newline"]]
    assert (tail["order"], tail["cut"]) == ("written", True)


def test_the_block_says_where_the_full_log_is() -> None:
    tail = {
        "lines": [["stdout", "FAILED t.py::x"], ["stderr", "Traceback"]],
        "order": "written",
        "cut": True,
        "stdout_log": ".planrun/runs/R/logs/tests.1.stdout",
        "stderr_log": ".planrun/runs/R/logs/tests.1.stderr",
    }
    assert tail_block("tests", tail, "R") == (
        "tests output (last 2 lines, in the order written; | stdout, ! stderr)",
        [
            "| FAILED t.py::x",
            "! Traceback",
            "full log: .planrun/runs/R/logs/tests.1.std{out,err} (planrun logs R tests [--stderr])",
        ],
    )


PLAN = """\
plan_id: ci-demo
globals:
  default_timeout_sec: 60
steps:
  - id: prep
    command: "true"
  - id: tests
    depends_on: [prep]
    command: python3
    args: ["-c", "print('collected 2 items'); print('FAILED test_x.py::test_y'); raise SystemExit(1)"]
  - id: lint
    on_failure: continue
    command: sh
    args: ["-c", "echo 'E501 line too long' >&2; exit 2"]
"""


def planrun(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("GITHUB_ACTIONS", "CI")}
    base.pop("GITHUB_STEP_SUMMARY", None)
    return subprocess.run(
        [sys.executable, "-m", "planrun", *args],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        env={**base, "FORCE_COLOR": "1", **env},
    )  # fmt: skip


def test_under_ci_a_failure_shows_its_stdout_in_plain_lines(tmp_path: Path) -> None:
    (tmp_path / "plan.yaml").write_text(PLAN)
    done = planrun(tmp_path, {"CI": "true", "FORCE_COLOR": "0"}, "plan.yaml")
    assert done.returncode == 1
    text = done.stderr
    assert re.search(
        r"✗ tests exit code 1 \(.*\)\n"
        r"    tests output \(2 lines, stdout, then stderr; \| stdout, ! stderr\)\n"
        r"    \| collected 2 items\n"
        r"    \| FAILED test_x.py::test_y\n"
        r"    full log: \.planrun/runs/(\S+)/logs/tests\.1\.std\{out,err\} "
        r"\(planrun logs \1 tests \[--stderr\]\)\n",
        text,
    ), text
    run_id = re.search(r"run (\S+) \(plan ci-demo", text).group(1)  # type: ignore[union-attr]
    log = tmp_path / ".planrun" / "runs" / run_id / "logs" / "tests.1.stdout"
    assert "FAILED test_x.py::test_y" in log.read_text()
    assert "::" not in text.replace("test_x.py::test_y", "")  # no workflow commands
    assert "\x1b" not in text


def test_github_actions_annotations_at_the_step_and_a_job_summary(tmp_path: Path) -> None:
    (tmp_path / "plan.yaml").write_text(PLAN)
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step's summary\n")
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary), "NO_COLOR": "1"}
    done = planrun(tmp_path, env, "plan.yaml")
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert "::group::tests output (2 lines, stdout, then stderr; | stdout, ! stderr)" in lines
    # the step `tests` is on line 7 of plan.yaml; its failure is an error, lint's a warning
    assert ("::error file=plan.yaml,line=7,title=step tests failed::exit code 1 (") in done.stderr
    assert "%0A| collected 2 items%0A| FAILED test_x.py::test_y\n" in done.stderr
    assert re.search(
        r"^::warning file=plan.yaml,line=11,title=step lint failed::exit code 2 \(.*\)%0A"
        r"! E501 line too long$",
        done.stderr,
        re.M,
    )
    text = summary.read_text()
    assert text.startswith("earlier step's summary\n### planrun: ci-demo: run ")
    assert (
        "| STEP | STATUS | ATTEMPTS | DURATION | EXIT | REASON |\n|---|---|---|---|---|---|\n"
        in text
    )
    assert re.search(r"^\| tests \| failed \| 1 \| [\d.]+s \| 1 \| exit code 1 \|$", text, re.M)
    assert re.search(
        r"^\| lint \| failed, tolerated \(on\\_failure: continue\) \| 1 \|", text, re.M
    )


def test_the_job_summary_shows_names_and_reasons_literally() -> None:
    rows = [("STEP", "REASON"), ("a|b", "<script>x</script> *bold* [l](u) `c` ~s~ \\ & _i_")]
    text = summary_markdown("plan <b>", rows)
    assert text == (
        "### plan &lt;b&gt;\n\n| STEP | REASON |\n|---|---|\n"
        "| a\\|b | &lt;script&gt;x&lt;/script&gt; \\*bold\\* \\[l\\](u) \\`c\\` \\~s\\~ \\\\ &amp;"
        " \\_i\\_ |\n\n"
    )


def test_the_job_summary_writes_controls_as_escapes_not_as_line_breaks_or_colours() -> None:
    """A step's reason may hold anything its output held: no escape sequence, no bidirectional
    override, no line break reaches the summary raw (the row stays one row)."""
    text = summary_markdown("p", [("STEP", "REASON"), ("s", "\x1b[31mred\n| forged |\u202e")])
    assert text.splitlines()[4] == "| s | \\\\x1b\\[31mred\\\\n\\| forged \\|\\\\u202e |"


def test_tolerated_failures_are_marked_in_status(tmp_path: Path) -> None:
    plan = """\
plan_id: tolerant
globals:
  default_timeout_sec: 60
steps:
  - id: flaky
    command: "false"
    on_failure: fallback_step
    fallback: backup
  - id: backup
    command: "true"
  - id: optional
    command: "false"
    on_failure: continue
"""
    (tmp_path / "plan.yaml").write_text(plan)
    done = planrun(tmp_path, {"NO_COLOR": "1"}, "plan.yaml")
    assert done.returncode == 0, done.stderr
    status = planrun(tmp_path, {}, "status")
    rows = {line.split()[0]: line for line in status.stdout.splitlines()[2:]}
    assert " failed, tolerated (recovered by backup) " in rows["flaky"]
    assert " failed, tolerated (on_failure: continue) " in rows["optional"]
    assert "tolerated" not in rows["backup"]
    show = planrun(tmp_path, {"NO_COLOR": "1"}, "show").stdout
    assert "✗ failed, tolerated (on_failure: continue)" in show
    assert "✗ failed, tolerated (recovered by backup)" in show
    with open_reader(tmp_path / ".planrun") as reader:  # what the report and the UI draw
        steps = snapshot(reader, reader.latest_run_id() or "")["steps"]
    assert {s["step_id"]: s["tolerated"] for s in steps} == {
        "flaky": "recovered by backup",
        "backup": None,
        "optional": "on_failure: continue",
    }


def test_after_a_resume_the_summary_gives_the_whole_timeline(tmp_path: Path) -> None:
    plan = """\
plan_id: resumable
globals:
  default_timeout_sec: 60
steps:
  - id: gate
    command: test
    args: ["-f", "ok"]
"""
    (tmp_path / "plan.yaml").write_text(plan)
    first = planrun(tmp_path, {"NO_COLOR": "1"}, "plan.yaml")
    assert first.returncode == 1
    run_id = re.search(r"run (\S+) \(plan", first.stderr).group(1)  # type: ignore[union-attr]
    assert "since its last resume" not in first.stderr
    (tmp_path / "ok").write_text("")
    second = planrun(tmp_path, {"NO_COLOR": "1"}, "--resume", run_id, "plan.yaml")
    assert second.returncode == 0, second.stderr
    assert re.search(
        rf"^planrun: run {run_id} success in \d+\.\d\ds since its last resume \(resumed once;"
        r" \d+\.\ds from its start at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\) \(exit 0\)$",
        second.stderr,
        re.M,
    ), second.stderr
    with open_reader(tmp_path / ".planrun") as reader:  # the report and the UI show both too
        run = snapshot(reader, run_id)["run"]
    assert run["span_sec"] > run["duration_sec"]
