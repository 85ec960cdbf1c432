"""Every worked example of docs/analysis.md is what the command really prints."""

from __future__ import annotations

import re
import shlex

import pytest
from analysis_support import HERE
from support import planc_cli

REPO = HERE.parent.parent
DOCS = (REPO / "docs" / "analysis.md").read_text(encoding="utf-8")
# A console block with exactly one command: `$ planc ARGS`, then its output.
EXAMPLES = [
    (match.group(1), match.group(2))
    for match in re.finditer(r"```console\n\$ planc ([^\n]*)\n((?:(?!\$ |```)[^\n]*\n)*)```", DOCS)
]


def test_the_docs_have_examples() -> None:
    assert len(EXAMPLES) >= 8


@pytest.mark.parametrize(("command", "output"), EXAMPLES, ids=[c for c, _ in EXAMPLES])
def test_example(command: str, output: str) -> None:
    done = planc_cli(*shlex.split(command), cwd=REPO)
    assert done.stdout == output
