"""The condition language grammar, shipped as package data so installed and editable builds find it."""

from importlib.resources import files


def condition_grammar() -> str:
    return files(__name__).joinpath("condition.lark").read_text(encoding="utf-8")
