"""`planrun watch`: real watcher processes, real files, runs read back from the real store."""

from __future__ import annotations

import itertools
import shutil
import signal
import subprocess
from datetime import datetime
from pathlib import Path

import pytest
from support import planrun_cli, wait_for, write_plan
from watch_support import Watcher, shell_step

Procs = list[subprocess.Popen[str]]


def _plan(tmp_path: Path, *steps: dict[str, object], **watch: object) -> Path:
    plan: dict[str, object] = {
        "plan_id": "watched",
        "steps": list(steps) or [shell_step("a", "true")],
    }
    plan["watch"] = {"paths": ["src"], "debounce_sec": 0.05, **watch}
    (tmp_path / "src").mkdir(exist_ok=True)
    return write_plan(tmp_path, plan)


def test_a_change_runs_the_plan_again_with_the_paths_in_run_started(
    tmp_path: Path, spawned: Procs
) -> None:
    _plan(tmp_path)
    watcher = Watcher(["plan.json"], tmp_path, spawned, tmp_path / "state")
    first = watcher.wait_runs(1)[0]
    (tmp_path / "src" / "a.txt").write_text("x")
    runs = watcher.wait_runs(2)
    assert [r["status"] for r in runs] == ["success", "success"]
    session = first["watch"]["session"]
    assert first["watch"] == {
        "session": session, "run": 1, "trigger": "start", "paths": [], "paths_dropped": 0
    }  # fmt: skip
    assert runs[1]["watch"] == {
        "session": session, "run": 2, "trigger": "change", "paths": ["src/a.txt"],
        "paths_dropped": 0,
    }  # fmt: skip
    assert watcher.stop(signal.SIGTERM) == 130
    assert "planrun: watch: interrupted after 2 run(s)" in watcher.stderr
    state = watcher.watcher()
    assert state is not None and state["state"] == "stopped" and state["runs"] == 2
    assert state["last_run"]["run_id"] == runs[1]["run_id"]


def test_ignored_paths_the_state_dir_and_git_never_trigger_a_run(
    tmp_path: Path, spawned: Procs
) -> None:
    # The step writes into the watched tree itself: into an ignored directory and a *.log file.
    step = shell_step("build", "mkdir -p src/out && date > src/out/result && date >> src/b.log")
    _plan(tmp_path, step, paths=["."], ignore=["src/out/**", "*.log"])
    watcher = Watcher(["plan.json"], tmp_path, spawned, tmp_path / "src" / "state")
    watcher.wait_runs(1)
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "index").write_text("x")
    (tmp_path / "src" / "out" / "other").write_text("x")
    (tmp_path / "src" / "c.swp").write_text("x")
    (tmp_path / "src" / "real.txt").write_text("x")
    runs = watcher.wait_runs(2)
    # Had any other change triggered, run 2 would list it, and real.txt would come in run 3.
    assert runs[1]["watch"]["paths"] == ["src/real.txt"]
    assert watcher.watcher_state() == "idle"
    assert len(watcher.runs()) == 2
    assert watcher.stop() == 130


def test_changes_during_a_run_cause_exactly_one_more_run(tmp_path: Path, spawned: Procs) -> None:
    ctl = tmp_path / "ctl"
    ctl.mkdir()
    (ctl / "go").touch()  # the first run goes straight through
    gate = shell_step(
        "gate",
        "touch ctl/started; while [ ! -e ctl/go ]; do sleep 0.01; done; rm ctl/go ctl/started",
    )
    _plan(tmp_path, gate)
    watcher = Watcher(["plan.json"], tmp_path, spawned, tmp_path / "state")
    watcher.wait_runs(1)
    (tmp_path / "src" / "a").touch()
    wait_for((ctl / "started").exists, 30, "run 2 to start")
    for name in ("b", "c", "d"):
        (tmp_path / "src" / name).touch()
    # The watcher has seen all three while run 2 is still going.
    wait_for(lambda: (watcher.watcher() or {}).get("pending_changes") == 3, 30, "3 pending")
    assert watcher.watcher_state() == "running"
    (ctl / "go").touch()
    wait_for(lambda: len(watcher.runs()) == 3 and (ctl / "started").exists(), 30, "run 3")
    (ctl / "go").touch()
    runs = watcher.wait_runs(3)
    wait_for(lambda: watcher.watcher_state() == "idle", 30, "the watcher to be idle")
    state = watcher.watcher()
    assert state is not None and state["next_run_at"] is None and state["runs"] == 3
    assert len(watcher.runs()) == 3
    assert runs[1]["watch"]["paths"] == ["src/a"]
    assert runs[2]["watch"]["paths"] == ["src/b", "src/c", "src/d"]
    assert watcher.stop(signal.SIGINT) == 130


def test_interval_runs_on_a_timer_and_max_runs_stops(tmp_path: Path, spawned: Procs) -> None:
    _plan(tmp_path)
    watcher = Watcher(
        ["plan.json", "--no-files", "--interval", "50ms", "--max-runs", "3"],
        tmp_path,
        spawned,
        tmp_path / "state",
    )
    assert watcher.proc.wait(timeout=60) == 0
    runs = watcher.runs()
    assert [r["watch"]["trigger"] for r in runs] == ["start", "interval", "interval"]
    assert "watching" not in watcher.stderr  # --no-files: no file watching at all


def _start_times(watcher: Watcher) -> list[datetime]:
    from planrun.store import open_reader

    with open_reader(watcher.state) as reader:
        return sorted(datetime.fromisoformat(r.started_at) for r in reader.runs(100))


def test_consecutive_failures_back_off_doubling_up_to_the_cap(
    tmp_path: Path, spawned: Procs
) -> None:
    _plan(tmp_path, shell_step("fail", "exit 3"))
    args = ["plan.json", "--no-files", "--interval", "1ms", "--backoff", "0.2s"]
    watcher = Watcher(
        [*args, "--backoff-max", "0.4s", "--max-runs", "4"], tmp_path, spawned, tmp_path / "state"
    )
    assert watcher.proc.wait(timeout=60) == 1  # the last run's exit code
    starts = _start_times(watcher)
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(starts)]
    assert len(gaps) == 3
    assert gaps[0] >= 0.2 and gaps[1] >= 0.4 and gaps[2] >= 0.4
    assert "1 failed run(s) in a row: the next run waits at least 0.2s" in watcher.stderr
    assert "3 failed run(s) in a row: the next run waits at least 0.4s" in watcher.stderr


def test_a_success_resets_the_backoff(tmp_path: Path, spawned: Procs) -> None:
    # Fails twice, then succeeds for good.
    flaky = shell_step(
        "flaky",
        "[ -e ok ] && exit 0; echo >> tries; [ $(wc -l < tries) -ge 2 ] && touch ok; exit 3",
    )
    _plan(tmp_path, flaky)
    args = ["plan.json", "--no-files", "--interval", "1ms", "--backoff", "0.1s", "--max-runs", "3"]
    watcher = Watcher(args, tmp_path, spawned, tmp_path / "state")
    assert watcher.proc.wait(timeout=60) == 0
    assert [r["status"] for r in watcher.runs()] == ["failed", "failed", "success"]
    waits = [line for line in watcher.stderr.splitlines() if "failed run(s) in a row" in line]
    assert waits == [
        "planrun: watch: 1 failed run(s) in a row: the next run waits at least 0.1s",
        "planrun: watch: 2 failed run(s) in a row: the next run waits at least 0.2s",
    ]
    state = watcher.watcher()  # as the last (successful) run left it
    assert state is not None and state["failures"] == 0 and state["state"] == "stopped"


def test_exit_on_failure_stops_at_the_first_failed_run(tmp_path: Path, spawned: Procs) -> None:
    _plan(tmp_path, shell_step("fail", "exit 3"))
    watcher = Watcher(["plan.json", "--exit-on-failure"], tmp_path, spawned, tmp_path / "state")
    assert watcher.proc.wait(timeout=60) == 1
    assert "run 1 failed (exit 1); --exit-on-failure: stopping" in watcher.stderr
    assert len(watcher.runs()) == 1


def test_the_state_file_shows_backing_off_and_the_next_run(tmp_path: Path, spawned: Procs) -> None:
    _plan(tmp_path, shell_step("fail", "exit 3"))
    watcher = Watcher(
        ["plan.json", "--interval", "1ms", "--backoff", "60s"],
        tmp_path,
        spawned,
        tmp_path / "state",
    )
    wait_for(lambda: watcher.watcher_state() == "backing_off", 30, "backing off")
    state = watcher.watcher()
    assert state is not None
    assert state["failures"] == 1 and state["next_run_reason"] == "backoff"
    next_at = datetime.fromisoformat(state["next_run_at"])
    updated = datetime.fromisoformat(state["updated_at"])
    assert 59 <= (next_at - updated).total_seconds() <= 60.5
    assert watcher.stop() == 130
    assert len(watcher.runs()) == 1


def test_sigterm_during_a_run_cancels_it_runs_cleanup_and_exits_130(
    tmp_path: Path, spawned: Procs
) -> None:
    long = shell_step("long", "touch started; sleep 60")
    cleanup = shell_step("cleanup", "touch cleaned", depends_on=["long"], trigger_rule="all_done")
    _plan(tmp_path, long, cleanup)
    watcher = Watcher(["plan.json"], tmp_path, spawned, tmp_path / "state")
    wait_for((tmp_path / "started").exists, 30, "the step to start")
    assert watcher.stop(signal.SIGTERM) == 130
    assert (tmp_path / "cleaned").exists()
    runs = watcher.runs()
    assert [r["status"] for r in runs] == ["cancelled"]
    assert "planrun: watch: stopped after 1 run(s)" in watcher.stderr
    assert watcher.watcher_state() == "stopped"


def test_polling_sees_changes_too(tmp_path: Path, spawned: Procs) -> None:
    _plan(tmp_path)
    watcher = Watcher(["plan.json", "--poll"], tmp_path, spawned, tmp_path / "state")
    watcher.wait_runs(1)
    assert "(polling)" in watcher.stderr
    (tmp_path / "src" / "polled").write_text("x")
    runs = watcher.wait_runs(2)
    assert runs[1]["watch"]["paths"] == ["src/polled"]
    assert watcher.stop() == 130


def test_command_line_paths_and_globs_replace_the_plans(tmp_path: Path, spawned: Procs) -> None:
    _plan(tmp_path)
    (tmp_path / "docs" / "deep").mkdir(parents=True)
    watcher = Watcher(
        ["plan.json", "--path", "docs/**/*.md"], tmp_path, spawned, tmp_path / "state"
    )
    watcher.wait_runs(1)
    (tmp_path / "src" / "not-watched").touch()
    (tmp_path / "docs" / "deep" / "notes.txt").touch()
    (tmp_path / "docs" / "deep" / "notes.md").touch()
    runs = watcher.wait_runs(2)
    assert runs[1]["watch"]["paths"] == ["docs/deep/notes.md"]
    assert watcher.stop() == 130


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--path", "nope"], "planrun: watch path nope does not exist"),
        (["--no-files"], "planrun: nothing to watch: no paths and no --interval"),
        (["--interval", "soon"], "'soon' is not a duration such as 30s, 500ms, 5m, 1h30m"),
        (["--no-files", "--path", "src"], "planrun: --no-files and --path cannot be combined"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(
    tmp_path: Path, args: list[str], message: str
) -> None:
    _plan(tmp_path)
    result = planrun_cli("watch", "plan.json", *args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("path", "triggers"),
    [
        ("src/a.py", True),
        ("src/deep/er/b.py", True),
        ("docs/x/notes.md", True),
        ("docs/notes.txt", False),
        ("README.md", True),
        ("README.mdx", False),
        ("other/file", False),
        ("src/app.log", False),  # `*.log`: a name anywhere
        ("src/build", False),  # `build`: the directory itself …
        ("src/build/x.o", False),  # … and everything under it
        ("src/gen/out/a", False),  # `src/gen/**`
        ("src/gen", False),
        ("src/.git/HEAD", False),  # always ignored
        ("src/__pycache__/m.pyc", False),
        ("src/.m.py.swp", False),
        ("src/state/state.db", False),  # the state dir
    ],
)
def test_which_paths_trigger(tmp_path: Path, path: str, triggers: bool) -> None:
    from planrun.watch_paths import build_matcher

    for directory in ("src", "docs"):
        (tmp_path / directory).mkdir()
    (tmp_path / "README.md").touch()
    matcher = build_matcher(
        tmp_path,
        ["src", "./docs/**/*.md", "README.md"],
        ["*.log", "build", "src/gen/**"],
        tmp_path / "src" / "state",
    )
    assert matcher.roots == (tmp_path.resolve(),)  # README.md is watched through its directory
    assert matcher.accepts(str(tmp_path.resolve() / path)) is triggers


def _limited(setting: str, value: int) -> tuple[str, ...]:
    """Run the watcher in a user namespace of its own whose inotify `setting` is `value`: the
    real limit, hit for real, without touching this machine's."""
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1)")
    probe = subprocess.run(
        ["unshare", "--user", "--map-root-user", "sh", "-c", f"echo 1 > /proc/sys/user/{setting}"],
        capture_output=True,
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot set user.{setting} in a user namespace: {probe.stderr!r}")
    script = f'echo {value} > /proc/sys/user/{setting} && exec "$@"'
    return ("unshare", "--user", "--map-root-user", "sh", "-c", script, "sh")


@pytest.mark.parametrize(
    ("setting", "value", "reason"),
    [
        ("max_inotify_watches", 2, "OS file watch limit reached"),
        ("max_inotify_instances", 0, "Too many open files"),
    ],
)
def test_an_inotify_limit_falls_back_to_polling_and_says_why(
    tmp_path: Path, spawned: Procs, setting: str, value: int, reason: str
) -> None:
    _plan(tmp_path)
    for name in ("a", "b", "c"):
        (tmp_path / "src" / name).mkdir()
    prefix = _limited(setting, value)
    watcher = Watcher(["plan.json"], tmp_path, spawned, tmp_path / "state", prefix=prefix)
    watcher.wait_runs(1)
    assert "planrun: watch: cannot watch with inotify: " in watcher.stderr
    assert reason in watcher.stderr
    limit = "max_user_watches=2," if value == 2 else "max_user_instances=0)"
    assert limit in watcher.stderr
    assert "polling every 1s instead. Raise the limit" in watcher.stderr
    assert "(polling)" in watcher.stderr
    (tmp_path / "src" / "c" / "deep").write_text("x")  # in a directory inotify could not watch
    runs = watcher.wait_runs(2)
    assert runs[1]["watch"]["paths"] == ["src/c/deep"]
    assert watcher.stop() == 130


def test_a_signal_as_a_run_ends_stops_the_watcher_after_it(tmp_path: Path, spawned: Procs) -> None:
    # The step's parent is planrun: the signal reaches the watcher while its run is ending.
    _plan(tmp_path, shell_step("last", "kill -TERM $PPID"))
    watcher = Watcher(["plan.json", "--interval", "1ms"], tmp_path, spawned, tmp_path / "state")
    assert watcher.proc.wait(timeout=60) == 130
    assert len(watcher.runs()) == 1  # no second run, though the timer was due at once
    assert watcher.watcher_state() == "stopped"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1.5", 1.5), (".5", 0.5), ("250ms", 0.25), ("30s", 30), ("5m", 300), ("1h30m", 5400),
     ("2h5m10s", 7510), ("1d", 86400)],
)  # fmt: skip
def test_durations(text: str, seconds: float) -> None:
    from planrun.watch_cli import DURATION

    assert DURATION.convert(text, None, None) == seconds


@pytest.mark.parametrize("text", ["inf", "nan", "1e300", "-1", "5x", "", "1h 30m", "5ms5"])
def test_what_is_not_a_duration(tmp_path: Path, text: str) -> None:
    _plan(tmp_path)
    result = planrun_cli("watch", "plan.json", "--interval", text, cwd=tmp_path)
    assert result.returncode == 2
    assert f"{text!r} is not a duration such as 30s, 500ms, 5m, 1h30m" in result.stderr


def test_an_interval_beyond_any_calendar_waits_quietly(tmp_path: Path, spawned: Procs) -> None:
    _plan(tmp_path, interval_sec=1e300)
    watcher = Watcher(["plan.json"], tmp_path, spawned, tmp_path / "state")
    watcher.wait_runs(1)
    wait_for(lambda: (watcher.watcher() or {}).get("next_run_reason") == "interval", 30, "idle")
    state = watcher.watcher()
    assert state is not None and state["next_run_at"].startswith("21")  # a century on
    assert watcher.stop() == 130
    assert "Traceback" not in watcher.stderr


def test_a_watch_run_cut_short_resumes_like_any_run(tmp_path: Path, spawned: Procs) -> None:
    gate = shell_step("gate", "touch started; while [ ! -e go ]; do sleep 0.01; done")
    _plan(tmp_path, gate)
    state = tmp_path / "state"
    watcher = Watcher(["plan.json"], tmp_path, spawned, state)
    wait_for((tmp_path / "started").exists, 30, "the step to start")
    assert watcher.stop() == 130
    [cancelled] = watcher.runs()
    assert cancelled["status"] == "cancelled"
    (tmp_path / "go").touch()
    resumed = planrun_cli("--resume", cancelled["run_id"], "--state-dir", str(state), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    [run] = watcher.runs()
    assert run["status"] == "success" and run["watch"]["trigger"] == "start"
