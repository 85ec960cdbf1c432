"""planrun.process with real processes: spawning, outcomes, killing trees, reaping."""

from __future__ import annotations

import json
import os
import resource
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from planrun.core.launcher import Finished, LaunchSpec, SpawnError, Started
from planrun.process import LEFTOVER_GRACE_SEC, TAG_VAR, ProcessSet, kill_leftover

HELPERS = Path(__file__).parent / "helpers"
WAIT_LIMIT = 20.0  # a test waiting longer than this for an attempt has failed


def tagged_processes(tags: set[str]) -> list[int]:
    """Live processes whose environment carries one of these attempt tags."""
    prefix = f"{TAG_VAR}=".encode()
    found = []
    for pid in psutil.pids():
        try:
            data = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        for item in data.split(b"\0"):
            if item.startswith(prefix) and item[len(prefix) :].decode() in tags:
                found.append(pid)
    return found


def zombie_children() -> list[int]:
    zombies = []
    for child in psutil.Process().children():
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                zombies.append(child.pid)
        except psutil.NoSuchProcess:
            pass
    return zombies


def is_gone(pid: int) -> bool:
    """True when the process no longer exists (reaped, not merely a zombie)."""
    return not psutil.pid_exists(pid)


def read_pid(path: Path) -> int:
    return int(path.read_text().strip())


# A step that ignores SIGTERM, and tells the test once it does (through a FIFO
# named "ready", see await_ready) so that the test never races its `trap`.
STUBBORN = "trap '' TERM; echo ready > ready; exec sleep 300"


def await_ready(workdir: Path) -> None:
    """Block until a step wrote a line into the FIFO `workdir/ready`
    (created by the test before it starts the step)."""
    fd = os.open(workdir / "ready", os.O_RDONLY | os.O_NONBLOCK)  # does not wait for the writer
    try:
        # Until a writer comes, a FIFO is neither readable nor hung up.
        ready, _, _ = select.select([fd], [], [], WAIT_LIMIT)
        assert ready and os.read(fd, 100) == b"ready\n"
    finally:
        os.close(fd)


class Harness:
    """A ProcessSet plus bookkeeping to build specs and check for survivors."""

    def __init__(self, ps: ProcessSet, workdir: Path) -> None:
        self.ps = ps
        self.workdir = workdir
        self.started: dict[str, Started] = {}
        self.finished: dict[str, Finished] = {}

    def spec(self, argv: list[str], key: str = "step", **overrides: object) -> LaunchSpec:
        fields: dict[str, object] = {
            "argv": argv,
            "cwd": str(self.workdir),
            "env": dict(os.environ),
            "stdout_path": str(self.workdir / f"{key}.out"),
            "stderr_path": str(self.workdir / f"{key}.err"),
            "timeout_sec": None,
            "heartbeat_timeout_sec": None,
            "kill_grace_sec": 5.0,
        }
        fields.update(overrides)
        return LaunchSpec(**fields)  # type: ignore[arg-type]

    def start(self, key: str, argv: list[str], **overrides: object) -> Started:
        started = self.ps.start(key, self.spec(argv, key, **overrides))
        self.started[key] = started
        return started

    def wait_for(self, *keys: str) -> dict[str, Finished]:
        end = time.monotonic() + WAIT_LIMIT
        while missing := set(keys) - self.finished.keys():
            left = end - time.monotonic()
            assert left > 0, f"attempts never finished: {sorted(missing)}"
            for fin in self.ps.wait(left):
                self.finished[fin.key] = fin
        return {key: self.finished[key] for key in keys}

    def run(self, argv: list[str], key: str = "step", **overrides: object) -> Finished:
        self.start(key, argv, **overrides)
        return self.wait_for(key)[key]

    def out(self, key: str = "step") -> str:
        return (self.workdir / f"{key}.out").read_text()


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    workdir = tmp_path / "work"
    workdir.mkdir()
    fds = sorted(os.listdir("/proc/self/fd"))
    ps = ProcessSet()
    h = Harness(ps, workdir)
    try:
        yield h
    finally:
        ps.close()
    tags = {s.tag for s in h.started.values()}
    assert tagged_processes(tags) == [], "attempt processes survived close()"
    assert zombie_children() == []
    assert sorted(os.listdir("/proc/self/fd")) == fds, "file descriptors leaked"


@pytest.fixture(params=["posix_spawn", "popen"])
def path_harness(
    request: pytest.FixtureRequest, harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> Harness:
    """The harness, with steps taking either spawn path: posix_spawn is used when
    the step's cwd is our own cwd, Popen otherwise."""
    monkeypatch.chdir(harness.workdir if request.param == "posix_spawn" else harness.workdir.parent)
    return harness


# -- outcomes -------------------------------------------------------------------


@pytest.mark.parametrize("code", [0, 1, 7])
def test_exit_codes(path_harness: Harness, code: int) -> None:
    fin = path_harness.run(["sh", "-c", f"exit {code}"])
    assert (fin.outcome, fin.exit_code, fin.signal) == ("exited", code, None)
    assert fin.reason == f"exit code {code}"
    assert fin.key == "step"
    assert 0 <= fin.duration_sec < 5
    assert fin.finished_at == pytest.approx(fin.started_at + fin.duration_sec)


def test_killed_by_signal(harness: Harness) -> None:
    fin = harness.run(["sh", "-c", "kill -9 $$"])
    assert (fin.outcome, fin.exit_code, fin.signal) == ("signalled", None, 9)
    assert fin.reason == "killed by signal 9 (SIGKILL)"


def test_output_lands_in_the_files(path_harness: Harness) -> None:
    fin = path_harness.run(["sh", "-c", "echo out; echo err >&2"])
    assert path_harness.out() == "out\n"
    assert (path_harness.workdir / "step.err").read_text() == "err\n"
    assert fin.stderr_tail == "err"


def test_one_file_for_both_streams(harness: Harness) -> None:
    log = str(harness.workdir / "both.log")
    harness.run(["sh", "-c", "echo a; echo b >&2; echo c"], stdout_path=log, stderr_path=log)
    assert Path(log).read_text() == "a\nb\nc\n"


def test_env_cwd_stdin_and_tag(path_harness: Harness) -> None:
    env = {"PATH": os.environ["PATH"], "FOO": "bar baz"}
    script = 'echo "$FOO"; echo "${HOME-unset}"; pwd; echo "$PLANRUN_ATTEMPT_TAG"; cat; echo eof'
    started = path_harness.start("step", ["sh", "-c", script], env=env)
    fin = path_harness.wait_for("step")["step"]
    assert fin.exit_code == 0
    lines = path_harness.out().splitlines()
    assert lines == ["bar baz", "unset", os.path.realpath(path_harness.workdir), started.tag, "eof"]


def test_path_of_the_step_env_is_searched(path_harness: Harness) -> None:
    bindir = path_harness.workdir / "bin"
    bindir.mkdir()
    tool = bindir / "mytool"
    tool.write_text("#!/bin/sh\necho tool ran\n")
    tool.chmod(0o755)
    env = {"PATH": f"{bindir}:/usr/bin:/bin"}
    fin = path_harness.run(["mytool"], env=env)
    assert fin.exit_code == 0
    assert path_harness.out() == "tool ran\n"


def test_started_identifies_the_process(harness: Harness) -> None:
    started = harness.start("step", ["sleep", "300"])
    proc = psutil.Process(started.pid)
    assert started.proc_start_time == proc.create_time()
    assert started.pgid == started.pid == os.getpgid(started.pid) == os.getsid(started.pid)
    assert harness.ps.running == 1
    harness.ps.cancel("step")
    assert harness.wait_for("step")["step"].outcome == "cancelled"
    assert harness.ps.running == 0


def test_start_times_are_procs_also_without_reading_it(
    path_harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Started.proc_start_time comes from the clock read around the spawn when both readings
    fall in one tick (no /proc read); it must be /proc's value every time, whether the spawn
    crossed a tick or not."""
    import planrun.process.process_set

    reads: list[int] = []
    real = planrun.process.process_set.proc_stat

    def counting(pid: int) -> object:
        reads.append(pid)
        return real(pid)

    monkeypatch.setattr(planrun.process.process_set, "proc_stat", counting)
    boot = path_harness.ps._boot_time
    for i in range(60):
        started = path_harness.start(f"s{i}", ["sleep", "30"])
        st = real(started.pid)
        assert st is not None
        assert started.proc_start_time == st.starttime / os.sysconf("SC_CLK_TCK") + boot
        path_harness.ps.cancel(f"s{i}")
        path_harness.wait_for(f"s{i}")
    # Whether a real spawn crosses a 10 ms tick depends on the machine's load, so the
    # choice between clock and /proc is checked with readings placed on either side of one.
    started = path_harness.start("probe", ["sleep", "30"])
    st = real(started.pid)
    assert st is not None
    tick_ns = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
    expected = st.starttime / os.sysconf("SC_CLK_TCK") + boot
    reads.clear()
    inside = st.starttime * tick_ns + 1
    assert path_harness.ps._create_time(started.pid, inside, inside + 5) == expected
    assert reads == []
    assert path_harness.ps._create_time(started.pid, inside - tick_ns, inside) == expected
    assert reads == [started.pid]
    path_harness.ps.cancel("probe")
    path_harness.wait_for("probe")


def test_stderr_tail_is_bounded(harness: Harness) -> None:
    fin = harness.run(["sh", "-c", "for i in $(seq 1 100); do echo line$i >&2; done"])
    assert fin.stderr_tail.splitlines() == [f"line{i}" for i in range(81, 101)]
    fin = harness.run(["sh", "-c", "head -c 10000 /dev/zero | tr '\\0' x >&2"], key="long")
    assert len(fin.stderr_tail.encode()) <= 4096


# -- spawn errors ---------------------------------------------------------------


def test_command_not_found(path_harness: Harness) -> None:
    with pytest.raises(SpawnError) as err:
        path_harness.start("step", ["no-such-command-zz"])
    assert err.value.reason == "command not found: no-such-command-zz"


def test_cwd_missing(path_harness: Harness) -> None:
    missing = str(path_harness.workdir / "missing")
    with pytest.raises(SpawnError) as err:
        path_harness.start("step", ["true"], cwd=missing)
    assert err.value.reason == f"cwd does not exist: {missing}"


def test_permission_denied(path_harness: Harness) -> None:
    (path_harness.workdir / "data.txt").write_text("echo not a program\n")
    with pytest.raises(SpawnError) as err:
        path_harness.start("step", ["./data.txt"])
    assert err.value.reason == "permission denied: ./data.txt"


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        # Each used to end planrun with an OSError traceback from the stat that explains it.
        (["/" + "a" * 300], "cannot execute /" + "a" * 300 + ": File name too long"),
        (["a" * 300], "cannot execute " + "a" * 300 + ": File name too long"),
        (["echo", "x" * 3_000_000], "cannot execute echo: Argument list too long"),
    ],
)
def test_unusable_names_and_argument_lists_are_spawn_errors(
    path_harness: Harness, argv: list[str], reason: str
) -> None:
    with pytest.raises(SpawnError) as err:
        path_harness.start("step", argv)
    assert err.value.reason == reason
    assert path_harness.ps.running == 0


@pytest.mark.parametrize(
    ("argv", "env", "reason"),
    [
        (["echo", "a\0b"], {}, "argument 1 contains a NUL character, which no program can receive"),
        (["tr\0ue"], {}, "the command contains a NUL character, which no program can receive"),
        (
            ["true"],
            {"FROM_OUTPUT": "x\0y"},
            "environment variable FROM_OUTPUT contains a NUL character, which no program can"
            " receive",
        ),
    ],
)
def test_a_nul_character_is_a_spawn_error(
    path_harness: Harness, argv: list[str], env: dict[str, str], reason: str
) -> None:
    """posix_spawn and Popen raise ValueError on a NUL; it used to end planrun with a traceback
    (an interpolated step output can hold one)."""
    fds = sorted(os.listdir("/proc/self/fd"))
    with pytest.raises(SpawnError) as err:
        path_harness.start("step", argv, env={**os.environ, **env})
    assert err.value.reason == reason
    assert sorted(os.listdir("/proc/self/fd")) == fds
    assert path_harness.ps.running == 0


def test_spawn_errors_leak_no_fd(path_harness: Harness) -> None:
    (path_harness.workdir / "data.txt").write_text("")
    fds = sorted(os.listdir("/proc/self/fd"))
    for argv, cwd in [
        (["no-such-command-zz"], path_harness.workdir),
        (["./data.txt"], path_harness.workdir),
        (["true"], path_harness.workdir / "missing"),
    ]:
        with pytest.raises(SpawnError):
            path_harness.start("step", argv, cwd=str(cwd))
    assert sorted(os.listdir("/proc/self/fd")) == fds
    assert path_harness.ps.running == 0


def test_spawn_error_record(harness: Harness) -> None:
    with pytest.raises(SpawnError) as err:
        harness.start("step", ["no-such-command-zz"])
    fin = Finished.from_spawn_error("step", err.value)
    assert (fin.outcome, fin.reason, fin.exit_code) == (
        "spawn_error",
        "command not found: no-such-command-zz",
        None,
    )


# -- killing trees --------------------------------------------------------------


def test_timeout_kills_the_whole_group(harness: Harness) -> None:
    script = "sleep 300 & echo $! > bg.pid; sleep 300"
    started = harness.start("step", ["sh", "-c", script], timeout_sec=1)
    fin = harness.wait_for("step")["step"]
    assert (fin.outcome, fin.reason) == ("timeout", "timed out after 1s")
    assert (fin.exit_code, fin.signal) == (None, None)
    assert 1.0 <= fin.duration_sec < 4.0
    assert is_gone(started.pid)
    assert is_gone(read_pid(harness.workdir / "bg.pid"))
    assert tagged_processes({started.tag}) == []


def test_setsid_grandchild_is_killed(harness: Harness) -> None:
    script = (
        "(setsid sh -c 'echo $$ > daemon.pid; exec sleep 300' &); "
        "while [ ! -s daemon.pid ]; do sleep 0.01; done"
    )
    started = harness.start("step", ["sh", "-c", script])
    fin = harness.wait_for("step")["step"]
    assert (fin.outcome, fin.exit_code) == ("exited", 0)
    daemon = read_pid(harness.workdir / "daemon.pid")
    assert is_gone(daemon)
    assert tagged_processes({started.tag}) == []


# A daemon that leaves the step's session and scrubs its environment: neither its tag nor its
# session tells whose it is once it is orphaned (absolute paths: `env -i` drops PATH).
UNTRACEABLE_DAEMON = (
    "S=$(command -v setsid) L=$(command -v sleep); "
    '(env -i "$S" /bin/sh -c "echo \\$\\$ > daemon.pid; exec $L 300" &); '
    "while [ ! -s daemon.pid ]; do sleep 0.01; done"
)


def test_an_untraceable_daemon_dies_with_the_one_step_that_can_own_it(harness: Harness) -> None:
    """It used to survive its step and planrun (a documented limit)."""
    fin = harness.run(["sh", "-c", UNTRACEABLE_DAEMON])
    assert (fin.outcome, fin.exit_code) == ("exited", 0)
    assert is_gone(read_pid(harness.workdir / "daemon.pid"))


def test_an_untraceable_daemon_lives_while_any_step_that_may_own_it_runs(
    harness: Harness,
) -> None:
    """Started while `other` also ran, the daemon could be either's: `other` ending must not
    kill it (it is `owner`'s); `owner` ending must."""
    owner_script = (
        UNTRACEABLE_DAEMON
        + "; while [ ! -e other.done ]; do sleep 0.01; done"
        + '; kill -0 "$(cat daemon.pid)" && echo alive > verdict'
    )
    harness.start("owner", ["sh", "-c", owner_script])
    harness.start("other", ["sh", "-c", "while [ ! -s daemon.pid ]; do sleep 0.01; done"])
    assert harness.wait_for("other")["other"].exit_code == 0
    (harness.workdir / "other.done").touch()
    assert harness.wait_for("owner")["owner"].exit_code == 0
    assert (harness.workdir / "verdict").read_text() == "alive\n"
    assert is_gone(read_pid(harness.workdir / "daemon.pid"))


def test_close_kills_an_untraceable_daemon_no_step_is_left_to_own(harness: Harness) -> None:
    """Both possible owners stopped in the same breath: close() finds the daemon owned by
    nobody and kills it."""
    harness.start("owner", ["sh", "-c", UNTRACEABLE_DAEMON + "; exec sleep 300"])
    harness.start("other", ["sh", "-c", "exec sleep 300"])
    pidfile = harness.workdir / "daemon.pid"
    deadline = time.monotonic() + WAIT_LIMIT
    while not (pidfile.exists() and pidfile.read_text().strip()):
        assert time.monotonic() < deadline, "the daemon never started"
        harness.ps.wait(0.01)
    daemon = read_pid(pidfile)
    harness.ps.close()
    assert is_gone(daemon)


def test_background_child_holding_stdout_does_not_delay(harness: Harness) -> None:
    started = harness.start("step", ["sh", "-c", "sleep 300 & echo $! > bg.pid; echo done"])
    fin = harness.wait_for("step")["step"]
    assert (fin.outcome, fin.exit_code) == ("exited", 0)
    assert fin.duration_sec < LEFTOVER_GRACE_SEC  # SIGTERM was enough, no escalation
    assert harness.out() == "done\n"
    assert is_gone(read_pid(harness.workdir / "bg.pid"))
    assert tagged_processes({started.tag}) == []


def test_leftover_ignoring_sigterm_is_killed_after_short_grace(harness: Harness) -> None:
    script = "trap '' TERM; sleep 300 & echo $! > bg.pid"
    fin = harness.run(["sh", "-c", script], kill_grace_sec=30)
    assert (fin.outcome, fin.exit_code) == ("exited", 0)
    assert LEFTOVER_GRACE_SEC <= fin.duration_sec < LEFTOVER_GRACE_SEC + 3
    assert is_gone(read_pid(harness.workdir / "bg.pid"))


def test_sigterm_ignoring_step_gets_sigkill_after_grace(harness: Harness) -> None:
    os.mkfifo(harness.workdir / "ready")
    started = harness.start("step", ["sh", "-c", STUBBORN], timeout_sec=0.3, kill_grace_sec=0.5)
    await_ready(harness.workdir)
    fin = harness.wait_for("step")["step"]
    assert (fin.outcome, fin.reason) == ("timeout", "timed out after 0.3s")
    assert 0.8 <= fin.duration_sec < 3.0
    assert is_gone(started.pid)


def test_cancel_running_attempt(harness: Harness) -> None:
    os.mkfifo(harness.workdir / "ready")
    harness.start("plain", ["sleep", "300"])
    harness.start("stubborn", ["sh", "-c", STUBBORN], kill_grace_sec=0.3)
    await_ready(harness.workdir)
    harness.ps.cancel("plain")
    harness.ps.cancel("stubborn")
    done = harness.wait_for("plain", "stubborn")
    for fin in done.values():
        assert (fin.outcome, fin.reason, fin.exit_code, fin.signal) == (
            "cancelled",
            "cancelled",
            None,
            None,
        )
    assert done["plain"].duration_sec < 3.0
    assert 0.3 <= done["stubborn"].duration_sec < 3.0


def test_cancel_wakes_a_stopped_process(harness: Harness) -> None:
    started = harness.start("step", ["sh", "-c", "kill -STOP $$; sleep 300"])
    os.waitid(os.P_PID, started.pid, os.WSTOPPED | os.WNOWAIT)  # blocks until it stopped
    harness.ps.cancel("step")
    fin = harness.wait_for("step")["step"]
    assert fin.outcome == "cancelled"
    assert fin.duration_sec < 3.0  # SIGTERM + SIGCONT, not the 5 s grace


def test_kill_all(harness: Harness) -> None:
    os.mkfifo(harness.workdir / "ready")
    harness.start("a", ["sleep", "300"])
    harness.start("b", ["sh", "-c", STUBBORN], kill_grace_sec=30)
    await_ready(harness.workdir)
    harness.start("c", ["sh", "-c", "sleep 300 & sleep 300"])
    harness.ps.kill_all()
    done = harness.wait_for("a", "b", "c")
    assert {fin.outcome for fin in done.values()} == {"cancelled"}
    assert max(fin.duration_sec for fin in done.values()) < 3.0
    assert harness.ps.running == 0


# -- heartbeat ------------------------------------------------------------------


def test_heartbeat_stall_detected_but_chatty_step_is_not_stalled(harness: Harness) -> None:
    chatty = (
        "i=0; while [ $i -lt 12 ]; do "
        "if [ $((i % 2)) = 0 ]; then echo $i; else echo $i >&2; fi; "
        "i=$((i + 1)); sleep 0.1; done"
    )
    harness.start("quiet", ["sh", "-c", "echo started; exec sleep 300"], heartbeat_timeout_sec=0.5)
    harness.start("chatty", ["sh", "-c", chatty], heartbeat_timeout_sec=0.5)
    done = harness.wait_for("quiet", "chatty")
    quiet = done["quiet"]
    assert (quiet.outcome, quiet.reason) == ("stalled", "no output for 0.5s (stalled)")
    # Declared one heartbeat after the last byte (not up to two).
    assert 0.5 <= quiet.duration_sec < 0.95
    assert (done["chatty"].outcome, done["chatty"].exit_code) == ("exited", 0)
    assert done["chatty"].duration_sec >= 1.2


# -- resources and reaping ------------------------------------------------------


def test_huge_output_does_not_grow_memory(harness: Harness) -> None:
    rss_before = psutil.Process().memory_info().rss
    maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    fin = harness.run(["head", "-c", "200000000", "/dev/zero"])
    assert fin.exit_code == 0
    assert (harness.workdir / "step.out").stat().st_size == 200_000_000
    assert psutil.Process().memory_info().rss - rss_before < 100 * 2**20
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - maxrss_before < 100 * 2**10


def test_no_zombies_after_many_steps(harness: Harness) -> None:
    commands = [
        ["true"],
        ["sh", "-c", "exit 3"],
        ["sh", "-c", "(true &)"],  # an orphan that dies on its own
        ["sh", "-c", "(sleep 0.01 &); sleep 0.05"],  # ... while the step still runs
        ["sh", "-c", "sleep 0.05 &"],  # a leftover killed at completion
    ]
    pending = [f"s{i}" for i in range(200)]
    running: set[str] = set()
    while pending or running:
        while pending and len(running) < 8:
            key = pending.pop()
            harness.start(key, commands[int(key[1:]) % len(commands)])
            running.add(key)
        for fin in harness.ps.wait(WAIT_LIMIT):
            harness.finished[fin.key] = fin
            running.discard(fin.key)
    assert len(harness.finished) == 200
    codes = {fin.exit_code for fin in harness.finished.values()}
    assert codes == {0, 3}
    assert zombie_children() == []
    assert tagged_processes({s.tag for s in harness.started.values()}) == []


def test_exit_is_seen_without_any_sigchld(harness: Harness) -> None:
    # With SIGCHLD back to SIG_DFL no signal is delivered at all: the exit
    # must still wake wait() (through the process's pidfd).
    ours = signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    try:
        fin = harness.run(["sh", "-c", "exit 5"])
    finally:
        signal.signal(signal.SIGCHLD, ours)
    assert fin.exit_code == 5


def test_children_of_the_host_are_left_alone(harness: Harness) -> None:
    host_child = subprocess.Popen(["sh", "-c", "exit 3"])
    os.waitid(os.P_PID, host_child.pid, os.WEXITED | os.WNOWAIT)  # a zombie now
    harness.run(["sh", "-c", "(true &); sleep 0.05"])  # sweeps our children meanwhile
    assert host_child.wait() == 3
    assert subprocess.run(["sh", "-c", "exit 4"]).returncode == 4


# -- waiting --------------------------------------------------------------------


def test_wait_timeout_and_wakeup(harness: Harness) -> None:
    harness.start("step", ["sleep", "300"])
    t0 = time.monotonic()
    assert harness.ps.wait(0.2) == []
    assert time.monotonic() - t0 >= 0.2
    timer = threading.Timer(0.1, harness.ps.wakeup)
    timer.start()
    assert harness.ps.wait(None) == []
    timer.join()
    harness.ps.cancel("step")
    assert harness.wait_for("step")["step"].outcome == "cancelled"


def test_wakeup_from_a_signal_handler(harness: Harness) -> None:
    harness.start("step", ["sleep", "300"])
    previous = signal.signal(signal.SIGUSR1, lambda *_: harness.ps.wakeup())
    try:
        threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGUSR1)).start()
        assert harness.ps.wait(None) == []
    finally:
        signal.signal(signal.SIGUSR1, previous)
    harness.ps.kill_all()
    harness.wait_for("step")


def test_close_restores_sigchld_and_is_idempotent(tmp_path: Path) -> None:
    before = signal.getsignal(signal.SIGCHLD)
    ps = ProcessSet()
    assert signal.getsignal(signal.SIGCHLD) != before
    spec = Harness(ps, tmp_path).spec(["sleep", "300"])
    started = ps.start("step", spec)
    ps.close()
    ps.close()
    assert signal.getsignal(signal.SIGCHLD) == before
    assert is_gone(started.pid)


# -- resume ---------------------------------------------------------------------


def test_kill_leftover_kills_a_crashed_runs_tree(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(HELPERS / "crashing_runner.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=WAIT_LIMIT,
        check=True,
    )
    rec = json.loads(result.stdout)
    victims = [rec["pid"], read_pid(tmp_path / "bg.pid"), read_pid(tmp_path / "daemon.pid")]
    assert all(psutil.pid_exists(pid) for pid in victims)
    try:
        killed = kill_leftover(
            rec["pgid"], rec["pid"], rec["proc_start_time"], grace=2.0, tag=rec["tag"]
        )
        assert killed
        # Their parent is init now (which may not reap here): exited is what counts.
        assert tagged_processes({rec["tag"]}) == []
        assert not kill_leftover(
            rec["pgid"], rec["pid"], rec["proc_start_time"], grace=2.0, tag=rec["tag"]
        )
    finally:
        for pid in tagged_processes({rec["tag"]}):  # never leave sleeps behind
            os.kill(pid, signal.SIGKILL)


def test_kill_leftover_refuses_a_recycled_pid() -> None:
    proc = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        real = psutil.Process(proc.pid).create_time()
        assert not kill_leftover(proc.pid, proc.pid, real + 5.0, grace=0.1)
        assert proc.poll() is None
        assert kill_leftover(proc.pid, proc.pid, real, grace=2.0)
        assert proc.wait(timeout=WAIT_LIMIT) == -signal.SIGTERM
    finally:
        proc.kill()
        proc.wait()
