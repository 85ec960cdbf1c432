"""plans/doc-ids.yaml end to end: scan -> sync -> report on a real directory of documents."""

from __future__ import annotations

import json
from pathlib import Path

from pipelines_support import outputs, run_pipeline


def documents(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    (docs / "guide").mkdir(parents=True)
    (docs / "intro.md").write_text("---\ntitle: Introduction\ndoc_id: DOC-004\n---\nHello.\n")
    (docs / "guide" / "install.md").write_text("# Installing\n\nSteps.\n")
    (docs / "guide" / "usage.md").write_text("---\ntitle: Usage | basics\n---\n# Ignored\n")
    (docs / "notes.txt").write_text("not a document\n")
    return docs


def params(tmp_path: Path, docs: Path) -> dict[str, str]:
    return {
        "docs_dir": str(docs),
        "registry": str(tmp_path / "registry.jsonl"),
        "work_dir": str(tmp_path / "work"),
        "report": str(tmp_path / "report.md"),
    }


def registry_lines(tmp_path: Path) -> list[dict[str, str]]:
    text = (tmp_path / "registry.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def test_doc_ids_assigns_registers_and_reports(tmp_path: Path) -> None:
    docs = documents(tmp_path)
    result = run_pipeline(tmp_path, "doc-ids.yaml", params(tmp_path, docs))

    assert result.exit_code == 0, result.output
    assert result.statuses == {"scan": "success", "sync": "success", "report": "success"}
    scan_file = tmp_path / "work" / "scan.json"
    assert outputs(result, "scan") == {"scan_file": str(scan_file)}
    assert outputs(result, "sync") == {"registry": str(tmp_path / "registry.jsonl")}
    # the registry path reached the report step as an argument, through the output
    started = [e.payload for e in result.events if e.type == "step_started"]
    report_argv = next(p["argv"] for p in started if "doc_report.py" in " ".join(p["argv"]))
    assert report_argv[report_argv.index("--registry") + 1] == str(tmp_path / "registry.jsonl")

    assert registry_lines(tmp_path) == [
        {
            "doc_id": "DOC-005",
            "path": "guide/install.md",
            "title": "Installing",
            "event": "assigned",
        },
        {
            "doc_id": "DOC-006",
            "path": "guide/usage.md",
            "title": "Usage | basics",
            "event": "assigned",
        },
        {"doc_id": "DOC-004", "path": "intro.md", "title": "Introduction", "event": "registered"},
    ]
    assert (docs / "guide" / "install.md").read_text() == (
        "---\ndoc_id: DOC-005\n---\n# Installing\n\nSteps.\n"
    )
    assert (docs / "guide" / "usage.md").read_text() == (
        "---\ndoc_id: DOC-006\ntitle: Usage | basics\n---\n# Ignored\n"
    )
    assert (
        docs / "intro.md"
    ).read_text() == "---\ntitle: Introduction\ndoc_id: DOC-004\n---\nHello.\n"
    assert (tmp_path / "report.md").read_text() == (
        "# Document ids\n"
        "\n"
        "3 documents registered (3 registry lines).\n"
        "\n"
        "| id | path | title |\n"
        "|----|------|-------|\n"
        "| DOC-004 | intro.md | Introduction |\n"
        "| DOC-005 | guide/install.md | Installing |\n"
        "| DOC-006 | guide/usage.md | Usage \\| basics |\n"
        "\n"
        "## Registered but not found\n"
        "\n"
        "None.\n"
    )


def test_doc_ids_second_run_changes_nothing_but_sees_a_move(tmp_path: Path) -> None:
    docs = documents(tmp_path)
    first = run_pipeline(tmp_path, "doc-ids.yaml", params(tmp_path, docs))
    assert first.exit_code == 0, first.output
    registry_before = (tmp_path / "registry.jsonl").read_text()
    (docs / "guide" / "install.md").rename(docs / "setup.md")

    second = run_pipeline(tmp_path, "doc-ids.yaml", params(tmp_path, docs))

    assert second.exit_code == 0, second.output
    assert (tmp_path / "registry.jsonl").read_text() == registry_before + (
        '{"doc_id": "DOC-005", "path": "setup.md", "title": "Installing", "event": "updated"}\n'
    )
    report = (tmp_path / "report.md").read_text()
    assert "3 documents registered (4 registry lines)." in report
    assert "| DOC-005 | setup.md | Installing |" in report


def test_doc_ids_duplicate_ids_stop_before_any_change(tmp_path: Path) -> None:
    docs = documents(tmp_path)
    (docs / "copy.md").write_text("---\ndoc_id: DOC-004\n---\nA copy.\n")
    result = run_pipeline(tmp_path, "doc-ids.yaml", params(tmp_path, docs))

    assert result.exit_code == 1
    assert result.statuses == {"scan": "success", "sync": "failed", "report": "cancelled"}
    assert not (tmp_path / "registry.jsonl").exists()
    assert not (tmp_path / "report.md").exists()
    assert (docs / "guide" / "install.md").read_text() == "# Installing\n\nSteps.\n"
    failed = [e.payload for e in result.events if e.type == "step_failed"]
    assert failed[0]["stderr_tail"] == "doc_sync: duplicate id DOC-004: copy.md, intro.md"
