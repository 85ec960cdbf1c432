"""plans/git-autosync.yaml end to end: a bare remote, two clones, real git, real planrun.

Single runs (`planrun PLAN`) check each path of the plan; the watcher tests run it the way it
is meant to run, under `planrun watch`, on both clones at once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from pipelines_support import (
    PLANS,
    Remote,
    commit_all,
    environment,
    events_of,
    git,
    make_remote,
    run_pipeline,
    status_porcelain,
    variant,
)
from support import RunResult, wait_for
from watch_support import Watcher

from planrun.store import open_reader

PLAN = "git-autosync.yaml"
FILES = {"notes.txt": "one\ntwo\nthree\n", "todo.txt": "buy milk\n"}
# Production retry delays (seconds, doubling) shortened so a failing remote is reached quickly.
FAST = {
    "lock": {"retry_delay_sec": 0.05, "max_retry_delay_sec": 0.1},
    "fetch": {"retry_delay_sec": 0.05},
    "push": {"retry_delay_sec": 0.05},
}


def _sync(tmp_path: Path, remote: Remote, clone: Path | None = None, plan: str | Path = PLAN):
    return run_pipeline(tmp_path, plan, {"repo": str(clone or remote.work)})


def _logs(result: RunResult) -> str:
    """planrun's own output and every attempt's stdout and stderr, as recorded."""
    texts = [result.output]
    with open_reader(result.state_dir) as reader:
        for attempt in reader.attempts(result.run_id):
            for log in (attempt.stdout_log, attempt.stderr_log):
                path = Path(log) if log else None
                if path is not None and not path.is_absolute():
                    path = result.state_dir / path
                if path is not None and path.exists():
                    texts.append(path.read_text())
    return "\n".join(texts)


def _lock_dir(clone: Path) -> Path:
    return clone / ".git" / "planrun-autosync.lock"


def test_a_change_is_committed_with_a_generated_message_and_pushed(tmp_path: Path) -> None:
    remote = make_remote(tmp_path, FILES)
    (remote.work / "notes.txt").write_text("one\ntwo\nthree\nfour\n")
    (remote.work / "new.txt").write_text("new\n")
    result = _sync(tmp_path, remote)
    assert result.exit_code == 0, _logs(result)
    assert remote.head() == git(remote.work, "rev-parse", "HEAD")
    subject = git(remote.bare, "log", "-1", "--format=%s")
    assert subject == f"autosync: 2 file(s) changed on {os.uname().nodename}"
    body = git(remote.bare, "log", "-1", "--format=%b")
    assert "M\tnotes.txt" in body and "A\tnew.txt" in body
    assert status_porcelain(remote.work) == ""
    assert not _lock_dir(remote.work).exists()


def test_nothing_changed_is_a_quiet_success(tmp_path: Path) -> None:
    remote = make_remote(tmp_path, FILES)
    before = remote.head()
    result = _sync(tmp_path, remote)
    assert result.exit_code == 0, _logs(result)
    assert remote.head() == before
    assert "autosync: nothing to commit" in _logs(result)


def test_edits_on_both_sides_are_rebased_and_pushed(tmp_path: Path) -> None:
    remote = make_remote(tmp_path, FILES)
    theirs = commit_all(remote.other, "their edit", {"todo.txt": "buy milk\nbuy bread\n"})
    git(remote.other, "push", "--quiet", "origin", "main")
    (remote.work / "notes.txt").write_text("one\ntwo\nthree\nfour\n")
    result = _sync(tmp_path, remote)
    assert result.exit_code == 0, _logs(result)
    # Linear: our commit on top of theirs, both files as each side wrote them.
    assert git(remote.bare, "rev-parse", "main~1") == theirs
    assert git(remote.bare, "show", "main:todo.txt") == "buy milk\nbuy bread"
    assert git(remote.bare, "show", "main:notes.txt") == "one\ntwo\nthree\nfour"
    assert (remote.work / "todo.txt").read_text() == "buy milk\nbuy bread\n"


def test_a_conflicting_edit_is_never_pushed_and_the_rebase_is_aborted(tmp_path: Path) -> None:
    remote = make_remote(tmp_path, FILES)
    commit_all(remote.other, "their edit", {"notes.txt": "ONE\ntwo\nthree\n"})
    git(remote.other, "push", "--quiet", "origin", "main")
    theirs = remote.head()
    (remote.work / "notes.txt").write_text("uno\ntwo\nthree\n")
    result = _sync(tmp_path, remote)
    assert result.exit_code == 1
    assert result.statuses["rebase"] == "failed"
    assert result.statuses["push"] == "cancelled"
    assert remote.head() == theirs  # nothing pushed
    assert "autosync: rebasing onto origin/main conflicts in:\n  notes.txt" in _logs(result)
    # The working copy is as committed: our commit, our text, no rebase under way, clean.
    assert git(remote.work, "log", "-1", "--format=%s").startswith("autosync: 1 file(s)")
    assert (remote.work / "notes.txt").read_text() == "uno\ntwo\nthree\n"
    assert status_porcelain(remote.work) == ""
    assert not (remote.work / ".git" / "rebase-merge").exists()
    assert not _lock_dir(remote.work).exists()


def test_a_dirty_index_is_committed_with_the_rest_never_lost(tmp_path: Path) -> None:
    remote = make_remote(tmp_path, FILES)
    (remote.work / "notes.txt").write_text("staged\n")
    git(remote.work, "add", "notes.txt")
    (remote.work / "notes.txt").write_text("staged, then edited again\n")  # partly staged
    (remote.work / "todo.txt").unlink()
    result = _sync(tmp_path, remote)
    assert result.exit_code == 0, _logs(result)
    assert git(remote.bare, "show", "main:notes.txt") == "staged, then edited again"
    assert "todo.txt" not in git(remote.bare, "ls-tree", "--name-only", "main")


def test_a_repository_in_the_middle_of_a_merge_is_left_alone(tmp_path: Path) -> None:
    remote = make_remote(tmp_path, FILES)
    git(remote.work, "checkout", "--quiet", "-b", "side")
    commit_all(remote.work, "side", {"notes.txt": "side\n"})
    git(remote.work, "checkout", "--quiet", "main")
    commit_all(remote.work, "main", {"notes.txt": "main\n"})
    merge = subprocess.run(
        ["git", "merge", "side"], cwd=remote.work, env=environment(), capture_output=True
    )
    assert merge.returncode != 0  # a real conflict, MERGE_HEAD in place
    before = remote.head()
    result = _sync(tmp_path, remote)
    assert result.exit_code == 1
    assert result.statuses["preflight"] == "failed"
    assert "is in the middle of an operation (MERGE_HEAD)" in _logs(result)
    assert remote.head() == before
    assert (remote.work / ".git" / "MERGE_HEAD").exists()


def _taken_lock(tmp_path: Path) -> tuple[Remote, Path, Path]:
    """A repository with a change to sync, whose sync lock someone has just taken (no owner
    written yet), and the plan with quick retries."""
    remote = make_remote(tmp_path, FILES)
    plan = variant(tmp_path, PLAN, **FAST)
    (remote.work / "notes.txt").write_text("mine\n")
    lock = _lock_dir(remote.work)
    lock.mkdir()
    return remote, plan, lock


def _waited_for_then_refused(result: RunResult, remote: Remote, holder: str) -> None:
    assert result.exit_code == 1
    assert len(events_of(result, "step_retrying", "lock")) == 5
    assert f"another sync holds .git/planrun-autosync.lock ({holder})" in _logs(result)
    assert git(remote.work, "status", "--porcelain") == "M notes.txt"  # untouched


def _taken_over(result: RunResult, remote: Remote, lock: Path, words: str) -> None:
    assert result.exit_code == 0, _logs(result)
    assert f"took over the lock of run {words}" in _logs(result)
    assert git(remote.bare, "show", "main:notes.txt") == "mine"
    assert not lock.exists()


def test_a_live_lock_holder_is_waited_for_and_a_dead_ones_lock_taken_over(
    tmp_path: Path,
) -> None:
    remote, plan, lock = _taken_lock(tmp_path)
    holder = subprocess.Popen(["sleep", "60"])
    try:
        (lock / "owner").write_text(f"{holder.pid} OTHER-RUN {os.uname().nodename}\n")
        result = _sync(tmp_path, remote, plan=plan)
        _waited_for_then_refused(result, remote, f"process {holder.pid}, run OTHER-RUN")
        assert result.statuses["stage"] == "cancelled"
        assert (lock / "owner").read_text().startswith(str(holder.pid))  # not released by us
    finally:
        holder.kill()
        holder.wait()
    result = _sync(tmp_path, remote, plan=plan)  # the holder is gone now
    _taken_over(result, remote, lock, f"OTHER-RUN (its process {holder.pid} is gone)")


def test_a_lock_left_without_an_owner_is_taken_over_once_it_is_a_minute_old(
    tmp_path: Path,
) -> None:
    """A sync killed between `mkdir` and writing the owner leaves a lock nobody can release."""
    remote, plan, lock = _taken_lock(tmp_path)  # just taken: its owner is about to be written
    _waited_for_then_refused(_sync(tmp_path, remote, plan=plan), remote, "process ?, run ?")
    two_minutes_ago = time.time() - 120
    os.utime(lock, (two_minutes_ago, two_minutes_ago))
    result = _sync(tmp_path, remote, plan=plan)
    _taken_over(result, remote, lock, "? (it has had no owner for over a minute)")


def test_two_syncs_of_one_repository_take_turns(tmp_path: Path) -> None:
    remote = make_remote(tmp_path, FILES)
    (remote.work / "notes.txt").write_text("mine\n")
    plan = str(PLANS / PLAN)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "planrun",
                "-v",
                plan,
                "--state-dir",
                str(tmp_path / f"s{i}"),
                "-p",
                f"repo={remote.work}",
            ],
            env=environment(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    codes = [proc.wait(timeout=120) for proc in procs]
    errors = [proc.stderr.read() if proc.stderr else "" for proc in procs]
    assert codes == [0, 0], errors
    # One commit for the one change; the second sync found nothing left to commit.
    assert git(remote.bare, "rev-list", "--count", "main") == "2"
    assert sum("commit | autosync: nothing to commit" in e for e in errors) == 1
    assert not _lock_dir(remote.work).exists()


def _watch(tmp_path: Path, clone: Path, procs: list[subprocess.Popen[str]], plan: Path) -> Watcher:
    args = [str(plan), "-p", f"repo={clone}", "--debounce", "0.1s", "--interval", "0.3s"]
    args += ["--backoff", "0.2s", "--backoff-max", "0.5s", "--kill-grace", "1"]
    return Watcher(args, tmp_path, procs, tmp_path / f"state-{clone.name}", environment())


def test_watchers_on_both_clones_keep_them_in_sync(
    tmp_path: Path, spawned: list[subprocess.Popen[str]]
) -> None:
    remote = make_remote(tmp_path, FILES)
    plan = variant(tmp_path, PLAN, **FAST)
    work = _watch(tmp_path, remote.work, spawned, plan)
    other = _watch(tmp_path, remote.other, spawned, plan)
    work.wait_runs(1)
    other.wait_runs(1)
    (remote.work / "from-work.txt").write_text("w\n")
    (remote.other / "from-other.txt").write_text("o\n")

    def converged() -> bool:
        names = git(remote.bare, "ls-tree", "--name-only", "main").split()
        return (
            {"from-work.txt", "from-other.txt"} <= set(names)
            and git(remote.work, "rev-parse", "HEAD") == remote.head()
            and git(remote.other, "rev-parse", "HEAD") == remote.head()
        )

    wait_for(converged, 90, "both clones and the remote to hold both files")
    triggers = {r["watch"]["trigger"] for r in work.runs()}
    # The edits ran the plan again: by their change, or by the 0.3 s interval when its tick came
    # first and took the pending change along (both happen on a loaded machine; which one comes
    # first is timing, not behaviour: tests/runtime/test_watch.py tests each trigger alone).
    assert triggers & {"change", "interval"}
    assert (remote.other / "from-work.txt").read_text() == "w\n"
    assert work.stop() == 130 and other.stop() == 130
    assert not _lock_dir(remote.work).exists() and not _lock_dir(remote.other).exists()


def test_an_unreachable_remote_backs_off_then_catches_up(
    tmp_path: Path, spawned: list[subprocess.Popen[str]]
) -> None:
    remote = make_remote(tmp_path, FILES)
    plan = variant(tmp_path, PLAN, **FAST)
    away = tmp_path / "remote-away.git"
    remote.bare.rename(away)
    (remote.work / "offline.txt").write_text("written offline\n")
    watcher = _watch(tmp_path, remote.work, spawned, plan)
    wait_for(lambda: watcher.watcher_state() == "backing_off", 60, "a failed run, backing off")
    first = watcher.runs()[0]
    assert first["status"] == "failed"
    assert git(remote.work, "log", "-1", "--format=%s").startswith("autosync: 1 file(s)")
    assert "failed run(s) in a row" in watcher.stderr
    away.rename(remote.bare)  # the network is back
    wait_for(
        lambda: "offline.txt" in git(remote.bare, "ls-tree", "--name-only", "main"),
        60,
        "the offline commit to reach the remote",
    )
    assert watcher.runs()[-1]["status"] in ("success", "running")
    assert watcher.stop() == 130


def test_a_state_dir_inside_the_repository_is_never_committed(tmp_path: Path) -> None:
    remote = make_remote(tmp_path, FILES)
    (remote.work / "notes.txt").write_text("changed\n")
    # Run from inside the clone with the default state dir: .planrun/ in the repository.
    done = subprocess.run(
        [sys.executable, "-m", "planrun", str(PLANS / PLAN), "-p", "repo=."],
        cwd=remote.work,
        env={k: v for k, v in environment().items() if k != "PLANRUN_STATE_DIR"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert (remote.work / ".planrun" / "state.db").exists()
    assert git(remote.bare, "ls-tree", "-r", "--name-only", "main").split() == [
        "notes.txt",
        "todo.txt",
    ]
    assert "/.planrun/" in (remote.work / ".git" / "info" / "exclude").read_text().splitlines()
    assert status_porcelain(remote.work) == ""
