"""The `planrun watch` commands shown in docs/cli.md and docs/pipelines/git-autosync.md, run as
written (the state dir through $PLANRUN_STATE_DIR), with the real planrun and real git."""

from __future__ import annotations

import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

from pipelines_support import environment, git, make_remote
from support import REPO, wait_for

from planrun.store import NoStateError, open_reader

FENCE = re.compile(r"```(sh|yaml)\n(.*?)```", re.DOTALL)


def blocks(doc: str, heading: str, kind: str) -> list[str]:
    """The fenced blocks of `kind` in the section of `doc` that starts with `heading`."""
    text = (REPO / doc).read_text(encoding="utf-8")
    section = text[text.index(heading) :]
    following = re.search(r"\n## ", section[len(heading) :])
    if following:
        section = section[: len(heading) + following.start()]
    return [body for lang, body in FENCE.findall(section) if lang == kind]


def commands(doc: str, heading: str) -> list[list[str]]:
    (block,) = blocks(doc, heading, "sh")
    found = [shlex.split(line) for line in block.splitlines() if line.strip()]
    assert all(words[0] == "planrun" for words in found)
    return [words[1:] for words in found]


class Shown:
    """One documented command running in `cwd`, its state in `cwd/state`."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        self.state = cwd / "state"
        env = {**environment(), "PLANRUN_STATE_DIR": str(self.state)}
        self.log_path = cwd / "shown.err"
        self.log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "planrun", *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            stdin=subprocess.DEVNULL,
        )

    def said(self) -> str:
        """What the command wrote to stderr so far: planrun's lines, a failed step's output."""
        return self.log_path.read_text(errors="replace")

    def statuses(self) -> list[str]:
        try:
            reader = open_reader(self.state)
        except NoStateError:
            return []
        with reader:
            return [r.status for r in reversed(reader.runs(1000))]

    def finished(self, count: int) -> bool:
        return len([s for s in self.statuses() if s not in ("running", "interrupted")]) >= count

    def interrupt(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout=60)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.log.close()


def test_the_cli_watch_examples(tmp_path: Path) -> None:
    heading = "## planrun watch"
    (plan,) = blocks("docs/cli.md", heading, "yaml")
    first, second, third = commands("docs/cli.md", heading)
    for number, args in enumerate([first, second]):
        work = tmp_path / f"w{number}"
        (work / "src").mkdir(parents=True)
        (work / "docs" / "guide").mkdir(parents=True)
        (work / "plan.yaml").write_text(plan)
        shown = Shown(args, work)
        try:
            wait_for(lambda shown=shown: shown.finished(1), 60, f"{args}: the first run")
            (work / "src" / "skipped.tmp").touch()  # ignored by the second command
            (work / "build.log").write_text("x")  # the plan's own ignore
            (work / "src" / "page.txt").touch()
            wait_for(lambda shown=shown: shown.finished(2), 60, f"{args}: a run on the change")
            assert shown.statuses() == ["success", "success"]
            assert shown.interrupt() == 130
        finally:
            shown.close()
    work = tmp_path / "timer"
    work.mkdir()
    (work / "plan.yaml").write_text(plan)
    (work / "src").mkdir()
    shown = Shown(third, work)
    try:
        assert shown.proc.wait(timeout=60) == 0
        assert shown.statuses() == ["success"] * 3
    finally:
        shown.close()


def test_the_git_autosync_examples(tmp_path: Path) -> None:
    remote = make_remote(tmp_path, {"notes.txt": "one\n"})
    remote.work.rename(tmp_path / "notes")
    notes = tmp_path / "notes"
    (tmp_path / "plans").symlink_to(REPO / "plans")
    watch, once, timed = commands("docs/pipelines/git-autosync.md", "## Running it")

    shown = Shown(watch, tmp_path)
    try:
        wait_for(lambda: shown.finished(1), 60, "the first sync")
        (notes / "notes.txt").write_text("one\ntwo\n")
        wait_for(lambda: git(remote.bare, "show", "main:notes.txt") == "one\ntwo", 60, "the push")
        assert shown.interrupt() == 130
    finally:
        shown.close()

    (notes / "more.txt").write_text("more\n")
    shown = Shown(once, tmp_path)
    try:
        assert shown.proc.wait(timeout=120) == 0, shown.said()
        assert "more.txt" in git(remote.bare, "ls-tree", "--name-only", "main")
    finally:
        shown.close()

    (notes / "wip.txt").write_text("wip\n")
    shown = Shown(timed, tmp_path)
    try:
        assert shown.proc.wait(timeout=120) == 0, shown.said()
        assert shown.statuses()[-2:] == ["success", "success"]
        assert git(remote.bare, "log", "-1", "--format=%s").startswith("wip: 1 file(s) changed")
    finally:
        shown.close()


def test_the_readme_shows_a_tested_command() -> None:
    """The README's `planrun watch` line is one of the git-autosync commands run above."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    shown = [
        shlex.split(line[2:].split("#")[0])[1:]
        for line in readme.splitlines()
        if line.startswith("$ planrun watch")
    ]
    assert shown
    tested = commands("docs/pipelines/git-autosync.md", "## Running it")
    assert all(words in tested for words in shown)
