"""Make tests/support.py importable from every test directory; let SIGINT reach planrun."""

import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

# planrun keeps SIGINT and SIGTERM ignored when it starts with them ignored (docs/cli.md), and an
# ignored signal is inherited through exec. Should the suite itself run with them ignored (a
# background job of a script), handle them here, so that the planrun processes the tests start
# get them as a terminal's Ctrl-C or a `kill` would deliver them.
for _signum in (signal.SIGINT, signal.SIGTERM):
    if signal.getsignal(_signum) is signal.SIG_IGN:
        signal.signal(_signum, signal.default_int_handler)
