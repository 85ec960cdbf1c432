"""Plans you can discover: `planrun --help-params PLAN` and `planc describe PLAN`."""

from __future__ import annotations

from pathlib import Path

from support import planc_cli, planrun_cli

PLAN = """\
plan_id: RELEASE
version: "2.1"
description: Build and publish a release.
params:
  channel:
    type: string
    default: beta
    choices: [beta, stable]
    description: Where the release goes.
  dry:
    type: bool
    default: false
  version:
    type: string
    description: The version to publish, e.g. 1.4.0.
globals: {default_timeout_sec: 60}
steps:
  - id: build
    description: Build the wheel
    command: python3
    args: [-m, build]
  - id: publish
    depends_on: [build]
    condition: "params.dry == false"
    command: twine
    args: [upload, dist/*]
"""

PARAMS = """\
params of plan RELEASE (pass them with -p NAME=VALUE or --params-file FILE):
  channel  string  default: beta  choices: beta, stable
      Where the release goes.
  dry      bool    default: false
  version  string  required
      The version to publish, e.g. 1.4.0.
"""


def test_planrun_help_params_lists_types_defaults_choices(tmp_path: Path) -> None:
    (tmp_path / "release.yaml").write_text(PLAN)
    done = planrun_cli("--help-params", "release.yaml", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (0, PARAMS), done.stderr
    assert not (tmp_path / ".planrun").exists()  # nothing ran, nothing was recorded
    after = planrun_cli("release.yaml", "--help-params", cwd=tmp_path)
    assert after.stdout == PARAMS


def test_help_params_of_a_plan_without_params(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(
        "plan_id: P\nglobals: {default_timeout_sec: 60}\nsteps:\n  - {id: a, command: 'true'}\n"
    )
    done = planrun_cli("--help-params", "p.yaml", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (0, "plan P takes no params\n")


def test_planc_describe_lists_params_and_steps(tmp_path: Path) -> None:
    (tmp_path / "release.yaml").write_text(PLAN)
    done = planc_cli("describe", "release.yaml", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        "RELEASE 2.1: Build and publish a release.\n\n"
        + PARAMS
        + "\n2 steps (in the order they may start):\n"
        "  build    Build the wheel\n"
        "             $ python3 -m build\n"
        "  publish  twine upload 'dist/*'\n"
        "             (after build; if params.dry == false)\n"
    )


def test_planc_describe_of_a_broken_plan_shows_the_diagnostics(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("plan_id: X\nsteps:\n  - {id: a, depends_on: [b]}\n")
    done = planc_cli("describe", "bad.yaml", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (1, "")
    assert "error[" in done.stderr
