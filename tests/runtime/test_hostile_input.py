"""Input planrun did not expect: endless files, bytes that are not UTF-8. Each is a one-line
error and exit 2 before anything is recorded, never a traceback (docs/cli.md, "Bad input")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import planc_cli, planrun_cli

from planrun.core.reads import MAX_INPUT_BYTES, MAX_IR_BYTES

PLAN = {
    "plan_id": "P",
    "params": {"x": {"type": "string", "default": ""}},
    "steps": [
        {
            "id": "a",
            "command": "sh",
            "args": ["-c", 'printf "%s" "$X" > x.out'],
            "env": {"X": "${{ params.x }}"},
            "timeout_sec": 30,
        }
    ],
}


def write(tmp_path: Path, plan: object = PLAN, name: str = "plan.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(plan))
    return path


def assert_refused(result: object, message: str) -> None:
    assert getattr(result, "returncode", None) == 2, result
    stderr = str(getattr(result, "stderr", ""))
    assert "Traceback" not in stderr
    assert message in stderr, stderr


# --- bounded reads: /dev/zero never reaches MemoryError ---


def test_an_endless_plan_file_is_refused(tmp_path: Path) -> None:
    result = planrun_cli("/dev/zero", "--state-dir", "s", cwd=tmp_path)
    assert_refused(result, f"planrun: /dev/zero holds more than the {MAX_IR_BYTES} bytes (256 MiB)")
    assert not (tmp_path / "s").exists()


def test_an_endless_params_file_is_refused(tmp_path: Path) -> None:
    plan = write(tmp_path)
    result = planrun_cli(str(plan), "--params-file", "/dev/zero", "--state-dir", "s", cwd=tmp_path)
    assert_refused(result, "planrun: params file /dev/zero holds more than the ")
    assert not (tmp_path / "s").exists()


def test_an_oversized_ir_or_plan_is_refused_from_its_size(tmp_path: Path) -> None:
    big = tmp_path / "big.ir.json"
    with big.open("wb") as handle:
        handle.truncate(MAX_IR_BYTES + 1)  # sparse: nothing is written or read
    result = planrun_cli(str(big), "--state-dir", "s", cwd=tmp_path)
    assert_refused(result, f"holds {MAX_IR_BYTES + 1} bytes, more than the {MAX_IR_BYTES} bytes")
    plan = tmp_path / "big.yaml"
    with plan.open("wb") as handle:
        handle.truncate(MAX_INPUT_BYTES + 1)  # not an IR: a plan, over the plan limit
    result = planrun_cli(str(plan), "--state-dir", "s", cwd=tmp_path)
    assert_refused(result, "error[file-too-large]: the plan file is 33554433 bytes; the limit is")
    assert not (tmp_path / "s").exists()


def test_planc_refuses_an_endless_plan_file(tmp_path: Path) -> None:
    for command in ("check", "compile"):
        result = planc_cli(command, "/dev/zero", cwd=tmp_path)
        assert result.returncode == 1
        assert "error[file-too-large]: the plan file is larger than the limit" in result.stdout + (
            result.stderr
        )


# --- terminal and CI injection: text from a plan or a step is printed, never obeyed ---

HOSTILE = "no\n::error::forged\x1b[2J"
INJECTING = {
    "plan_id": "INJ",
    "globals": {"default_timeout_sec": 30},
    "steps": [
        {
            "id": "a",
            "command": "sh",
            "args": [
                "-c",
                r"printf '\033]0;pwned\007 \033[2J boom\n::error::forged\n' >&2; exit 3",
            ],
        },
        {"id": "b", "command": HOSTILE},
    ],
}
RAW = ("\x1b]", "\x07", "\x1b[2J", "\x1b[", "\x9b")


def assert_inert(text: str) -> None:
    for raw in RAW:
        assert raw not in text, (raw, text)
    # planrun's own annotations carry properties (`::error file=…,line=…,title=…::`); a forged
    # one would be the step's `::error::forged` at the start of a line
    assert not any(line.startswith("::error::") for line in text.splitlines()), text


def test_a_step_cannot_drive_the_terminal_or_forge_ci_lines(tmp_path: Path) -> None:
    plan = write(tmp_path, INJECTING)
    env = {"GITHUB_ACTIONS": "true", "NO_COLOR": "1"}
    run = planrun_cli(str(plan), "--state-dir", "s", cwd=tmp_path, env=env)
    assert run.returncode == 1
    assert_inert(run.stdout + run.stderr)
    assert "    ! \\x1b]0;pwned\\x07 \\x1b[2J boom\n    ! ::error::forged\n" in run.stderr
    assert "command not found: no\\n::error::forged\\x1b[2J" in run.stderr
    assert "::group::a output (2 lines, stdout, then stderr; | stdout, ! stderr)\n" in run.stderr
    for command in (["show"], ["status"], ["runs"]):
        shown = planrun_cli(*command, "--state-dir", "s", cwd=tmp_path, env=env)
        assert shown.returncode == 0
        assert_inert(shown.stdout + shown.stderr)
    shown = planrun_cli("show", "--state-dir", "s", cwd=tmp_path).stdout
    assert "no\\n::error::forged\\x1b[2J" in shown
    # the log file keeps what the step wrote, byte for byte
    logs = planrun_cli("logs", "--stderr", "--state-dir", "s", "latest", "a", cwd=tmp_path)
    stderr_logs = list((tmp_path / "s").rglob("a.1.stderr"))
    assert stderr_logs and b"\x1b]0;pwned\x07" in stderr_logs[0].read_bytes(), logs


def test_dry_run_prints_commands_inert(tmp_path: Path) -> None:
    plan = write(tmp_path, INJECTING)
    result = planrun_cli(str(plan), "--dry-run", cwd=tmp_path)
    assert result.returncode == 0
    assert_inert(result.stdout)
    assert "no\\n::error::forged\\x1b[2J" in result.stdout


def test_planc_prints_a_hostile_file_name_inert(tmp_path: Path) -> None:
    name = "p\x1b]0;pwned\x07\n::error::x.yaml"
    (tmp_path / name).write_text("plan_id: P\nsteps:\n  - id: a\n    command: b\n")
    for fmt in ("text", "github"):
        result = planc_cli("check", "--format", fmt, name, cwd=tmp_path)
        assert result.returncode == 0
        assert_inert(result.stdout + result.stderr)


# --- bytes that are not UTF-8: refused before the run is recorded, or recorded as `\xNN` ---

BYTE = "\udcff"  # how Python hands over the byte 0xFF from argv, the environment or a file name


def runs_in(state_dir: Path) -> list[dict[str, object]]:
    listed = planrun_cli("runs", "--json", "--state-dir", str(state_dir), cwd=state_dir.parent)
    if listed.returncode != 0:
        return []
    runs: list[dict[str, object]] = json.loads(listed.stdout)
    return runs


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["-p", f"x=a{BYTE}"], {}, "planrun: -p x: the value is not UTF-8 text (byte 0xFF at"),
        (["--state-dir", f"s{BYTE}"], {}, "planrun: the state dir is not UTF-8 text (byte 0xFF"),
        ([], {"PLANRUN_STATE_DIR": f"s{BYTE}"}, "planrun: the state dir is not UTF-8 text"),
        (["--workdir", f"w{BYTE}"], {}, "planrun: --workdir is not UTF-8 text (byte 0xFF at"),
    ],
)
@pytest.mark.parametrize(
    "command", [[], ["watch", "--interval", "0.1", "--max-runs", "1"]], ids=["run", "watch"]
)
def test_an_option_that_is_not_utf8_is_refused_before_the_run(
    tmp_path: Path, command: list[str], args: list[str], env: dict[str, str], message: str
) -> None:
    plan = write(tmp_path)
    where = [] if env else ["--state-dir", "s"]  # a later --state-dir wins
    result = planrun_cli(
        *command[:1], str(plan), *command[1:], *where, *args, cwd=tmp_path, env=env
    )
    assert_refused(result, message)
    assert runs_in(tmp_path / "s") == []
    assert not (tmp_path / "x.out").exists()


def test_a_params_file_value_that_is_not_text_is_refused(tmp_path: Path) -> None:
    plan = write(tmp_path)
    (tmp_path / "p.json").write_text('{"x": "\\udcff"}')
    result = planrun_cli(str(plan), "--params-file", "p.json", "--state-dir", "s", cwd=tmp_path)
    assert_refused(result, "planrun: param x: the value is not UTF-8 text (byte 0xFF at position 0")
    assert runs_in(tmp_path / "s") == []


READING_ENV = {
    "plan_id": "E",
    "globals": {"default_timeout_sec": 30},
    "steps": [
        {"id": "a", "command": "sh", "args": ["-c", "true", "${{ env.READ }}"]},
        {"id": "b", "command": "true", "condition": "env.COND == 'x'", "secrets": ["TOK"]},
    ],
}


@pytest.mark.parametrize("name", ["READ", "COND", "TOK"])
def test_an_environment_variable_the_plan_reads_must_be_text(tmp_path: Path, name: str) -> None:
    plan = write(tmp_path, READING_ENV)
    env = {name: f"abcd{BYTE}ef", "UNREAD": BYTE}
    result = planrun_cli(str(plan), "--state-dir", "s", cwd=tmp_path, env=env)
    assert_refused(
        result,
        f"planrun: environment variable {name}, which the plan reads, is not UTF-8 text"
        " (byte 0xFF at position 4 is not UTF-8)\n",
    )
    assert runs_in(tmp_path / "s") == []


def test_a_variable_the_plan_does_not_read_reaches_steps_byte_for_byte(tmp_path: Path) -> None:
    plan = {
        "plan_id": "E",
        "steps": [
            {
                "id": "a",
                "command": "sh",
                "args": ["-c", 'printf "%s" "$UNREAD" > unread.out'],
                "timeout_sec": 30,
            }
        ],
    }
    path = write(tmp_path, plan)
    result = planrun_cli(str(path), "--state-dir", "s", cwd=tmp_path, env={"UNREAD": f"a{BYTE}"})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "unread.out").read_bytes() == b"a\xff"


def test_a_plan_file_whose_name_is_not_utf8_runs_and_is_recorded_escaped(tmp_path: Path) -> None:
    name = f"pl{BYTE}an.json"
    write(tmp_path, PLAN, name)
    result = planrun_cli(name, "--state-dir", "s", "-p", "x=ok", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "x.out").read_text() == "ok"
    [run] = runs_in(tmp_path / "s")
    assert run["status"] == "success"
    argv = run["argv"]
    assert isinstance(argv, list) and "pl\\xffan.json" in argv
    ir = planc_cli("compile", name, cwd=tmp_path)
    assert ir.returncode == 0, ir.stderr
    assert json.loads(ir.stdout)["source"]["path"] == "pl\\xffan.json"
    checked = planc_cli("check", name, cwd=tmp_path)
    assert checked.returncode == 0
    assert "Traceback" not in checked.stderr
