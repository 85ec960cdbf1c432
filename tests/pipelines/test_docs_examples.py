"""The plans shown in the guides check clean, and the getting-started plan runs as shown."""

from __future__ import annotations

import datetime
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from pipelines_support import commit_all, environment, git, make_remote, run_pipeline
from support import REPO, planc_cli

from planrun.store import open_reader

GUIDES = ["docs/getting-started.md", "docs/script-to-plan.md"]
FENCE = re.compile(r"```yaml\n(.*?)```", re.DOTALL)


def plans_in(guide: str) -> list[str]:
    text = (REPO / guide).read_text(encoding="utf-8")
    return [block for block in FENCE.findall(text) if block.startswith("plan_id:")]


@pytest.mark.parametrize("guide", GUIDES)
def test_guide_plans_check_without_a_diagnostic(guide: str, tmp_path: Path) -> None:
    blocks = plans_in(guide)
    assert blocks, f"{guide} shows no plan"
    for number, block in enumerate(blocks):
        path = tmp_path / f"example{number}.yaml"
        path.write_text(block, encoding="utf-8")
        done = planc_cli("check", str(path))
        assert (done.returncode, done.stdout, done.stderr) == (0, "", ""), block


def test_getting_started_plan_runs_as_shown(tmp_path: Path) -> None:
    (hello,) = plans_in("docs/getting-started.md")
    work = tmp_path / "work"
    work.mkdir()
    plan = work / "hello.yaml"
    plan.write_text(hello, encoding="utf-8")
    before = datetime.date.today().isoformat()
    result = run_pipeline(tmp_path, plan, {"name": "Ada"}, "--workdir", str(work))
    after = datetime.date.today().isoformat()  # the run may straddle midnight

    assert result.exit_code == 0, result.output
    assert result.statuses == {"greet": "success", "today": "success", "note": "success"}
    assert (work / "note.txt").read_text(encoding="utf-8") in {
        f"Ada was greeted on {day}\n" for day in (before, after)
    }


# `$ planrun exec …` in a console block, then the lines it prints (up to the next `$ ` or fence).
EXEC_EXAMPLE = re.compile(
    r"^\$ (planrun exec [^\n]*?)(?: {2,}#[^\n]*)?\n((?:(?!\$ |```)[^\n]*\n)*)", re.M
)
EXEC_DOCS = ["README.md", "docs/cli.md", "docs/api.md"]


def exec_examples() -> list[tuple[str, str, str]]:
    found = []
    for doc in EXEC_DOCS:
        for block in re.findall(
            r"```console\n(.*?)```", (REPO / doc).read_text(encoding="utf-8"), re.S
        ):
            found += [(doc, command, shown) for command, shown in EXEC_EXAMPLE.findall(block)]
    return found


def test_the_docs_show_planrun_exec() -> None:
    assert {doc for doc, _, _ in exec_examples()} >= {"README.md", "docs/cli.md"}


@pytest.mark.parametrize(("doc", "command", "shown"), exec_examples())
def test_every_planrun_exec_example_runs_as_shown(
    tmp_path: Path, doc: str, command: str, shown: str
) -> None:
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "PLANRUN_STATE_DIR": str(tmp_path / "state"),
    }
    done = subprocess.run(
        command, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    if shown:
        assert done.stdout == shown
    assert "success" in done.stderr  # planrun's last line: the run and its outcome


def test_the_api_example_runs(tmp_path: Path) -> None:
    text = (REPO / "docs" / "api.md").read_text(encoding="utf-8")
    (program,) = re.findall(r"```python\n(.*?)```", text, re.S)
    (plan,) = [b for b in FENCE.findall(text) if b.startswith("plan_id:")]
    (tmp_path / "hello.yaml").write_text(plan, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-c", program], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert (
        lines[0]
        == "warning unused-provides hello.yaml 8 16 step `greet` provides `greeting`, which no step consumes or reads"
    )
    assert re.fullmatch(r"\S+ success 0", lines[1])
    assert lines[2] == "hello-Ada"
    assert [line.split()[1] for line in lines[3:]] == [
        "run_started",
        "step_started",
        "step_succeeded",
        "run_finished",
    ]


# --- every command shown in README.md and docs/*.md is run -------------------------------------

DOCUMENTS = ["README.md", *sorted(f"docs/{p.name}" for p in (REPO / "docs").glob("*.md"))]
BLOCK = re.compile(r"```(\w*)\n(.*?)```", re.DOTALL)
SHOWN_RUN_ID = re.compile(r"\b20\d{6}T\d{4,6}(?:Z-[0-9a-f]{6})?\b")

# Blocks of shell that are not commands to type: the first line of the block, and why.
NOT_COMMANDS = {
    ("docs/script-to-plan.md", "#!/usr/bin/env bash"): "the script the guide turns into a plan",
    ("docs/dataflow.md", 'echo "snapshot_ref=$(git rev-parse HEAD)" >> "$PLAN_OUTPUT"'): (
        "lines of a step's script (what $PLAN_OUTPUT takes), run by tests/runtime/test_dataflow.py"
    ),
}
# Commands run by another test, or that cannot run here, and why.
ELSEWHERE = {
    (
        "README.md",
        "python3 -m venv .venv && .venv/bin/pip install -q '.[test]' && .venv/bin/python -m pytest -q",
    ): ("installs and runs this whole suite: .ci/run does exactly that"),
    ("docs/getting-started.md", "python3 -m venv .venv"): "installing: .ci/run does it",
    ("docs/getting-started.md", ".venv/bin/pip install -q .            # planc and planrun"): (
        "installing: .ci/run does it"
    ),
    ("docs/getting-started.md", ". .venv/bin/activate"): "the test's PATH has the venv first",
    ("docs/analysis.md", "python tests/analysis/bench_analyses.py --sizes 1000,10000 --rows 50"): (
        "a benchmark of minutes; tests/analysis/test_docs.py runs the analyses it times"
    ),
}
for _synopsis in (
    "planc check PLAN                                  # rules + bound, reachability, cleanup, invariants",
    "planc check --analyses=bound,cleanup PLAN         # choose; also `all` and `none`",
    "planc check --format json PLAN                    # every format of check has them",
    "planc bound PLAN [-j N] [--format json]",
    "planc simulate PLAN [--fail STEP[,STEP…]] [--timeout STEP[,STEP…]] [--env NAME=VALUE]",
):
    ELSEWHERE[("docs/analysis.md", _synopsis)] = "a synopsis (PLAN is a placeholder)"
_UI_BLOCK = re.compile(r"export PLANRUN_UI_TOKEN=|planrun ui |curl |RUN=\$\(python3 ")
_WORKED = re.compile(r"planc (bound|check|simulate) tests/analysis/plans/")
_BENCHMARKS = re.compile(r"python benchmarks/(compile_scale|runtime_vs_floor)\.py")
# Commands shown failing on purpose, and their exit code.
EXIT_CODES = {
    (
        "README.md",
        "planrun checkin.ir.json -p repo=../app        # or run the plan file directly",
    ): 1,
    ("README.md", "GITHUB_ACTIONS=true planrun plans/checkin.yaml -p repo=../app"): 1,
}


def shown_commands(doc: str) -> list[str]:
    """`$ ` lines of console blocks; the lines (joined at a trailing `\\`) of sh/bash blocks."""
    commands: list[str] = []
    for lang, body in BLOCK.findall((REPO / doc).read_text(encoding="utf-8")):
        lines = body.splitlines()
        if lang == "console":
            commands += [line[2:] for line in lines if line.startswith("$ ")]
        elif lang in ("sh", "bash", "shell") and lines and (doc, lines[0]) not in NOT_COMMANDS:
            joined = "\n".join(lines).replace("\\\n", "")
            commands += [c for c in joined.splitlines() if c.strip() and not c.startswith("#")]
    return commands


def why_not_run_here(doc: str, command: str) -> str | None:
    if (doc, command) in ELSEWHERE:
        return ELSEWHERE[(doc, command)]
    if doc == "docs/views.md" and _UI_BLOCK.match(command):
        return "the `planrun ui` blocks: run as shown by tests/views/test_web_access.py and test_web_actions_cli.py"
    if doc == "docs/invariants.md":
        return (
            "the reader's release.yaml: tests/analysis/test_invariants.py runs the doc's examples"
        )
    if doc == "docs/fingerprints.md":
        return (
            "the reader's own plans: tests/runtime/test_fingerprints.py and"
            " test_simulate_reuse.py run these scenarios"
        )
    if doc == "docs/composition.md" and command.startswith("planrun "):
        return "the doc's own plans: tests/pipelines/test_composition_docs.py writes and runs them"
    if command.startswith("planrun watch "):
        return "a watcher runs until stopped: tests/pipelines/test_watch_docs.py runs each one"
    if doc == "docs/analysis.md" and _WORKED.match(command):
        return "a worked example: tests/analysis/test_docs.py checks what it prints"
    if doc == "docs/benchmarks.md" and _BENCHMARKS.match(command):
        return "a benchmark of minutes; tests/test_benchmarks.py runs each script's --quick"
    return None


def test_every_exemption_is_still_shown() -> None:
    shown = {(doc, c) for doc in DOCUMENTS for c in shown_commands(doc)}
    assert set(ELSEWHERE) - shown == set()
    assert set(EXIT_CODES) - shown == set()
    blocks = {
        (doc, body.splitlines()[0])
        for doc in DOCUMENTS
        for _, body in BLOCK.findall((REPO / doc).read_text(encoding="utf-8"))
        if body.strip()
    }
    assert set(NOT_COMMANDS) - blocks == set()


def _copy_of_the_repo(tmp_path: Path) -> Path:
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
        text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    copy = tmp_path / "repo"
    for name in listed:
        source = REPO / name
        if source.is_file():
            target = copy / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return copy


def _app_with_a_remote(tmp_path: Path) -> None:
    """`../app`: a clone whose origin has `main` and a `feature` branch; its app.py has an
    unused import (ruff fails), its Makefile a `check` target (safe-merge's validate_cmd)."""
    remote = make_remote(
        tmp_path,
        {
            "app.py": "import os\n",
            "test_app.py": "def test_ok() -> None:\n    assert True\n",
            "Makefile": "check:\n\ttrue\n",
        },
    )
    git(remote.other, "checkout", "--quiet", "-b", "feature")
    commit_all(remote.other, "feature work", {"feature.txt": "new\n"})
    git(remote.other, "push", "--quiet", "origin", "feature")
    remote.work.rename(tmp_path / "app")


def _break_the_app(repo: Path) -> None:
    (repo.parent / "app" / "app.py").write_text("import os\n")


def _hello_fails_on_notes(repo: Path) -> None:
    """getting-started §6: the plan gets a step that reads notes.txt, and fails without it."""
    step = re.search(r"```yaml\n(  - id: read_notes\n.*?)```", GUIDE, re.DOTALL)
    assert step is not None
    with (repo / "hello.yaml").open("a", encoding="utf-8") as plan:
        plan.write(step.group(1))
    done = subprocess.run(
        ["planrun", "hello.yaml", "-p", "name=Ada"], cwd=repo, env=_environment(),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr


def _a_smoke_run(repo: Path) -> None:
    """views.md shows a run of a plan SMOKE whose `test` step fails on stderr."""
    (repo / "smoke.yaml").write_text(
        "plan_id: SMOKE\nglobals: {default_timeout_sec: 60}\nsteps:\n"
        "  - {id: lint, command: 'true'}\n"
        "  - id: test\n    on_failure: continue\n    command: sh\n"
        "    args: ['-c', 'echo FAIL: test_x >&2; echo assert 1 == 2 >&2; exit 3']\n"
    )
    subprocess.run(["planrun", "smoke.yaml"], cwd=repo, env=_environment(), timeout=120,
                   capture_output=True, check=True)  # fmt: skip


GUIDE = (REPO / "docs" / "getting-started.md").read_text(encoding="utf-8")
# What the reader did between two commands (edited a file, ran something earlier in the text).
BEFORE: dict[tuple[str, str], Callable[[Path], None]] = {
    ("README.md", "GITHUB_ACTIONS=true planrun plans/checkin.yaml -p repo=../app"): _break_the_app,
    ("docs/getting-started.md", 'echo "Remember the milk" > notes.txt'): _hello_fails_on_notes,
    ("docs/views.md", "planrun runs"): _a_smoke_run,
}


def _environment() -> dict[str, str]:
    env = {k: v for k, v in environment().items() if k not in ("CI", "GITHUB_ACTIONS")}
    env.pop("GITHUB_STEP_SUMMARY", None)
    return env


def _latest_run(repo: Path) -> str | None:
    if not (repo / ".planrun").exists():
        return None
    with open_reader(repo / ".planrun") as reader:
        return reader.latest_run_id()


RUNNABLE = [
    doc for doc in DOCUMENTS
    if any(why_not_run_here(doc, c) is None for c in shown_commands(doc))
]  # fmt: skip


@pytest.mark.parametrize("doc", RUNNABLE)
def test_the_commands_shown_run(doc: str, tmp_path: Path) -> None:
    """Each command of `doc` in order, in a copy of the repository (a run id shown stands for
    the latest run), exits 0 or as the text says."""
    repo = _copy_of_the_repo(tmp_path)
    _app_with_a_remote(tmp_path)
    (hello,) = plans_in("docs/getting-started.md")
    (repo / "hello.yaml").write_text(hello, encoding="utf-8")
    ran = 0
    for command in shown_commands(doc):
        if why_not_run_here(doc, command) is not None:
            continue
        if (doc, command) in BEFORE:
            BEFORE[(doc, command)](repo)
        latest = _latest_run(repo)
        actual = SHOWN_RUN_ID.sub(latest, command) if latest else command
        if command.startswith("python3 -m venv .venv && .venv/bin/pip install -q . && "):
            actual = actual.split(" && ", 2)[2]  # installing is .ci/run's job
        done = subprocess.run(
            ["bash", "-c", actual], cwd=repo, env=_environment(), capture_output=True,
            text=True, timeout=300, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        expected = EXIT_CODES.get((doc, command), 0)
        assert done.returncode == expected, f"{doc}: $ {command}\n{done.stdout}{done.stderr}"
        ran += 1
    assert ran > 0


def test_the_readme_shows_a_failure_in_ci_as_it_is(tmp_path: Path) -> None:
    """The GitHub Actions block of README.md: the group, the annotation at the step, the table."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    (block,) = [b for lang, b in BLOCK.findall(text) if "$ GITHUB_ACTIONS=true" in b]
    command, *shown = block.splitlines()
    repo = _copy_of_the_repo(tmp_path)
    _app_with_a_remote(tmp_path)
    done = subprocess.run(
        ["bash", "-c", command[2:]], cwd=repo, env=_environment(), capture_output=True,
        text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 1

    def normal(line: str) -> str:
        line = SHOWN_RUN_ID.sub("RUN", line)
        line = re.sub(r"\d\d:\d\d:\d\d", "HH:MM:SS", line)
        return re.sub(r"\d+\.\d+s", "N.Ns", line).rstrip()

    real = [normal(line) for line in done.stderr.splitlines()]
    for line in shown:
        if line.startswith("::error"):  # shown cut at its first lines
            assert any(r.startswith(normal(line).removesuffix("…")) for r in real), line
        elif not line.startswith("    | ") or "F401" in line:  # ruff's own lines may vary
            assert normal(line) in real, line
