"""Which files are plans: the patterns of the pre-commit hook (.pre-commit-hooks.yaml), also used
by `planc check DIRECTORY`. A test keeps the two in step."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

# Anything under a `plans/` directory, or named `*.plan.yaml|yml|json`...
PLAN_FILES = r"(^|/)plans/.*\.(ya?ml|json)$|\.plan\.(ya?ml|json)$"
# ...but not the params files that sit next to plans (`planrun --params-file`), nor fragments
# (`include:`d by plans and checked through them, docs/composition.md): files under a
# `fragments/` directory or named `*.fragment.yaml|yml|json`.
NOT_PLANS = r"\.params\.json$|(^|/)fragments/|\.fragment\.(ya?ml|json)$"
_PLAN = re.compile(PLAN_FILES)
_NOT_PLAN = re.compile(NOT_PLANS)


class NoPlansError(Exception):
    """A directory given to `planc check` holds no plan file."""


def is_plan_file(path: str) -> bool:
    posix = path.replace(os.sep, "/")
    return _PLAN.search(posix) is not None and _NOT_PLAN.search(posix) is None


def expand(paths: Sequence[str]) -> list[str]:
    """Files as given; each directory replaced by the plan files under it, sorted (hidden
    directories such as .git and .venv are not entered)."""
    found: list[str] = []
    for path in paths:
        if not os.path.isdir(path):
            found.append(path)
            continue
        inside: list[str] = []
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            inside.extend(os.path.join(root, name) for name in files)
        plans = sorted(p for p in inside if is_plan_file(p))
        if not plans:
            raise NoPlansError(
                f"no plan files under {path} (plans are files under a `plans/` directory or"
                " named `*.plan.yaml`, `*.plan.yml` or `*.plan.json`, except `*.params.json` and"
                " fragments: under `fragments/` or named `*.fragment.yaml`)"
            )
        found.extend(plans)
    return found
