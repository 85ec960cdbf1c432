"""The `planc` program, `python -m planc` and the installed script alike: the click CLI, with
Ctrl-C, SIGTERM or SIGHUP at any moment one line and exit 130, never a traceback (docs/cli.md).

The CLI is imported inside the handler: loading it is most of planc's start-up, and an
interrupt then must not print a traceback either.
"""

from __future__ import annotations

import signal
import sys
from types import FrameType

EXIT_INTERRUPTED = 130


def main() -> None:
    # A signal planc was started with ignored stays ignored (a shell's background jobs).
    for signum in (signal.SIGTERM, signal.SIGHUP):  # SIGINT already raises KeyboardInterrupt
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, _raise_interrupt)
    try:
        import click

        from planc.cli import main as cli

        try:
            code = cli.main(standalone_mode=False)
        except click.exceptions.Abort:  # click's rewording of a KeyboardInterrupt
            raise KeyboardInterrupt from None
        except click.ClickException as exc:
            exc.show()
            code = exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("planc: interrupted\n")
        code = EXIT_INTERRUPTED
    sys.exit(code)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    main()
