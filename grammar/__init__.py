"""The condition grammar, shipped as package data for installed and editable builds."""

from importlib.resources import files


def condition_grammar() -> str:
    return files(__name__).joinpath("condition.lark").read_text(encoding="utf-8")
