"""How planc and planrun start: their click CLI, with Ctrl-C, SIGTERM or SIGHUP at any moment
one line and exit 130, never a traceback (docs/cli.md, *Interrupts*). This is the one place
that says so: the commands let an interrupt propagate.

The CLI module is imported inside the handler: loading it is most of either program's
start-up, and an interrupt then must not print a traceback either. Once planrun records a run,
the executor's own handlers take over (they count interrupts and cancel the run cleanly).
"""

from __future__ import annotations

import gc
import importlib
import signal
import sys
from types import FrameType
from typing import NoReturn

EXIT_INTERRUPTED = 130
# `planrun exec` itself failed: bad options, unusable state dir (as timeout). Here rather than in
# planrun.supervise so that the CLI can name it without loading `exec` for every command.
EXIT_OWN_ERROR = 125


class Interrupted(BaseException):
    """A KeyboardInterrupt raised inside a command, carried past click's main
    (planrun.core.cli_group), which would print an empty line and turn it into Abort."""


def run_program(program: str, cli_module: str) -> NoReturn:
    """Run the click group `main` of `cli_module` as `program`, and exit with its code."""
    # A signal the program was started with ignored stays ignored, as in make: a shell ignores
    # SIGINT in its background jobs so that Ctrl-C reaches only the foreground one, and nohup
    # ignores SIGHUP. SIGINT already raises KeyboardInterrupt.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, _raise_interrupt)
    try:
        # What the start-up allocates lives as long as the program: the collector's passes over
        # it while importing find nothing (several ms), and once frozen later passes skip it.
        gc.disable()
        try:
            import click

            cli = importlib.import_module(cli_module).main
        finally:
            gc.freeze()
            gc.enable()
        try:
            # `python -m planrun` completes too (click would derive the variable from argv[0])
            complete_var = f"_{program.upper()}_COMPLETE"
            code = cli.main(standalone_mode=False, complete_var=complete_var)
        except click.exceptions.Abort:  # click's rewording of a KeyboardInterrupt
            raise KeyboardInterrupt from None
        except click.ClickException as exc:
            exc.show()
            code = exc.exit_code
    except (KeyboardInterrupt, Interrupted):
        sys.stderr.write(f"{program}: interrupted\n")
        code = EXIT_INTERRUPTED
    sys.exit(code)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt
