"""The `planrun` program: `python -m planrun` and the installed script alike."""

from planrun.core.entry import run_program


def main() -> None:
    run_program("planrun", "planrun.cli")


if __name__ == "__main__":
    main()
