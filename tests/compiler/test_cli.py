"""planc's command line: exit codes, formats, many files, explain, schema, graph, determinism."""

from __future__ import annotations

import json
import re
import resource
import subprocess
import sys
from pathlib import Path

from support import REPO, planc_cli

GOOD = "plan_id: GOOD\nglobals: {default_timeout_sec: 60}\nsteps:\n  - id: a\n    command: 'true'\n"
BAD = "plan_id: BAD\nglobals: {default_timeout_sec: 60}\nsteps:\n  - id: a\n    command: 'true'\n    depends_on: [b]\n"


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return name


def test_check_exit_codes(tmp_path: Path) -> None:
    write(tmp_path, "good.yaml", GOOD)
    write(tmp_path, "bad.yaml", BAD)
    assert planc_cli("check", "good.yaml", cwd=tmp_path).returncode == 0
    both = planc_cli("check", "good.yaml", "bad.yaml", cwd=tmp_path)
    assert both.returncode == 1
    assert both.stdout.startswith(
        "bad.yaml:6:18: error[unknown-dependency]: step `a` depends on `b`, which is not a step of this plan\n"
        " 6 |     depends_on: [b]\n"
        "   |                  ^\n"
    )
    assert planc_cli("check", cwd=tmp_path).returncode == 2  # usage: no file
    assert planc_cli("check", "--format", "xml", "good.yaml", cwd=tmp_path).returncode == 2


def test_warnings_pass_unless_strict(tmp_path: Path) -> None:
    write(tmp_path, "warn.yaml", "plan_id: W\nsteps:\n  - id: a\n    command: 'true'\n")
    relaxed = planc_cli("check", "warn.yaml", cwd=tmp_path)
    assert relaxed.returncode == 0
    assert "warning[no-timeout]" in relaxed.stdout
    assert planc_cli("check", "--strict", "warn.yaml", cwd=tmp_path).returncode == 1


def test_missing_file_is_a_positioned_error(tmp_path: Path) -> None:
    result = planc_cli("check", "nope.yaml", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout.startswith(
        "nope.yaml:1:1: error[io-error]: cannot read nope.yaml: No such file or directory"
    )
    assert "Traceback" not in result.stderr


def test_formats(tmp_path: Path) -> None:
    write(tmp_path, "bad.yaml", BAD)
    as_json = json.loads(planc_cli("check", "--format", "json", "bad.yaml", cwd=tmp_path).stdout)
    assert as_json[0]["code"] == "unknown-dependency"
    assert (as_json[0]["line"], as_json[0]["column"]) == (6, 18)
    github = planc_cli("check", "--format", "github", "bad.yaml", cwd=tmp_path).stdout
    assert github.startswith(
        "::error file=bad.yaml,line=6,col=18,endLine=6,endColumn=19,title=planc unknown-dependency::"
    )
    sarif = json.loads(planc_cli("check", "--format", "sarif", "bad.yaml", cwd=tmp_path).stdout)
    assert sarif["version"] == "2.1.0"
    assert sarif["runs"][0]["results"][0]["ruleId"] == "unknown-dependency"


def test_compile_is_deterministic_and_runnable(tmp_path: Path) -> None:
    seed = str(REPO / "plans" / "seed" / "checkin.json")
    first = planc_cli("compile", seed, cwd=tmp_path)
    second = planc_cli("compile", seed, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    ir = json.loads(first.stdout)
    assert [s["id"] for s in ir["steps"]] == ["lint_python", "run_tests", "safe_commit"]
    assert ir["digest"].startswith("sha256:")
    out = tmp_path / "ir.json"
    assert planc_cli("compile", seed, "-o", str(out), cwd=tmp_path).returncode == 0
    assert out.read_text() == first.stdout


def test_compile_refuses_bad_plan(tmp_path: Path) -> None:
    write(tmp_path, "bad.yaml", BAD)
    result = planc_cli("compile", "bad.yaml", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert "error[unknown-dependency]" in result.stderr


def test_seed_plans_check_with_warnings_only() -> None:
    result = planc_cli("check", "plans/seed/checkin.json", "plans/seed/safe-merge.json", cwd=REPO)
    assert result.returncode == 0, result.stdout
    assert "warning[windows-only]" in result.stdout
    assert "error[" not in result.stdout


def test_explain_and_schema() -> None:
    explained = planc_cli("explain", "unknown-dependency")
    assert explained.returncode == 0
    assert explained.stdout.startswith(
        "unknown-dependency: `depends_on` names a step that does not exist"
    )
    unknown = planc_cli("explain", "unknown-dependncy")
    assert unknown.returncode == 2
    assert "did you mean `unknown-dependency`?" in unknown.stderr
    schema = json.loads(planc_cli("schema").stdout)
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert "depends_on" in json.dumps(schema)


def test_graph_formats(tmp_path: Path) -> None:
    seed = str(REPO / "plans" / "seed" / "checkin.json")
    dot = planc_cli("graph", seed, cwd=tmp_path).stdout
    assert '"lint_python" -> "run_tests";' in dot
    mermaid = planc_cli("graph", seed, "--format", "mermaid", cwd=tmp_path).stdout
    assert mermaid.startswith("flowchart LR\n")
    assert "s0 --> s1" in mermaid


def test_emit_matches_the_runtime_canonical_form() -> None:
    from planc.pipeline import compile_file
    from planrun.core.ir import canonical_json, parse_ir

    for name in ("checkin.json", "safe-merge.json"):
        ir = compile_file(str(REPO / "plans" / "seed" / name)).ir
        assert ir is not None
        loaded = parse_ir(ir)  # verifies the digest the runtime's way
        assert ir == canonical_json(loaded.raw) + b"\n"


def test_an_output_that_cannot_be_written_keeps_the_previous_one(tmp_path: Path) -> None:
    """`-o OUT` is written whole or not at all: a full disk (here a file-size limit) used to
    truncate OUT and report an "internal error", exit 3."""
    write(tmp_path, "good.yaml", GOOD)
    assert planc_cli("compile", "good.yaml", "-o", "out.ir.json", cwd=tmp_path).returncode == 0
    before = (tmp_path / "out.ir.json").read_bytes()
    bigger = GOOD + "".join(f"  - id: s{i}\n    command: 'true'\n" for i in range(50))
    write(tmp_path, "bigger.yaml", bigger)
    limit = len(before) // 2

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    failed = subprocess.run(
        [sys.executable, "-m", "planc", "compile", "bigger.yaml", "-o", "out.ir.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=small_files,
    )
    assert (failed.returncode, failed.stderr) == (
        2,
        "planc: cannot write out.ir.json: File too large; nothing was written\n",
    )
    assert (tmp_path / "out.ir.json").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bigger.yaml", "good.yaml", "out.ir.json"]
    missing = planc_cli("compile", "good.yaml", "-o", "no/such/dir/out.json", cwd=tmp_path)
    assert (missing.returncode, missing.stderr) == (
        2,
        "planc: cannot write no/such/dir/out.json: No such file or directory; nothing was written\n",
    )


def test_a_full_stdout_is_one_line_and_exit_2(tmp_path: Path) -> None:
    write(tmp_path, "good.yaml", GOOD)
    for args in (["compile", "good.yaml"], ["schema"]):
        with open("/dev/full", "w") as full:
            result = subprocess.run(
                [sys.executable, "-m", "planc", *args],
                cwd=tmp_path,
                stdout=full,
                stderr=subprocess.PIPE,
                text=True,
                timeout=60,
            )
        assert (result.returncode, result.stderr) == (
            2,
            "planc: cannot write to stdout: No space left on device\n",
        )


# --- file names in CI formats: escaped as GitHub's toolkit does, SARIF uris that are uris ---

ODD_NAME = "a, b:c d%é.yaml"
ODD_PLAN = (
    "plan_id: p\nsteps:\n  - id: a\n    command: b\n    timeout_sec: 5\n    depends_on: [c]\n"
)


def test_github_format_escapes_file_names_as_the_toolkit_does(tmp_path: Path) -> None:
    (tmp_path / ODD_NAME).write_text(ODD_PLAN, encoding="utf-8")
    out = planc_cli("check", "--format", "github", ODD_NAME, cwd=tmp_path).stdout
    first = out.splitlines()[0]
    assert first.startswith(
        "::error file=a%2C b%3Ac d%25é.yaml,line=6,col=18,endLine=6,endColumn=19,"
        "title=planc unknown-dependency::"
    ), first


def test_github_format_escapes_newlines_in_file_names(tmp_path: Path) -> None:
    name = "x\ny\r%.yaml"
    (tmp_path / name).write_text(ODD_PLAN, encoding="utf-8")
    out = planc_cli("check", "--format", "github", name, cwd=tmp_path).stdout
    assert out.splitlines()[0].startswith("::error file=x%0Ay%0D%25.yaml,line=6,")
    assert len(out.splitlines()) == 1  # one line per diagnostic: nothing forged


def test_sarif_uris_are_valid_uri_references(tmp_path: Path) -> None:
    (tmp_path / ODD_NAME).write_text(ODD_PLAN, encoding="utf-8")
    absolute = tmp_path / "sub dir" / "p:q.yaml"
    absolute.parent.mkdir()
    absolute.write_text(ODD_PLAN, encoding="utf-8")
    out = planc_cli("check", "--format", "sarif", ODD_NAME, str(absolute), cwd=tmp_path).stdout
    uris = [
        result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        for result in json.loads(out)["runs"][0]["results"]
    ]
    quoted_dir = str(tmp_path).replace(" ", "%20")
    assert set(uris) == {
        "a%2C%20b%3Ac%20d%25%C3%A9.yaml",
        f"file://{quoted_dir}/sub%20dir/p%3Aq.yaml",
    }
    uri_reference = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*:)?[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*")
    for uri in uris:
        assert uri_reference.fullmatch(uri), uri
        # a relative reference whose first segment holds a `:` would read as a scheme
        assert uri.startswith("file://") or ":" not in uri.split("/")[0]
