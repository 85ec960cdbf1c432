"""`planrun report RUN -o report.html`: one self-contained HTML file for a run.

The page is the template `assets/report.html` with the CSS, the renderer (`assets/render.js`),
the status symbols (`style.SYMBOLS`) and the run's snapshot (`model.snapshot`), both embedded as
JSON, inlined: it opens from disk, mails
and archives as one file, and its Content-Security-Policy forbids any network request.
"""

from __future__ import annotations

import html
import json
import re
import time
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any, TextIO

from planrun.console import plural
from planrun.core.byvalue import ByValue
from planrun.store import Reader
from planrun.views.inspect import open_state
from planrun.views.model import ViewError, pick_run, snapshot
from planrun.views.style import SYMBOLS, status_css


@cache
def asset(name: str) -> str:
    return files("planrun.views").joinpath("assets", name).read_text(encoding="utf-8")


def embed_json(data: Any) -> str:
    """JSON that cannot end its <script> element early (`</script>`, `<!--`)."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c")


def render_page(
    template: str, title: str, data: Any, scripts: tuple[str, ...] = ("render.js",)
) -> str:
    parts = {
        "TITLE": html.escape(title),
        "CSS": status_css() + asset("views.css"),
        "DATA": embed_json(data),
        "SYMBOLS": embed_json(SYMBOLS),  # render.js draws statuses with these
        "JS": "\n".join(asset(name) for name in scripts),
    }
    # One substitution over the template: text inside the inserted values (a step's stderr,
    # the scripts) is never scanned for markers.
    return _MARKER.sub(lambda match: parts[match.group(1)], template)


_MARKER = re.compile(r"@@(TITLE|CSS|DATA|SYMBOLS|JS)@@")


def render_report(reader: Reader, run_ref: str) -> str:
    data = snapshot(reader, run_ref)
    run = data["run"]
    title = f"{run['plan_id']} — run {run['run_id']} ({run['status']})"
    return render_page(asset("report.html"), title, data)


@dataclass(frozen=True, eq=False, repr=False)
class Written(ByValue):
    path: Path
    size: int
    steps: int
    seconds: float


def write_report(state_dir: str, run_ref: str, output: str | None) -> Written:
    started = time.perf_counter()
    with open_state(state_dir) as reader:
        run_id = reader.resolve(run_ref)
        page = render_report(reader, run_id)
        steps = len(reader.steps(run_id))
    path = Path(output or f"report-{run_id}.html")
    data = page.encode("utf-8")
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise ViewError(f"cannot write {path}: {exc.strerror or exc}") from None
    return Written(path, len(data), steps, time.perf_counter() - started)


def report(state_dir: str, run_ref: str | None, output: str | None, out: TextIO) -> int:
    with open_state(state_dir) as reader:
        run_id = pick_run(reader, run_ref)
    written = write_report(state_dir, run_id, output)
    out.write(
        f"planrun: wrote {written.path} ({written.size / 1024:.0f} KiB, {written.steps}"
        f" {plural(written.steps, 'step')})\n"
    )
    return 0
