"""The `planc` program: `python -m planc` and the installed script alike."""

from planrun.core.entry import run_program


def main() -> None:
    run_program("planc", "planc.cli")


if __name__ == "__main__":
    main()
