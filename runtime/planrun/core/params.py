"""Binding a plan's params (`-p NAME=VALUE`, `--params-file`) before anything runs."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from planrun.core.reads import InputTooLarge, not_utf8, read_bounded

ParamValue = str | int | bool | None

_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")


class ParamError(Exception):
    """The given params do not fit the plan's declarations; nothing has run."""


def parse_assignments(pairs: tuple[str, ...]) -> dict[str, str]:
    values: dict[str, str] = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not equals or not name:
            raise ParamError(f"-p expects NAME=VALUE, got {pair!r}")
        problem = not_utf8(value)
        if problem is not None:  # a param is text, recorded and shown: refused, not mangled
            raise ParamError(f"-p {name}: the value is not UTF-8 text ({problem})")
        values[name] = value
    return values


def read_params_file(path: str) -> dict[str, Any]:
    try:
        values = json.loads(read_bounded(path))
    except InputTooLarge as exc:
        raise ParamError(f"params file {exc}") from None
    except OSError as exc:
        raise ParamError(f"cannot read params file {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ParamError(f"params file {path} is not valid JSON: {exc}") from None
    except RecursionError:  # json gives up past ~1,000 levels of nesting
        raise ParamError(f"params file {path} nests too deeply to be a params file") from None
    if not isinstance(values, dict):
        raise ParamError(f"params file {path} must hold a JSON object of name: value")
    return values


def bind(
    declared: Mapping[str, Mapping[str, Any]], given: Mapping[str, Any]
) -> dict[str, ParamValue]:
    """Every declared param's value: given (parsed by type) or its default."""
    unknown = sorted(set(given) - set(declared))
    if unknown:
        names = ", ".join(sorted(declared)) or "none"
        raise ParamError(f"unknown param(s) {', '.join(unknown)}; this plan declares: {names}")
    missing = [name for name, spec in declared.items() if spec["required"] and name not in given]
    if missing:
        raise ParamError(
            "missing required param(s): "
            + ", ".join(f"{name} ({declared[name]['type']})" for name in sorted(missing))
            + "; pass them with -p NAME=VALUE"
        )
    for name, value in given.items():
        problem = not_utf8(value) if isinstance(value, str) else None
        if problem is not None:  # a params file's "\\udcff"
            raise ParamError(f"param {name}: the value is not UTF-8 text ({problem})")
    bound: dict[str, ParamValue] = {}
    for name, spec in sorted(declared.items()):
        secret = bool(spec.get("secret"))
        value = (
            _convert(name, spec["type"], given[name], secret) if name in given else spec["default"]
        )
        choices = spec.get("choices")
        if choices is not None and value not in choices:
            listed = ", ".join(str(c) for c in choices)
            raise ParamError(f"param {name} must be one of {listed}; got {_shown(value, secret)}")
        bound[name] = value
    return bound


def _shown(value: Any, secret: bool) -> str:
    """A given value as an error message shows it: never a secret param's."""
    return "a value not shown (secret param)" if secret else repr(value)


def _convert(name: str, kind: str, value: Any, secret: bool = False) -> ParamValue:
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise ParamError(f"param {name} is a bool (true/false); got {_shown(value, secret)}")
    if kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        text = str(value).strip()
        digits = text.removeprefix("-")
        # Decimal ASCII digits only: str.isdigit() also takes '²' and '٣', which int() refuses
        # or reads as another number.
        if digits.isascii() and digits.isdigit() and not isinstance(value, bool | float):
            return int(text)
        raise ParamError(f"param {name} is an int; got {_shown(value, secret)}")
    if isinstance(value, str):
        return value
    raise ParamError(
        f"param {name} is a string; got {_shown(value, secret)} (quote it in the params file)"
    )
