"""The CLI shell (docs/cli.md): `planrun PLAN` shown in the help, the state dir's precedence,
the -j range, and shell completion run by the real programs as each shell runs them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support import REPO, planrun_cli, write_plan

BIN = Path(sys.executable).parent
PLAN = {
    "plan_id": "SHELL",
    "globals": {"default_timeout_sec": 30},
    "steps": [
        {"id": "build", "command": "true"},
        {"id": "test", "command": "true", "depends_on": ["build"]},
    ],
}
OTHER = {"plan_id": "OTHER", "steps": [{"id": "lint", "command": "true", "timeout_sec": 30}]}


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("_PLAN", "PLANRUN_"))}
    return {**env, "PATH": f"{BIN}{os.pathsep}{env['PATH']}", **extra}


def installed(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The installed `planrun` script (its usage lines name it as a user types it)."""
    return subprocess.run(
        ["planrun", *args], cwd=cwd, env=_env(**env), capture_output=True, text=True,
        timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def _run_ids(state: Path) -> list[str]:
    return sorted(p.name for p in (state / "runs").iterdir())


# --- help -----------------------------------------------------------------------------------


def test_help_shows_that_planrun_plan_runs_the_default_command(tmp_path: Path) -> None:
    shown = installed("--help", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[:2] == [
        "Usage: planrun [OPTIONS] COMMAND [ARGS]...",
        "  or:  planrun [OPTIONS] [PLAN]",
    ]
    assert "`planrun PLAN …` is `planrun run PLAN …`, the default command" in shown.stdout
    assert re.search(r"^  run +\(default\) Run PLAN ", shown.stdout, re.M)
    # the default command is still routed as before: the first word naming no command
    assert installed("plan.json", "--help", cwd=tmp_path).stdout.startswith(
        "Usage: planrun run [OPTIONS] [PLAN]"
    )


@pytest.mark.parametrize(
    "args",
    [
        ["--only", "report", "plan.json"],
        ["--force", "status", "plan.json"],
        ["-j", "1", "--only=report", "plan.json"],
        ["plan.json", "--only", "report"],
    ],
)
def test_an_option_value_that_names_a_command_stays_the_default_commands(
    tmp_path: Path, args: list[str]
) -> None:
    """Only the first word decides: an option of the default command starts it, whatever the
    words after it (a step may be called `report` or `status`, like the commands)."""
    steps = [{"id": "status", "command": "true"}, {"id": "report", "command": "true"}]
    write_plan(tmp_path, {"plan_id": "NAMES", "steps": steps})
    done = installed(*args, "--dry-run", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "report" in done.stdout


def test_a_usage_error_keeps_its_lines(tmp_path: Path) -> None:
    """The second usage line is for --help only: an error says what it always said."""
    done = installed("--bogus", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.splitlines()[:2] == [
        "Usage: planrun [OPTIONS] COMMAND [ARGS]...",
        "Try 'planrun --help' for help.",
    ]
    assert "  or:  " not in done.stderr


@pytest.mark.parametrize("command", ["run", "watch"])
def test_counts_show_a_sane_range(tmp_path: Path, command: str) -> None:
    shown = planrun_cli(command, "--help", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert re.search(
        r"-j, --max-concurrency INTEGER RANGE\s+Override the plan\.  \[x>=1\]", shown.stdout
    )
    assert "9223372036854775807" not in shown.stdout


def test_run_and_watch_share_one_declaration_of_their_options(tmp_path: Path) -> None:
    """The options both take read the same in both helps."""

    def options(command: str) -> dict[str, str]:
        text = planrun_cli(command, "--help", cwd=tmp_path).stdout
        rows = re.split(r"\n  (?=-)", text.split("Options:\n", 1)[1])
        return {row.split()[0].rstrip(","): " ".join(row.split()) for row in rows}

    run, watch = options("run"), options("watch")
    shared = ["--state-dir", "-p", "--params-file", "-j", "--workdir", "--kill-grace", "--sync"]
    shared += ["-q", "-v", "--json", "--color"]
    assert {o: run[o] for o in shared} == {o: watch[o] for o in shared}


# --- the state dir: --state-dir, else $PLANRUN_STATE_DIR, else .planrun ---------------------


@pytest.mark.parametrize(
    ("env", "option", "where"),
    [
        ("env", None, "env"),
        ("env", "opt", "opt"),
        ("", None, ".planrun"),  # empty: as if unset
        (None, None, ".planrun"),
        ("env", "", "env"),  # `--state-dir ''`: as if not given
    ],
)
def test_state_dir_precedence(
    tmp_path: Path, env: str | None, option: str | None, where: str
) -> None:
    write_plan(tmp_path, PLAN)
    extra = {} if env is None else {"PLANRUN_STATE_DIR": env}
    args = [] if option is None else ["--state-dir", option]
    done = subprocess.run(
        ["planrun", "plan.json", "-q", *args], cwd=tmp_path, env=_env(**extra),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    made = {p for p in ("env", "opt", ".planrun") if (tmp_path / p).exists()}
    assert made == {where}
    listed = subprocess.run(
        ["planrun", "runs", "--json", *args], cwd=tmp_path, env=_env(**extra),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert _run_ids(tmp_path / where)[0] in listed.stdout


def test_watch_takes_the_state_dir_from_the_environment(tmp_path: Path) -> None:
    write_plan(tmp_path, PLAN)
    done = subprocess.run(
        ["planrun", "watch", "plan.json", "--no-files", "--interval", "1s", "--max-runs", "1",
         "-q"],
        cwd=tmp_path, env=_env(PLANRUN_STATE_DIR="env"), capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert len(_run_ids(tmp_path / "env")) == 1
    assert not (tmp_path / ".planrun").exists()


def test_a_state_dir_that_is_not_utf8_from_the_environment_is_refused(tmp_path: Path) -> None:
    write_plan(tmp_path, PLAN)
    done = subprocess.run(
        [b"planrun", b"plan.json"], cwd=tmp_path,
        env={**{k.encode(): v.encode() for k, v in _env().items()},
             b"PLANRUN_STATE_DIR": b"st\xffate"},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.startswith("planrun: the state dir is not UTF-8 text (byte 0xFF")


# --- completion -------------------------------------------------------------------------------


def complete(
    words: str, cwd: Path, env: dict[str, str] | None = None, program: str = "planrun"
) -> list[str]:
    """What `program` offers for the last word of `words` (empty after a trailing space), asked
    as bash's completion function asks it."""
    cword = len(words.split()) - (0 if words.endswith(" ") else 1)
    done = subprocess.run(
        [program],
        cwd=cwd,
        env=_env(
            **{f"_{program.upper()}_COMPLETE": "bash_complete"},
            COMP_WORDS=words,
            COMP_CWORD=str(cword),
            **(env or {}),
        ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    lines = [line for line in done.stdout.splitlines() if line]  # "\n": nothing
    return [line for line in lines if line.startswith("plain,")] + [
        line.split(",", 1)[0] for line in lines if not line.startswith("plain,")
    ]


def plain(*values: str) -> list[str]:
    return [f"plain,{value}" for value in values]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A directory with plan.json (SHELL) and other.json (OTHER), each run once: SHELL first."""
    work = tmp_path_factory.mktemp("runs")
    write_plan(work, PLAN)
    write_plan(work, OTHER, "other.json")
    for plan in ("plan.json", "other.json"):
        done = planrun_cli(plan, "-q", "--state-dir", "state", cwd=work)
        assert done.returncode == 0, done.stderr
    ids = _run_ids(work / "state")
    from planrun.store import open_reader

    with open_reader(work / "state") as reader:
        newest_first = [run.run_id for run in reader.runs()]
    assert sorted(newest_first) == ids
    return work, newest_first


def test_run_ids_complete_newest_first(two_runs: tuple[Path, list[str]]) -> None:
    work, runs = two_runs
    env = {"PLANRUN_STATE_DIR": "state"}
    for words in ("planrun status ", "planrun show ", "planrun report ", "planrun explain lint "):
        assert complete(words, work, env) == plain(*runs), words
    assert complete("planrun --resume ", work, env) == plain(*runs)
    assert complete(f"planrun status {runs[1][:-1]}", work, env) == plain(runs[1])
    assert complete("planrun status --state-dir state ", work) == plain(*runs)
    assert complete("planrun status ", work) == []  # .planrun: no runs there


def test_step_ids_complete_from_the_plan_the_run_or_the_latest_run(
    two_runs: tuple[Path, list[str]],
) -> None:
    work, (other_run, shell_run) = two_runs
    env = {"PLANRUN_STATE_DIR": "state"}
    assert complete("planrun plan.json --only ", work, env) == plain("build", "test")
    assert complete("planrun -j 2 plan.json --from t", work, env) == plain("test")
    assert complete("planrun run plan.json --force ", work, env) == plain("build", "test")
    assert complete(f"planrun --resume {shell_run} --only ", work, env) == plain("build", "test")
    assert complete("planrun explain ", work, env) == plain("lint")  # the latest run: OTHER
    assert complete("planrun logs ", work, env) == plain(other_run, shell_run, "lint")
    assert complete(f"planrun logs {shell_run} ", work, env) == plain("build", "test")


def test_commands_options_and_files_complete(two_runs: tuple[Path, list[str]]) -> None:
    work, _ = two_runs
    assert complete("planrun r", work) == [*plain("report", "run", "runs"), "file"]
    assert complete("planrun --state-dir ", work) == ["dir"]
    assert complete("planrun --dry", work) == plain("--dry-run")  # the default command's
    assert complete("planrun --vers", work) == plain("--version")
    assert complete("planrun watch plan.json --max-r", work) == plain("--max-runs")
    assert complete("planc ch", work, program="planc") == plain("check")
    assert complete("planc explain no-t", work, program="planc") == plain("no-timeout")


@pytest.mark.parametrize("damage", ["missing", "file", "garbage", "group-writable", "bad-plan"])
def test_a_missing_or_damaged_state_dir_or_plan_completes_nothing(
    tmp_path: Path, damage: str
) -> None:
    """No traceback, no message: no candidates. Nothing is created or changed."""
    state = tmp_path / "state"
    write_plan(tmp_path, PLAN)
    if damage == "file":
        state.write_text("not a directory")
    elif damage in ("garbage", "group-writable"):
        done = planrun_cli("plan.json", "-q", "--state-dir", "state", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        if damage == "garbage":
            (state / "state.db").write_bytes(os.urandom(4096))
        else:
            state.chmod(0o775)
    elif damage == "bad-plan":
        (tmp_path / "plan.json").write_text('{"plan_id": "P", "steps": [{"id": "a"}]}')
    before = sorted((p.relative_to(tmp_path), p.stat().st_size) for p in tmp_path.rglob("*"))
    env = {"PLANRUN_STATE_DIR": "state"}
    for words in ("planrun status ", "planrun explain ", "planrun logs ", "planrun --resume "):
        assert complete(words, tmp_path, env) == [], words
    from_plan = [] if damage == "bad-plan" else plain("build", "test")  # the plan is enough
    assert complete("planrun plan.json --only ", tmp_path, env) == from_plan
    after = sorted((p.relative_to(tmp_path), p.stat().st_size) for p in tmp_path.rglob("*"))
    assert after == before


def test_python_m_planrun_completes_too(two_runs: tuple[Path, list[str]]) -> None:
    work, _ = two_runs
    done = subprocess.run(
        [sys.executable, "-m", "planrun"], cwd=work,
        env=_env(_PLANRUN_COMPLETE="bash_complete", COMP_WORDS="planrun explain ", COMP_CWORD="2",
                 PLANRUN_STATE_DIR="state"),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert (done.returncode, done.stdout, done.stderr) == (0, "plain,lint\n", "")


# --- the documented set-up, run in each shell --------------------------------------------------


def _shown(lang: str) -> str:
    text = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    section = text.split("## Shell completion\n", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(rf"```{lang}\n(.*?)```", section, re.S)
    return str(block)


def test_bash_completes_run_ids_with_the_documented_set_up(
    two_runs: tuple[Path, list[str]],
) -> None:
    """The bash lines of docs/cli.md, then bash's completion of `planrun status <TAB>` and of
    `planc <TAB>`, as the shell calls the functions they registered."""
    work, runs = two_runs
    script = _shown("bash") + (
        "COMP_WORDS=(planrun status ''); COMP_CWORD=2; _planrun_completion planrun\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
        "COMPREPLY=(); COMP_WORDS=(planc e); COMP_CWORD=1; _planc_completion planc\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(
        ["bash", "-c", script], cwd=work, env=_env(PLANRUN_STATE_DIR="state"),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines() == [*runs, "explain"]


@pytest.mark.skipif(
    shutil.which("zsh") is None, reason="zsh is not installed (.ci/run installs it)"
)
def test_zsh_registers_the_documented_completion(tmp_path: Path) -> None:
    script = _shown("zsh") + 'print -r -- "$_comps[planrun] $_comps[planc]"\n'
    done = subprocess.run(
        ["zsh", "-f", "-c", script], cwd=tmp_path, env=_env(HOME=str(tmp_path)),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == "_planrun_completion _planc_completion\n"


@pytest.mark.skipif(
    shutil.which("fish") is None, reason="fish is not installed (.ci/run installs it)"
)
def test_fish_completes_with_the_documented_set_up(two_runs: tuple[Path, list[str]]) -> None:
    work, runs = two_runs
    script = _shown("fish") + "complete --do-complete 'planrun status '\n"
    done = subprocess.run(
        ["fish", "--no-config", "-c", script], cwd=work,
        env=_env(HOME=str(work), PLANRUN_STATE_DIR="state"),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (0, "")
    # fish orders candidates itself, numbers inside words by value ("-5a7907" before "-31eec3"):
    # what planrun offers is the set
    assert sorted(line.split("\t")[0] for line in done.stdout.splitlines()) == sorted(runs)
