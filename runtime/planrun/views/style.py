"""How runs look as terminal text: status symbols, ANSI colour, durations, the colour policy.

Plain standard library only: the line reporter imports this on every run, with or without rich.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Literal, TextIO

# Terminal statuses in the order counts and legends show them (docs/semantics.md, statuses).
FINAL_STATUSES = ("success", "failed", "timed_out", "upstream_failed", "skipped", "cancelled")

ColorMode = Literal["auto", "always", "never"]
COLOR_MODES: tuple[ColorMode, ...] = ("auto", "always", "never")

SYMBOLS = {
    "pending": "·",
    "running": "▶",
    "success": "✓",
    "failed": "✗",
    "timed_out": "⏱",
    "skipped": "⊘",
    "upstream_failed": "↯",
    "cancelled": "⊗",
    "interrupted": "‖",
    "retrying": "↻",
    "recovered": "⤷",
}

# SGR codes; also used as rich style names by the live view, so the two agree.
COLORS = {
    "pending": "2",
    "running": "36",
    "success": "32",
    "failed": "31",
    "timed_out": "31",
    "skipped": "33",
    "upstream_failed": "91",
    "cancelled": "35",
    "interrupted": "35",
    "retrying": "33",
    "recovered": "36",
}
RICH_STYLES = {
    "pending": "dim",
    "running": "cyan",
    "success": "green",
    "failed": "bold red",
    "timed_out": "bold red",
    "skipped": "yellow",
    "upstream_failed": "red",
    "cancelled": "magenta",
    "interrupted": "magenta",
    "retrying": "yellow",
    "recovered": "cyan",
}

# The HTML views' colour of each status: the report's and the UI's CSS (`.s-STATUS` sets `--c`,
# which every tile, bar, node and cell is drawn with) is generated from this one table.
WEB_COLORS = {
    "pending": "#e9ecf1",
    "running": "#2f7fd8",
    "success": "#2e9e5b",
    "failed": "#d6393b",
    "timed_out": "#b02a6b",
    "skipped": "#b7bcc6",
    "cancelled": "#8e6ac8",
    "interrupted": "#8e6ac8",
    "retrying": "#e0a126",
    "upstream_failed": "#e8743b",
}


def status_css() -> str:
    """`:root { --success: … }` and `.s-success { --c: var(--success); }`, from WEB_COLORS."""
    names = "".join(f" --{status}: {color};" for status, color in WEB_COLORS.items())
    classes = "".join(f".s-{status} {{ --c: var(--{status}); }}\n" for status in WEB_COLORS)
    return f":root {{{names} }}\n{classes}"


def use_color(
    stream: TextIO, mode: ColorMode = "auto", env: Mapping[str, str] | None = None
) -> bool:
    """`--color` wins; in `auto`, NO_COLOR (https://no-color.org) beats FORCE_COLOR beats isatty."""
    if mode != "auto":
        return mode == "always"
    env = os.environ if env is None else env
    if env.get("NO_COLOR"):
        return False
    force = env.get("FORCE_COLOR")
    if force is not None and force not in ("", "0", "false"):
        return True
    return is_terminal(stream, env)


def is_terminal(stream: TextIO, env: Mapping[str, str] | None = None) -> bool:
    """A terminal that can take cursor movement (a `dumb` one gets plain lines)."""
    env = os.environ if env is None else env
    if env.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or fake stream
        return False


def paint(text: str, status: str, enabled: bool) -> str:
    code = COLORS.get(status)
    return f"\x1b[{code}m{text}\x1b[0m" if enabled and code else text


def dim(text: str, enabled: bool) -> str:
    return f"\x1b[2m{text}\x1b[0m" if enabled else text


def symbol(status: str) -> str:
    return SYMBOLS.get(status, "?")


def command_text(payload: Mapping[str, object]) -> str:
    """A `step_started` event's command as the user wrote it, for `-v` views."""
    argv = payload.get("argv")
    if not isinstance(argv, list):
        return str(payload.get("shell_command", ""))
    words = [str(a) for a in argv]
    if words[:2] == ["/bin/sh", "-c"] and len(words) == 3:
        return words[2]  # a `shell: true` step: show the line the user wrote
    return shlex.join(words)


def format_duration(seconds: float | None) -> str:
    """`4.2s`, `3m07s`, `2h05m`: short enough for a status line, exact enough to compare."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def parse_ts(ts: str) -> datetime:
    """An event/store timestamp (`2026-11-30T10:15:00.123456Z`) as an aware UTC datetime."""
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def local_time(ts: str | None) -> str:
    """A stored timestamp shown in local time, to the second (what `runs` and `show` print)."""
    if ts is None:
        return ""
    return parse_ts(ts).astimezone().strftime("%Y-%m-%d %H:%M:%S")
