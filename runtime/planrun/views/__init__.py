"""Ways of looking at runs: terminal views, `runs`/`show`/`logs`, the HTML report, the web UI.

Everything here reads runs through `planrun.store.Reader` only (see `model`). The core runtime
imports nothing from this package except `style` (plain text, no rich), so `planrun --json` and
library use never load rich or the web server; the other modules are imported when a command
or the TTY live view needs them.
"""
