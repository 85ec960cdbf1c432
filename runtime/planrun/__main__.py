"""`python -m planrun` (the same as the `planrun` script)."""

from planrun.cli import main

main()
