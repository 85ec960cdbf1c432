"""The state dir cannot be turned against its user (docs/state.md "Trust", docs/dataflow.md):
$PLAN_OUTPUT is absolute and read only from a bounded regular file; nothing under the state
dir is followed through a link; a dir or state.db of another user, or writable by others, is
refused; files are private; a state.db deleted under a run stops it; a damaged one is a line."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import collect, planrun_cli, run_plan, write_plan

from planrun.outputs import MAX_OUTPUT_BYTES
from planrun.store import RunStore, open_reader
from planrun.views.web import make_server

VICTIM = "precious, not planrun's\n"
OTHER_UID = 65534


def plan(*steps: dict[str, Any]) -> dict[str, Any]:
    return {"plan_id": "TRUST", "globals": {"default_timeout_sec": 30}, "steps": list(steps)}


def sh(step_id: str, script: str, **fields: Any) -> dict[str, Any]:
    return {"id": step_id, "command": "sh", "args": ["-c", script], **fields}


def one_line_exit_2(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def run_id_of(result: subprocess.CompletedProcess[str]) -> str:
    first = result.stderr.splitlines()[0]
    assert first.startswith("planrun: run "), result.stderr
    return first.split()[2]


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    path = tmp_path / "victim"
    path.write_text(VICTIM)
    return path


# --- $PLAN_OUTPUT -------------------------------------------------------------------------------


def test_plan_output_is_absolute_for_a_step_in_another_cwd(tmp_path: Path) -> None:
    """Under the default relative `.planrun`, a step with `cwd:` can still write its outputs
    (it failed with `cannot create .planrun/runs/…: Directory nonexistent`)."""
    (tmp_path / "sub").mkdir()
    script = 'echo "path=$PLAN_OUTPUT" >> "$PLAN_OUTPUT"; echo "v=1" >> "$PLAN_OUTPUT"'
    path = write_plan(tmp_path, plan(sh("a", script, cwd="sub", provides=["path", "v"])))
    env = {k: v for k, v in os.environ.items() if k != "PLANRUN_STATE_DIR"}
    result = subprocess.run(
        [sys.executable, "-m", "planrun", str(path)], cwd=tmp_path, env=env, capture_output=True,
        text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    recorded = collect(tmp_path / ".planrun", 0)
    outputs = recorded.summary["steps"]["a"]["outputs"]
    assert outputs["v"] == "1"
    logs = (tmp_path / ".planrun").resolve() / "runs" / recorded.run_id / "logs"
    assert outputs["path"] == str(logs / "a.1.outputs")


def test_a_fifo_as_plan_output_fails_the_step_and_blocks_nothing(tmp_path: Path) -> None:
    """planrun blocked forever in open() on a FIFO: the other step's timeout never fired."""
    swap = 'rm "$PLAN_OUTPUT" && mkfifo "$PLAN_OUTPUT"'
    result = run_plan(
        tmp_path,
        plan(sh("a", swap, provides=["v"]), sh("slow", "sleep 60", timeout_sec=2)),
        kill_grace=0.5,
    )
    assert result.exit_code == 1
    assert result.statuses == {"a": "failed", "slow": "timed_out"}
    reason = result.reasons["a"] or ""
    assert reason.startswith("$PLAN_OUTPUT cannot be read: it is a named pipe"), reason


def test_a_link_to_dev_zero_as_plan_output_is_not_followed(tmp_path: Path) -> None:
    """It read 2.6 GB, then died of a MemoryError."""
    swap = 'rm "$PLAN_OUTPUT" && ln -s /dev/zero "$PLAN_OUTPUT"'
    result = run_plan(tmp_path, plan(sh("a", swap, provides=["v"])))
    assert result.statuses == {"a": "failed"}
    assert (
        result.reasons["a"] == "$PLAN_OUTPUT cannot be read: it is a symbolic link (not followed)"
    )


def test_plan_output_over_the_cap_fails_the_step(tmp_path: Path) -> None:
    big = MAX_OUTPUT_BYTES + 1
    script = f'printf v= > "$PLAN_OUTPUT"; head -c {big - 2} /dev/zero >> "$PLAN_OUTPUT"'
    result = run_plan(tmp_path, plan(sh("a", script, provides=["v"])))
    assert result.statuses == {"a": "failed"}
    assert result.reasons["a"] == (
        f"$PLAN_OUTPUT cannot be read: it holds {big} bytes; the limit is {MAX_OUTPUT_BYTES}"
    )


# --- links under the state dir -----------------------------------------------------------------


def test_a_planted_log_link_is_not_truncated_on_resume(tmp_path: Path, victim: Path) -> None:
    """Attempt 1 plants `a.2.stdout -> victim` and fails; the resumed attempt 2 writes its own
    log and the victim keeps its content."""
    marker = tmp_path / "marker"
    script = (
        f"if [ -e {marker} ]; then echo second; exit 0; fi; touch {marker};"
        f' ln -s {victim} "$(dirname "$PLAN_OUTPUT")/a.2.stdout"; exit 1'
    )
    first = run_plan(tmp_path, plan(sh("a", script)))
    assert first.statuses == {"a": "failed"}
    log = first.state_dir / "runs" / first.run_id / "logs" / "a.2.stdout"
    assert log.is_symlink()
    second = run_plan(tmp_path, plan(sh("a", script)), resume=first.run_id)
    assert second.statuses == {"a": "success"}
    assert victim.read_text() == VICTIM
    assert not log.is_symlink() and log.read_text() == "second\n"
    assert stat.S_IMODE(log.stat().st_mode) == 0o600


def test_a_symlinked_events_jsonl_is_replaced_not_truncated(tmp_path: Path, victim: Path) -> None:
    first = run_plan(tmp_path, plan(sh("a", "true")))
    events = first.state_dir / "runs" / first.run_id / "events.jsonl"
    events.unlink()
    events.symlink_to(victim)
    run_plan(tmp_path, plan(sh("a", "true")), resume=first.run_id)
    assert victim.read_text() == VICTIM
    assert not events.is_symlink()
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    assert [e["type"] for e in lines][-2:] == ["run_resumed", "run_finished"]


def test_logs_and_report_do_not_show_a_planted_links_target(tmp_path: Path, victim: Path) -> None:
    result = run_plan(tmp_path, plan(sh("a", "echo mine; exit 3")))
    logs = result.state_dir / "runs" / result.run_id / "logs"
    for stream in ("stdout", "stderr"):
        (logs / f"a.1.{stream}").unlink()
        (logs / f"a.1.{stream}").symlink_to(victim)
    state = str(result.state_dir)
    shown = planrun_cli("logs", result.run_id, "a", "--state-dir", state, cwd=tmp_path)
    line = one_line_exit_2(shown)
    assert line == (
        f"planrun: cannot show {logs / 'a.1.stdout'}: it is a symbolic link (not followed)"
    )
    assert "precious" not in shown.stdout
    report = tmp_path / "report.html"
    made = planrun_cli("report", "-o", str(report), "--state-dir", state, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    page = report.read_text()
    assert "precious" not in page and "symbolic link (not followed)" in page


def test_the_ui_does_not_serve_a_planted_links_target(tmp_path: Path, victim: Path) -> None:
    """The UI served /etc/shadow through a planted link."""
    result = run_plan(tmp_path, plan(sh("a", "echo mine; exit 3")))
    log = result.state_dir / "runs" / result.run_id / "logs" / "a.1.stdout"
    log.unlink()
    log.symlink_to(victim)
    server = make_server(str(result.state_dir), 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"{server.url}api/runs/{result.run_id}/logs/a"
        request = urllib.request.Request(url)
        request.add_header("Authorization", f"Bearer {server.access.token}")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        body = refused.value.read().decode()
        assert refused.value.code == 404 and "precious" not in body
        assert (
            json.loads(body)["error"] == f"cannot show {log}: it is a symbolic link (not followed)"
        )
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_a_log_replaced_by_a_fifo_does_not_block_logs(tmp_path: Path) -> None:
    result = run_plan(tmp_path, plan(sh("a", "echo mine")))
    log = result.state_dir / "runs" / result.run_id / "logs" / "a.1.stdout"
    log.unlink()
    os.mkfifo(log)
    shown = planrun_cli(
        "logs", result.run_id, "a", "--state-dir", str(result.state_dir), cwd=tmp_path, timeout=30
    )
    assert one_line_exit_2(shown).endswith("it is a named pipe, not a regular file")


def test_a_run_dir_swapped_for_a_link_is_refused(tmp_path: Path) -> None:
    """Directories under the state dir are walked without following links (openat)."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    first = run_plan(tmp_path, plan(sh("a", "exit 1")))
    logs = first.state_dir / "runs" / first.run_id / "logs"
    logs.rename(elsewhere / "logs")
    logs.symlink_to(elsewhere / "logs")
    resumed = planrun_cli(
        "--resume", first.run_id, "--state-dir", str(first.state_dir), cwd=tmp_path
    )
    assert resumed.returncode != 0 and "Traceback" not in resumed.stderr
    assert resumed.stderr == (
        f"planrun: cannot record the run in {first.state_dir}: runs/{first.run_id}/logs is not"
        " a directory (or is a link)\n"
    )
    assert sorted(p.name for p in (elsewhere / "logs").iterdir()) == ["a.1.stderr", "a.1.stdout"]


# --- ownership and modes -----------------------------------------------------------------------

READERS = (("status",), ("runs",), ("show",), ("report", "-o", "r.html"))


@pytest.fixture
def recorded(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    result = run_plan(tmp_path, plan(sh("a", "echo hi")))
    yield result.state_dir, result.run_id
    for path in [result.state_dir, *result.state_dir.rglob("*")]:  # let pytest clean up
        os.lchown(path, os.getuid(), os.getgid())


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
@pytest.mark.parametrize("target", ["dir", "db"])
def test_a_state_dir_of_another_user_is_refused(
    tmp_path: Path, recorded: tuple[Path, str], target: str
) -> None:
    """Another user pre-created the shared dir and swapped in a state.db whose IR runs their
    command: root's --resume ran it as root."""
    state, run_id = recorded
    owned = state if target == "dir" else state / "state.db"
    os.chown(owned, OTHER_UID, OTHER_UID)
    refusal = (
        f"planrun: refusing to use {owned}"
        + (" as the state directory" if target == "dir" else "")
        + f": it is owned by uid {OTHER_UID}, not by the user running planrun (uid 0)"
    )
    path = write_plan(tmp_path, plan(sh("a", "echo hi")))
    for args in (*READERS, ("logs", run_id, "a"), ("--resume", run_id), (str(path),)):
        result = planrun_cli(*args, "--state-dir", str(state), cwd=tmp_path)
        assert one_line_exit_2(result) == refusal, args
    os.chown(owned, os.getuid(), os.getgid())
    assert len(collect(state, 0).events) == 4  # nothing was recorded by the refused commands


@pytest.mark.parametrize(("bits", "who"), [(0o002, "every user"), (0o020, "its group")])
def test_a_state_dir_writable_by_others_is_refused(
    tmp_path: Path, recorded: tuple[Path, str], bits: int, who: str
) -> None:
    state, run_id = recorded
    for owned, suffix in ((state, " as the state directory"), (state / "state.db", "")):
        mode = stat.S_IMODE(owned.stat().st_mode) | bits
        owned.chmod(mode)
        refusal = (
            f"planrun: refusing to use {owned}{suffix}: it is writable by {who} (mode {mode:04o})"
        )
        for args in (*READERS, ("--resume", run_id)):
            result = planrun_cli(*args, "--state-dir", str(state), cwd=tmp_path)
            assert one_line_exit_2(result) == refusal, args
        owned.chmod(mode & ~bits)


@pytest.mark.parametrize(("umask", "dirs", "files"), [(0o022, 0o700, 0o600), (0o277, 0o500, 0o400)])
def test_state_files_are_private(tmp_path: Path, umask: int, dirs: int, files: int) -> None:
    """The dir 0700 and every file 0600 (they were 0644, readable by every user); a stricter
    umask takes more away."""
    if umask & 0o200 and os.geteuid() != 0:
        pytest.skip("a umask without owner write makes the files unwritable but for root")
    state = tmp_path / "state"
    path = write_plan(
        tmp_path, plan(sh("a", "echo v=1 >> $PLAN_OUTPUT; echo err >&2", provides=["v"]))
    )
    previous = os.umask(umask)
    try:
        result = planrun_cli(str(path), "--state-dir", str(state), cwd=tmp_path)
    finally:
        os.umask(previous)
    assert result.returncode == 0, result.stderr
    run = collect(state, 0).run_id
    expected_dirs = [state, state / "runs", state / "runs" / run, state / "runs" / run / "logs"]
    assert {str(d): oct(stat.S_IMODE(d.stat().st_mode)) for d in expected_dirs} == {
        str(d): oct(dirs) for d in expected_dirs
    }
    found = {p.relative_to(state).as_posix(): p for p in state.rglob("*") if p.is_file()}
    assert {"state.db", "state.db-wal", "state.db-shm"} <= set(found)
    for name in ("events.jsonl", "summary.json", "ir.json"):
        assert f"runs/{run}/{name}" in found
    for name in ("a.1.stdout", "a.1.stderr", "a.1.outputs"):
        assert f"runs/{run}/logs/{name}" in found
    modes = {name: oct(stat.S_IMODE(p.stat().st_mode)) for name, p in found.items()}
    assert modes == {name: oct(files) for name in found}


# --- state.db deleted or truncated under a live run --------------------------------------------


@pytest.mark.parametrize(
    ("how", "said"),
    [
        ("rm -f {db} {db}-wal {db}-shm", "deleted (or moved away)"),
        ("mv {db} {db}.moved", "deleted (or moved away)"),
        ("cp {db} {db}.copy && mv {db}.copy {db}", "replaced by another file"),
        (": > {db}", "truncated (4096 bytes, now 0)"),
    ],
)
def test_a_state_db_lost_under_a_live_run_stops_it(tmp_path: Path, how: str, said: str) -> None:
    state = tmp_path / "state"
    done = tmp_path / "b-ran"
    path = write_plan(
        tmp_path,
        plan(
            sh("a", how.format(db=state / "state.db")),
            # b may be spawned in the same loop iteration as a's end is recorded: it is killed
            sh("b", f"sleep 5; touch {done}", depends_on=["a"]),
        ),
    )
    result = planrun_cli(str(path), "--state-dir", str(state), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == (
        f"planrun: {state / 'state.db'} was {said} under the run: the run was stopped rather than"
        f" record into a database nobody can read (its logs are kept under {state / 'runs'})"
    )
    assert not done.exists()


# --- bad state dirs and damaged databases: one line, exit 2 -------------------------------------


@pytest.mark.parametrize("length", [300, 5000])
def test_a_state_dir_name_too_long_is_one_line(tmp_path: Path, length: int) -> None:
    name = "d" * length if length < 4096 else "/".join(["d" * 200] * (length // 201))
    path = write_plan(tmp_path, plan(sh("a", "true")))
    for args in ((str(path),), *READERS, ("logs", "R", "a")):
        line = one_line_exit_2(planrun_cli(*args, "--state-dir", name, cwd=tmp_path))
        assert "File name too long" in line or "no planrun state" in line, line
        assert len(line) < 400


def _damage(db: Path, how: str) -> None:
    conn = sqlite3.connect(db)
    if how == "tables":
        conn.executescript("DROP TABLE attempts; CREATE TABLE attempts (x INTEGER);")
    elif how == "version":
        conn.execute("PRAGMA user_version = 99")
    elif how == "ir":
        conn.execute("UPDATE runs SET ir = x'00ff7b7d'")
    elif how == "ir-json":
        conn.execute("UPDATE runs SET ir = CAST('{\"steps\": 3}' AS BLOB)")
    elif how == "utf8":
        conn.execute("UPDATE runs SET plan_id = CAST(x'ff' AS TEXT)")
        conn.execute("UPDATE events SET payload = CAST(x'7bff7d' AS TEXT)")
    elif how == "json":
        conn.execute("UPDATE runs SET argv = 'not json'")
        conn.execute("UPDATE steps SET outputs = '{'")
    conn.commit()
    conn.close()


# Which reader commands have nothing to read in what each damage broke, so still answer.
# --dry-run reads only the recorded fingerprints.
UNHARMED = {
    "tables": set(),
    "version": set(),
    "ir": {"status", "runs", "show", "logs", "--dry-run"},  # read by report and --resume
    "ir-json": {"status", "runs", "show", "logs", "--dry-run"},
    "utf8": {"logs", "--dry-run"},  # plan_id and payloads are not part of an attempt
    "json": {"--dry-run"},
}


@pytest.mark.parametrize("how", sorted(UNHARMED))
def test_a_damaged_state_db_is_one_line_for_every_reader(tmp_path: Path, how: str) -> None:
    """Readers printed tracebacks (report a UnicodeDecodeError) for each of these."""
    result = run_plan(tmp_path, plan(sh("a", "echo hi")))
    _damage(result.state_dir / "state.db", how)
    state = str(result.state_dir)
    dry_plan = write_plan(tmp_path, plan(sh("a", "echo hi")), "dry.json")
    for args in (
        ("status",),
        ("status", "--json"),
        ("runs",),
        ("runs", "--json"),
        ("show", result.run_id),
        ("show", "--json", result.run_id),
        ("logs", result.run_id, "a"),
        ("report", "-o", "r.html"),
        ("--resume", result.run_id),
        ("--dry-run", str(dry_plan)),
    ):
        outcome = planrun_cli(*args, "--state-dir", state, cwd=tmp_path)
        if args[0] in UNHARMED[how]:
            assert outcome.returncode == 0, (args, outcome.stderr)
            continue
        line = one_line_exit_2(outcome)
        said = ("damaged or not planrun's", "IR of run", "schema version 99, newer than")
        assert any(words in line for words in said), (args, line)


def test_checking_state_db_keeps_sqlites_locks(tmp_path: Path) -> None:
    """Closing any descriptor of a file drops the process's POSIX locks on it, SQLite's too:
    when the trust checks opened and closed state.db beside a live connection, another
    process closing its connection took the database for unused and deleted the WAL under
    the run (disk I/O error)."""
    state = tmp_path / "state"
    with RunStore.open(state) as store:
        store.create_run("R", "p", "sha256:" + "ab" * 32, b"{}", ["a"], ["planrun"], 1)
        with open_reader(state) as reader:  # the checks of a reader in the same process
            assert reader.latest_run_id() == "R"
        other = subprocess.run(
            [sys.executable, "-c", f"import sqlite3; sqlite3.connect({str(state / 'state.db')!r})"
             ".execute('SELECT count(*) FROM runs').fetchone()"],
            check=False, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert other.returncode == 0, other.stderr
        assert (state / "state.db-wal").exists()
        store.emit("R", "step_started", "a", pid=None, pgid=None)
    assert [e.type for e in collect(state, 0, run_id="R").events] == ["run_started", "step_started"]
