"""`python -m planc` (the same as the `planc` script)."""

from planc.cli import main

main()
