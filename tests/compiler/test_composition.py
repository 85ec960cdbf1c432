"""Matrix steps and included fragments (docs/composition.md): what they compile to, and every
positioned diagnostic they can give."""

from __future__ import annotations

import hashlib
import json
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest

from planc.load import MAX_PLAN_BYTES
from planc.pipeline import Compilation, compile_file


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # plans are compiled by relative path, as users write them


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def compiled(path: Path) -> dict[str, Any]:
    result = compile_file(os.path.relpath(path))
    errors = [f"{d.path}:{d.line}:{d.col} {d.code} {d.message}" for d in result.diagnostics]
    assert result.ir is not None, errors
    ir: dict[str, Any] = json.loads(result.ir)
    return ir


def problems(path: Path) -> list[str]:
    result: Compilation = compile_file(os.path.relpath(path))
    assert result.ir is None
    return [
        f"{Path(d.path).name}:{d.line}:{d.col}: {d.code}: {d.message}"
        for d in result.diagnostics
        if d.severity.value == "error"
    ]


MATRIX = """
    plan_id: M
    globals: {default_timeout_sec: 10}
    steps:
      - id: build
        command: "true"
      - id: test
        name: Test
        matrix:
          py: ["3.10", "3.11", "3.12"]
          shard: [1, 2]
          exclude: [{py: "3.10", shard: 2}]
        max_parallel: 2
        command: echo
        args: ["${{ matrix.py }}", "shard=${{ matrix.shard }}"]
        depends_on: [build]
      - id: report
        command: "true"
        depends_on: [test]
      - id: one
        command: "true"
        depends_on: [test-3.11-2, build]
"""


def test_a_matrix_expands_into_one_step_per_combination(tmp_path: Path) -> None:
    ir = compiled(write(tmp_path / "m.yaml", MATRIX))
    steps = {s["id"]: s for s in ir["steps"]}
    instances = ["test-3.10-1", "test-3.11-1", "test-3.11-2", "test-3.12-1", "test-3.12-2"]
    assert [s["id"] for s in ir["steps"]] == ["build", *instances, "report", "one"]
    assert steps["test-3.11-2"]["args"] == ["3.11", "shard=2"]
    assert steps["test-3.11-2"]["name"] == "Test (3.11, 2)"
    assert steps["test-3.11-2"]["depends_on"] == ["build"]
    # every instance points at the `matrix:` line
    assert {steps[i]["location"] for i in instances} == {"m.yaml:8:5"}
    assert steps["report"]["depends_on"] == instances
    assert steps["one"]["depends_on"] == ["build", "test-3.11-2"]
    assert ir["groups"] == {
        "test": {
            "kind": "matrix",
            "members": instances,
            "fail_fast": True,
            "max_parallel": 2,
            "max_items": None,
            "over": None,
            "location": "m.yaml:8:5",
        }
    }


def test_include_follows_github_actions_rules(tmp_path: Path) -> None:
    # The example of GitHub's documentation ("Expanding or adding matrix configurations").
    plan = write(
        tmp_path / "gha.yaml",
        """
        plan_id: G
        globals: {default_timeout_sec: 10}
        steps:
          - id: t
            matrix:
              fruit: [apple, pear]
              animal: [cat, dog]
              include:
                - {color: green}
                - {color: pink, animal: cat}
                - {fruit: apple, shape: circle}
                - {fruit: banana}
                - {fruit: banana, animal: cat}
            command: echo
            args: ["${{ matrix.fruit }}/${{ matrix.animal }}/${{ matrix.color }}/${{ matrix.shape }}"]
        """,
    )
    args = [s["args"][0] for s in compiled(plan)["steps"]]
    assert args == [
        "apple/cat/pink/circle",
        "apple/dog/green/circle",
        "pear/cat/pink/",
        "pear/dog/green/",
        "banana///",
        "banana/cat//",
    ]
    ids = [s["id"] for s in compiled(plan)["steps"]]
    assert ids == [
        "t-apple-cat",
        "t-apple-dog",
        "t-pear-cat",
        "t-pear-dog",
        "t-banana",
        "t-banana-cat",
    ]


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (
            'matrix: {py: ["3.11"]}\n    args: ["${{ matrix.pyton }}"]',
            "p.yaml:6:13: unknown-matrix-key: `matrix.pyton` is not a key of the matrix of `t`",
        ),
        (
            'args: ["${{ matrix.py }}"]',
            # a plan without any matrix is not expanded: the placeholder is just not a reference
            "p.yaml:5:13: interpolation-syntax: `${{ matrix.py }}` is not a reference",
        ),
        (
            "max_parallel: 2",
            "p.yaml:5:5: matrix-invalid: `max_parallel` applies to a `matrix` or"
            " `for_each` step only",
        ),
        (
            "matrix: {a: [1, 2], exclude: [{a: 1}, {a: 2}]}",
            "p.yaml:5:5: matrix-invalid: the matrix of `t` has no combination",
        ),
        (
            "matrix: {a: [1, 2], exclude: [{b: 1}]}",
            "p.yaml:5:5: matrix-invalid: `exclude` names `b`, which is not a key of the matrix",
        ),
        (
            'matrix: {a: ["x y", "x_y"]}',
            "p.yaml:5:5: matrix-id: combination 2 of `t` gets the id `t-x_y`, which is also the id"
            " of combination 1",
        ),
        (
            f"matrix: {{a: {list(range(16))}, b: {list(range(17))}}}",
            "p.yaml:5:5: matrix-too-large: the matrix of `t` has 272 combinations, more than 256",
        ),
    ],
)
def test_matrix_mistakes_are_positioned(tmp_path: Path, step: str, expected: str) -> None:
    plan = tmp_path / "p.yaml"
    plan.write_text(
        "plan_id: P\nglobals: {default_timeout_sec: 1}\nsteps:\n  - id: t\n    "
        + step
        + "\n    command: echo\n",
        encoding="utf-8",
    )
    assert problems(plan) == [expected]


FRAGMENT = """
    # a fragment
    description: Build and test one component.
    inputs:
      component: {type: string}
      jobs: {type: int, default: 2}
    steps:
      - id: build
        command: make
        args: ["-j${{ inputs.jobs }}", "${{ inputs.component }}"]
        provides: ["artifact_${{ inputs.component }}"]
      - id: test
        command: echo
        args: ["${{ steps.build.outputs.artifact_${{ inputs.component }} }}"]
        depends_on: [build]
        condition: steps.build.status == 'success' or params.force == true
"""


def test_an_include_brings_in_namespaced_steps_with_inputs(tmp_path: Path) -> None:
    (tmp_path / "parts").mkdir()
    write(tmp_path / "parts" / "component.yaml", FRAGMENT)
    plan = write(
        tmp_path / "plan.yaml",
        """
        plan_id: C
        globals: {default_timeout_sec: 10}
        params: {force: {type: bool, default: false}}
        steps:
          - id: setup
            command: "true"
          - include: parts/component.yaml
            id: api
            with: {component: api, jobs: 4}
            depends_on: [setup]
          - include: parts/component.yaml
            id: web
            with: {component: web}
          - id: ship
            command: "true"
            depends_on: [api, web.test]
        """,
    )
    ir = compiled(plan)
    steps = {s["id"]: s for s in ir["steps"]}
    assert list(steps) == ["setup", "api.build", "api.test", "web.build", "web.test", "ship"]
    assert steps["api.build"]["args"] == ["-j4", "api"]
    assert steps["web.build"]["args"] == ["-j2", "web"]
    assert steps["api.build"]["depends_on"] == ["setup"]  # the include's depends_on, on roots
    assert steps["web.build"]["depends_on"] == []
    assert steps["api.test"]["args"] == ["${{ steps.api.build.outputs.artifact_api }}"]
    assert steps["api.test"]["condition"]["source"] == (
        "steps.api.build.status == 'success' or params.force == true"
    )
    assert steps["ship"]["depends_on"] == ["api.build", "api.test", "web.test"]
    assert steps["api.build"]["location"] == "parts/component.yaml:7:5"
    fragment_sha = hashlib.sha256((tmp_path / "parts" / "component.yaml").read_bytes())
    assert ir["source"]["includes"] == [
        {"path": "parts/component.yaml", "sha256": fragment_sha.hexdigest()}
    ]
    assert "groups" not in ir

    # the digest covers the included content
    before = ir["digest"]
    write(tmp_path / "parts" / "component.yaml", FRAGMENT.replace("make", "gmake"))
    assert compiled(plan)["digest"] != before


def test_include_mistakes_are_positioned_in_the_included_file(tmp_path: Path) -> None:
    write(
        tmp_path / "frag.yaml",
        """
        inputs:
          who: {type: string}
        steps:
          - id: hello
            command: echo
            args: ["${{ inputs.who }}"]
            depends_on: [missing]
          - include: loop.yaml
            id: deeper
        """,
    )
    write(tmp_path / "loop.yaml", "steps:\n  - include: frag.yaml\n    id: back\n")
    plan = write(
        tmp_path / "plan.yaml",
        """
        plan_id: E
        steps:
          - include: frag.yaml
            id: a
            with: {who: me, whom: you}
          - include: frag.yaml
            id: b
          - include: nothere.yaml
            id: c
          - include: loop.yaml
            id: d
        """,
    )
    result = compile_file(os.path.relpath(plan))
    shown = [f"{d.path}:{d.line}:{d.col}: {d.code}: {d.message}" for d in result.diagnostics]
    assert shown == [
        "loop.yaml:2:5: include-input: input `who` of frag.yaml is required: give it in `with:`"
        " (included from plan.yaml:10)",
        "plan.yaml:5:21: include-input: `whom` is not an input of frag.yaml",
        "plan.yaml:6:5: include-input: input `who` of frag.yaml is required: give it in `with:`",
        "plan.yaml:8:14: include-not-found: cannot read nothere.yaml: No such file or directory",
    ]
    # with its input given, frag.yaml's own include is read: the cycle frag → loop → frag
    plan.write_text("plan_id: E\nsteps:\n  - include: frag.yaml\n    id: a\n    with: {who: x}\n")
    result = compile_file(os.path.relpath(plan))
    shown = [f"{d.path}:{d.line}:{d.col}: {d.code}: {d.message}" for d in result.diagnostics]
    assert shown == [
        "loop.yaml:2:14: include-cycle: include cycle: plan.yaml → frag.yaml → loop.yaml →"
        " frag.yaml (included from frag.yaml:8, plan.yaml:3)"
    ]


def test_an_included_step_problem_names_the_include(tmp_path: Path) -> None:
    write(
        tmp_path / "frag.yaml",
        """
        steps:
          - id: hello
            command: echo
            timeout_sec: 5
            depends_on: [missing]
        """,
    )
    plan = write(
        tmp_path / "plan.yaml",
        """
        plan_id: E
        steps:
          - id: first
            command: "true"
            timeout_sec: 5
          - include: frag.yaml
            id: a
        """,
    )
    result = compile_file(os.path.relpath(plan))
    assert [(d.path, d.line, d.col, d.code, d.message) for d in result.diagnostics] == [
        (
            "frag.yaml",
            5,
            18,
            "unknown-dependency",
            "step `a.hello` depends on `missing`, which is not a step of this plan"
            " (included from plan.yaml:6)",
        )
    ]
    assert result.sources["frag.yaml"].startswith("steps:")


FAN_OUT = """
    plan_id: F
    globals: {default_timeout_sec: 10}
    steps:
      - id: list
        command: ls
        provides: [names]
      - id: each
        for_each: "${{ steps.list.outputs.names }}"
        max_items: 5
        depends_on: [list]
        command: echo
        args: ["${{ item }}"]
        on_failure: fallback_step
        fallback: again
        provides: [result]
      - id: again
        command: echo
        args: ["${{ item }}"]
      - id: after
        command: echo
        args: ["${{ steps.each.outputs.result }}"]
        depends_on: [each]
"""


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ('"${{ steps.list.outputs.names }}"', '"${{ steps.list.outputs.nmes }}"'),
            ["p.yaml:8:15: unknown-output: step `list` does not provide an output `nmes`"],
        ),
        (
            ('"${{ steps.list.outputs.names }}"', '"x ${{ steps.list.outputs.names }}"'),
            [
                "p.yaml:8:15: for-each-invalid: `for_each` of `each` must be one"
                " `${{ steps.ID.outputs.NAME }}`"
            ],
        ),
        (
            ("    depends_on: [list]\n", ""),
            [
                "p.yaml:8:15: output-not-upstream: `each` reads an output of `list`, which it"
                " does not depend on, so the value may not exist yet"
            ],
        ),
        (
            ('args: ["${{ steps.each.outputs.result }}"]', 'args: ["${{ item }}"]'),
            [
                "p.yaml:21:13: item-outside-fan-out: step `after` reads `${{ item }}`, but it has"
                " no `for_each`"
            ],
        ),
        (
            ("    max_items: 5\n", ""),
            ["p.yaml:8:5: for-each-invalid: step `each` has `for_each` without `max_items`"],
        ),
        (
            ("    max_items: 5\n", "    max_items: 5\n    matrix: {a: [1]}\n"),
            [
                "p.yaml:8:5: matrix-invalid: step `each` has both `matrix` and `for_each`: choose"
                " one"
            ],
        ),
    ],
)
def test_fan_out_mistakes_are_positioned(
    tmp_path: Path, change: tuple[str, str], expected: list[str]
) -> None:
    text = textwrap.dedent(FAN_OUT).lstrip()
    assert change[0] in text
    plan = tmp_path / "p.yaml"
    plan.write_text(text.replace(change[0], change[1], 1), encoding="utf-8")
    assert problems(plan) == expected


def test_a_fan_out_compiles_to_its_template_and_bound(tmp_path: Path) -> None:
    ir = compiled(write(tmp_path / "f.yaml", FAN_OUT))
    each = next(s for s in ir["steps"] if s["id"] == "each")
    assert each["args"] == ["${{ item }}"]
    assert each["fallback"] == "again"
    assert ir["groups"]["each"] == {
        "kind": "for_each",
        "members": [],
        "fail_fast": True,
        "max_parallel": None,
        "max_items": 5,
        "over": {"step": "list", "output": "names"},
        "location": "f.yaml:8:5",
    }


def test_two_includes_with_one_id_collide(tmp_path: Path) -> None:
    write(tmp_path / "frag.yaml", "steps:\n  - id: a\n    command: 'true'\n")
    plan = write(
        tmp_path / "plan.yaml",
        """
        plan_id: D
        globals: {default_timeout_sec: 1}
        steps:
          - include: frag.yaml
            id: x
          - include: frag.yaml
            id: x
        """,
    )
    assert problems(plan) == [
        "frag.yaml:2:9: duplicate-step-id: step id `x.a` is already used by an included step"
        " (included from plan.yaml:6)"
    ]


def test_fragments_nest_pass_inputs_on_and_may_hold_a_matrix(tmp_path: Path) -> None:
    (tmp_path / "parts").mkdir()
    write(
        tmp_path / "parts" / "inner.yaml",
        """
        inputs:
          v: {type: string}
        steps:
          - id: m
            matrix: {k: [x, z]}
            command: echo
            args: ["${{ inputs.v }}-${{ matrix.k }}"]
          - id: after
            command: echo
            depends_on: [m]
        """,
    )
    write(
        tmp_path / "parts" / "outer.yaml",
        """
        inputs:
          w: {type: string, default: dflt}
        steps:
          - include: inner.yaml
            id: in
            with: {v: "pre-${{ inputs.w }}"}
        """,
    )
    plan = write(
        tmp_path / "plan.yaml",
        """
        plan_id: NEST
        globals: {default_timeout_sec: 5}
        steps:
          - include: parts/outer.yaml
            id: out
          - id: last
            command: "true"
            depends_on: [out]
        """,
    )
    ir = compiled(plan)
    assert [(s["id"], s["args"], s["depends_on"]) for s in ir["steps"]] == [
        ("out.in.m-x", ["pre-dflt-x"], []),
        ("out.in.m-z", ["pre-dflt-z"], []),
        ("out.in.after", [], ["out.in.m-x", "out.in.m-z"]),
        ("last", [], ["out.in.m-x", "out.in.m-z", "out.in.after"]),
    ]
    assert ir["groups"]["out.in.m"]["location"] == "parts/inner.yaml:5:5"
    assert [f["path"] for f in ir["source"]["includes"]] == ["parts/outer.yaml", "parts/inner.yaml"]


def test_a_group_name_that_is_also_a_step_id_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "frag.yaml", "steps:\n  - id: a\n    command: 'true'\n")
    plan = write(
        tmp_path / "plan.yaml",
        """
        plan_id: D
        globals: {default_timeout_sec: 1}
        steps:
          - id: x
            command: "true"
          - include: frag.yaml
            id: x
          - id: m
            matrix: {a: [1]}
            command: "true"
          - id: m
            command: "true"
        """,
    )
    assert problems(plan) == [
        "plan.yaml:7:9: include-invalid: include id `x` is also the id of a step",
    ]
    plan.write_text(plan.read_text().replace("id: x\n    command", "id: other\n    command"))
    assert problems(plan) == [
        "plan.yaml:9:5: matrix-id: matrix step `m` has the id of another step",
    ]


def test_an_include_of_something_else_than_a_file_is_refused(tmp_path: Path) -> None:
    plan = write(
        tmp_path / "plan.yaml",
        """
        plan_id: D
        steps:
          - include: /dev/zero
            id: z
        """,
    )
    assert problems(plan) == [
        "plan.yaml:3:14: include-not-found: cannot read /dev/zero: not a regular file"
    ]


def test_an_include_of_a_named_pipe_is_refused_without_blocking(tmp_path: Path) -> None:
    """The file is checked once opened (no stat, then open): a FIFO nobody writes to is
    opened without waiting for a writer and refused."""
    os.mkfifo(tmp_path / "pipe.yaml")
    plan = write(
        tmp_path / "plan.yaml",
        """
        plan_id: D
        steps:
          - include: pipe.yaml
            id: z
        """,
    )
    assert problems(plan) == [
        "plan.yaml:3:14: include-not-found: cannot read pipe.yaml: not a regular file"
    ]


def test_an_include_past_the_size_limit_is_refused_from_its_size(tmp_path: Path) -> None:
    """Refused before a byte is read, with the file's own size, at line 1 of the included file."""
    with open(tmp_path / "big.yaml", "wb") as big:
        big.truncate(MAX_PLAN_BYTES + 5)  # sparse: nothing written
    plan = write(
        tmp_path / "plan.yaml",
        """
        plan_id: D
        steps:
          - include: big.yaml
            id: z
        """,
    )
    assert problems(plan) == [
        f"big.yaml:1:1: file-too-large: the plan file is {MAX_PLAN_BYTES + 5} bytes; the limit"
        f" is {MAX_PLAN_BYTES} bytes (32 MiB) (included from plan.yaml:3)"
    ]
