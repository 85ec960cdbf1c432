"""`planc check` of any file it accepts stays under 1 GiB of memory (docs/cli.md, *Input
limits*): the worst shapes found, just inside the limits, are handled within the bound, and
just outside them refused before they are parsed.

Peak memory is measured as the child's ru_maxrss, in a fresh Python process that runs planc and
reads getrusage(RUSAGE_CHILDREN): that of the test process holds every child it ever waited for.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from planc.load import MAX_ITEMS, MAX_PLAN_BYTES, MAX_STEPS

GIB = 1024 * 1024 * 1024
_MEASURE = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # Linux: KiB
print(repr((done.returncode, peak, done.stdout[-2000:], done.stderr[-2000:])))
"""


def planc_check(path: Path) -> tuple[int, int, str]:
    """planc check's exit code, peak RSS in bytes and output (its tail)."""
    command = [sys.executable, "-c", _MEASURE, sys.executable, "-m", "planc", "check", str(path)]
    measured = subprocess.run(command, capture_output=True, text=True, timeout=900, check=True)
    code, peak, out, err = eval(measured.stdout)  # our own repr of a tuple of ints and strs
    return code, peak, out + err


def keys(count: int) -> str:
    """A metadata mapping of `count` keys: the most nodes per item the limits let through."""
    head = "plan_id: K\nsteps: [{id: a, command: b, timeout_sec: 5}]\nmetadata:\n"
    return head + "".join(f"  k{i}: v\n" for i in range(count))


def one_line_steps(count: int) -> str:
    """`count` one-line steps without a timeout: the most steps, each with a warning."""
    return "plan_id: W\nsteps:\n" + "".join(f"  - {{id: s{i}, command: x}}\n" for i in range(count))


def chained_steps(count: int) -> str:
    """`count` steps that each depend on the ten before: the most edges."""
    lines = ["plan_id: D", "globals: {default_timeout_sec: 5}", "steps:"]
    for i in range(count):
        deps = ", ".join(f"s{j}" for j in range(max(0, i - 10), i))
        lines.append(f"  - {{id: s{i}, command: x, depends_on: [{deps}]}}")
    return "\n".join(lines) + "\n"


def empty_lists(count: int) -> str:
    return "plan_id: L\nsteps: [{id: a, command: b, timeout_sec: 5}]\nmetadata: {k: [" + (
        ",".join(["[]"] * count) + "]}\n"
    )


def quoted_string(length: int) -> str:
    """One single-quoted string: the regex that read it used to take 130 bytes per character."""
    return (
        "plan_id: S\nsteps:\n  - id: a\n    command: 'true'\n    timeout_sec: 5\n"
        f"    description: '{'x' * length}'\n"
    )


HANDLED: dict[str, Callable[[], str]] = {
    "keys": lambda: keys(MAX_ITEMS - 1_000),
    "steps": lambda: one_line_steps(MAX_STEPS),
    "edges": lambda: chained_steps(80_000),  # 14 items a step: 1,120,000
    "empty-lists": lambda: empty_lists(MAX_ITEMS // 2 - 1_000),
    "string": lambda: quoted_string(MAX_PLAN_BYTES - 1_000),
}


@pytest.mark.slow
@pytest.mark.parametrize("shape", sorted(HANDLED))
def test_the_worst_accepted_shapes_stay_under_1_gib(tmp_path: Path, shape: str) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(HANDLED[shape]())
    code, peak, output = planc_check(path)
    assert code in (0, 1), output
    assert "Traceback" not in output and "too-many" not in output, output
    assert peak < GIB, f"{shape}: {peak / 2**20:.0f} MiB"


REFUSED: dict[str, tuple[Callable[[], str], str]] = {
    "scalars": (lambda: "plan_id: L\nsteps: []\nmetadata: {k: [" + "1," * 15_000_000 + "1]}\n",
                "too-many-items"),
    "nested": (lambda: "plan_id: F\nsteps: []\nmetadata: [" + "[[[[]]]]," * 3_000_000 + "1]\n",
               "too-many-items"),
    "keys": (lambda: keys(MAX_ITEMS + 1), "too-many-items"),
    "steps": (lambda: one_line_steps(MAX_STEPS + 1), "too-many-steps"),
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("shape", sorted(REFUSED))
def test_past_the_limits_a_plan_is_refused_cheaply(tmp_path: Path, shape: str) -> None:
    make, code_expected = REFUSED[shape]
    path = tmp_path / "plan.yaml"
    path.write_text(make())
    code, peak, output = planc_check(path)
    assert code == 1
    assert f"error[{code_expected}]" in output, output
    assert peak < GIB / 2, f"{shape}: {peak / 2**20:.0f} MiB"


def test_the_item_count_is_exact_at_the_limit(tmp_path: Path) -> None:
    head = "plan_id: K\nsteps: [{id: a, command: b}]\nmetadata:\n"  # 3 lines, 1 comma, 2 brackets
    fits = head + "  k: v\n" + "#\n" * (MAX_ITEMS - 7)
    path = tmp_path / "plan.yaml"
    path.write_text(fits)
    code, _peak, output = planc_check(path)
    assert "too-many-items" not in output, output
    path.write_text(fits + "#\n")
    code, _peak, output = planc_check(path)
    assert code == 1
    expected = f"the plan has {MAX_ITEMS + 1} lines, commas and opening brackets; the limit is"
    assert expected in output, output
    assert json.dumps(MAX_ITEMS)  # the limit is a plain int, documented in docs/cli.md
