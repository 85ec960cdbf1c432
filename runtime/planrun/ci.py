"""What a run says to a CI system: GitHub Actions workflow commands and the job summary.

Under `GITHUB_ACTIONS=true` a failed step becomes an `::error` annotation positioned at the step
in the plan file, its output a foldable `::group::`, and the end-of-run table is appended as
markdown to `$GITHUB_STEP_SUMMARY`. Any other CI (`CI=true`) gets the plain lines of
planrun.console, with no workflow commands and no colour escapes. (docs/views.md)
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

from planrun.core.printable import github_data, github_property, printable
from planrun.core.status import FAILURES
from planrun.store import DamagedStateError, Reader, StepInfo

CiKind = Literal["github", "plain", "none"]
ANNOTATION_LINES = 10  # output lines quoted in an annotation (the group has the whole tail)


def ci_kind(env: Mapping[str, str] | None = None) -> CiKind:
    environ = os.environ if env is None else env
    if environ.get("GITHUB_ACTIONS") == "true":
        return "github"
    return "plain" if environ.get("CI", "").lower() in ("true", "1") else "none"


def split_location(location: str) -> tuple[str, int | None]:
    """`plans/ci.yaml:12:5` -> (`plans/ci.yaml`, 12); a path without a line -> (path, None)."""
    match = re.fullmatch(r"(.*?):(\d+)(?::\d+)?", location)
    if match is None:
        return location, None
    return match.group(1), int(match.group(2))


def annotation(
    step_id: str,
    location: str | None,
    title: str,
    lines: Sequence[str],
    level: Literal["error", "warning"] = "error",
) -> str:
    """`::error file=PLAN,line=L,title=...::message`, the message ending with the output's last
    lines (each a `| `/`! ` line of planrun.core.failure.tail_block). A tolerated failure
    (`on_failure: continue`) is a `::warning`."""
    props = []
    if location:
        path, line = split_location(location)
        props.append(f"file={github_property(printable(path))}")
        if line is not None:
            props.append(f"line={line}")
    props.append(f"title={github_property(printable(f'step {step_id} {title}'))}")
    message = chr(10).join(printable(line) for line in lines)  # no escape reaches the log
    return f"::{level} {','.join(props)}::{github_data(message)}\n"


def recorded_tolerance(reader: Reader, run_id: str, infos: Sequence[StepInfo]) -> dict[str, str]:
    """`tolerated` for a recorded run, from its IR in state.db; nothing when that IR is damaged
    (the steps' own records still show, docs/state.md *Trust*)."""
    try:
        steps = reader.ir_document(run_id)["steps"]
    except DamagedStateError:
        return {}
    return tolerated(steps, infos)


def tolerated(steps: Iterable[Mapping[str, Any]], infos: Sequence[StepInfo]) -> dict[str, str]:
    """The failed steps whose failure did not fail the run, and why (docs/semantics.md):
    `on_failure: continue`, or a fallback step recovered it."""
    policy = {str(s["id"]): str(s.get("on_failure", "abort")) for s in steps}
    result: dict[str, str] = {}
    for info in infos:
        if info.status not in FAILURES:
            continue
        if info.recovered_by:
            result[info.step_id] = f"recovered by {info.recovered_by}"
        elif policy.get(info.step_id) == "continue":
            result[info.step_id] = "on_failure: continue"
    return result


def _cell(text: str) -> str:
    """A markdown table cell showing `text` literally: controls, bidirectional overrides and
    line breaks written as escapes (`printable`, as on the terminal), HTML escaped (no tag, no
    entity), the inline markdown specials (code, emphasis, links, strike-through) and the cell
    separator backslashed."""
    import html  # here: html.entities is a large table, and most runs write no summary

    text = html.escape(printable(text), quote=False)
    return re.sub(r"([\\`*_\[\]|~])", r"\\\1", text)


def summary_markdown(title: str, rows: Sequence[Sequence[str]], footer: str = "") -> str:
    """A job summary: a heading, the end-of-run table (first row: the header), a footer line."""
    header, *body = rows
    lines = [f"### {_cell(title)}", "", "| " + " | ".join(header) + " |"]
    lines.append("|" + "---|" * len(header))
    lines.extend("| " + " | ".join(_cell(cell) for cell in row) + " |" for row in body)
    if footer:
        lines += ["", _cell(footer)]
    return "\n".join(lines) + "\n\n"


def append_step_summary(
    render: Callable[[], str], env: Mapping[str, str] | None = None
) -> str | None:
    """Append `render()` to $GITHUB_STEP_SUMMARY (rendered only under GitHub Actions); the error
    text when it cannot be written."""
    environ = os.environ if env is None else env
    path = environ.get("GITHUB_STEP_SUMMARY")
    if not path or ci_kind(environ) != "github":
        return None
    try:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(render())
    except OSError as exc:
        return f"cannot append to $GITHUB_STEP_SUMMARY ({path}): {exc.strerror or exc}"
    return None
