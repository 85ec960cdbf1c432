"""Step outputs: what a step wrote to the file named by $PLAN_OUTPUT (docs/dataflow.md)."""

from __future__ import annotations

from planrun.safefs import UnsafeFileError, read_regular

# The most $PLAN_OUTPUT may hold (docs/dataflow.md): a larger file fails the step.
MAX_OUTPUT_BYTES = 1 << 20


class OutputError(Exception):
    """The output file breaks the format; the message names the line. `bare` says the same
    without quoting the file: what a run with secrets records, since a quoted piece of a line
    (a name cut at its `=`, a line cut at 80 characters) may be part of a secret that no masker
    can recognise whole (docs/dataflow.md, "Secrets")."""

    def __init__(self, message: str, bare: str | None = None) -> None:
        super().__init__(message)
        self.bare = message if bare is None else bare


def read_outputs(path: str, allowed: frozenset[str], dir_fd: int | None = None) -> dict[str, str]:
    """`NAME=value` lines and `NAME<<DELIM` … `DELIM` blocks; the last value of a name wins.

    The step may have replaced the file: only a regular file is read (a link is not followed, a
    pipe does not block, a device is refused), at most MAX_OUTPUT_BYTES of it.
    """
    try:
        data = read_regular(path, MAX_OUTPUT_BYTES, dir_fd=dir_fd)
    except FileNotFoundError:
        return {}
    except UnsafeFileError as exc:
        raise OutputError(f"$PLAN_OUTPUT cannot be read: {exc.strerror}") from None
    except OSError as exc:
        raise OutputError(f"$PLAN_OUTPUT cannot be read: {exc.strerror or exc}") from None
    text = data.decode("utf-8", errors="replace")
    return _parse(text.splitlines(), allowed)


def _parse(lines: list[str], allowed: frozenset[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not line.strip():
            continue
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            end = _block_end(lines, index, delimiter, name)
            values[_checked(name, allowed, index)] = "\n".join(lines[index:end])
            index = end + 1
        elif "=" in line:
            name, value = line.split("=", 1)
            values[_checked(name, allowed, index)] = value
        else:
            raise OutputError(
                f"$PLAN_OUTPUT line {index} is not NAME=value: {line[:80]!r}",
                f"$PLAN_OUTPUT line {index} is not NAME=value (not shown in a run with secrets)",
            )
    return values


def _block_end(lines: list[str], start: int, delimiter: str, name: str) -> int:
    if not delimiter:
        raise OutputError(
            f"$PLAN_OUTPUT line {start}: `{name}<<` needs a delimiter",
            f"$PLAN_OUTPUT line {start}: `NAME<<` needs a delimiter",
        )
    for position in range(start, len(lines)):
        if lines[position] == delimiter:
            return position
    raise OutputError(
        f"$PLAN_OUTPUT line {start}: no line `{delimiter}` ends `{name}`",
        f"$PLAN_OUTPUT line {start}: no line with the delimiter ends the `NAME<<DELIM` block",
    )


def _checked(name: str, allowed: frozenset[str], line: int) -> str:
    if name not in allowed:
        listed = ", ".join(sorted(allowed)) or "nothing"
        raise OutputError(
            f"$PLAN_OUTPUT line {line} sets `{name}`, which the step does not provide"
            f" (it provides {listed})",
            f"$PLAN_OUTPUT line {line} sets a name the step does not provide (it provides"
            f" {listed}; the name is not shown in a run with secrets)",
        )
    return name
