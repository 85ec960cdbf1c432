"""A watcher that runs for a day must not grow: 500 triggered runs of a small plan, peak RSS
(VmHWM) after them within 10% of the peak after the first 50."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from support import wait_for, write_plan
from watch_support import Watcher, shell_step


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc/PID/status")


@pytest.mark.slow
def test_500_runs_do_not_grow_the_watcher(
    tmp_path: Path, spawned: list[subprocess.Popen[str]]
) -> None:
    (tmp_path / "src").mkdir()
    steps = [shell_step("a", "true"), shell_step("b", "echo done", depends_on=["a"])]
    write_plan(tmp_path, {"plan_id": "small", "steps": steps, "watch": {"paths": ["src"]}})
    # The timer triggers the runs; the file watching thread is running all along as well.
    watcher = Watcher(
        ["plan.json", "--interval", "1ms", "-q"], tmp_path, spawned, tmp_path / "state"
    )
    wait_for(lambda: watcher.finished_runs() >= 50, 120, "50 runs")
    after_50 = _peak_rss_kib(watcher.proc.pid)
    wait_for(lambda: watcher.finished_runs() >= 500, 240, "500 runs")
    after_500 = _peak_rss_kib(watcher.proc.pid)
    assert watcher.stop() == 130
    assert after_500 <= after_50 * 1.10, (after_50, after_500)
    statuses = [r["status"] for r in watcher.runs()]
    assert set(statuses[:-1]) == {"success"}  # the last one was going when SIGTERM came
    assert statuses[-1] in ("success", "cancelled")
