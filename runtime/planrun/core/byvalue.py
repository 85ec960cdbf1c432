"""ByValue: the __eq__, __hash__ and __repr__ of every frozen dataclass, written once.

A frozen dataclass is declared `@dataclass(frozen=True, eq=False, repr=False)` with `ByValue` as a
base. The three methods behave as the generated ones do (same fields compared, same hash and
equality contract, same text); generating them per class compiled three functions per class at
import, which was a third of planrun's and planc's start-up (docs/benchmarks.md). The public
APIs (`planrun.api`, `planc.api`) keep the generated ones: importing them loads nothing else.
"""

from __future__ import annotations

import reprlib
from collections.abc import Callable
from dataclasses import fields
from operator import attrgetter
from typing import Any

# Per class: the values that equality and the hash read (the fields with compare=True), and the
# names its repr shows (repr=True), in declaration order.
_COMPARED: dict[type, Callable[[Any], Any]] = {}
_SHOWN: dict[type, tuple[str, ...]] = {}


def _compared(cls: type) -> Callable[[Any], Any]:
    getter = _COMPARED.get(cls)
    if getter is None:
        names = [f.name for f in fields(cls) if f.compare]
        # attrgetter of one name returns the value, of several a tuple: both compare and hash
        # as the generated methods' tuples do.
        getter = attrgetter(*names) if names else (lambda _: ())
        _COMPARED[cls] = getter
    return getter


class ByValue:
    """Mixin of frozen dataclasses: equality and hash by field values, dataclass-style repr."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        compared = _compared(self.__class__)
        return bool(compared(self) == compared(other))

    def __hash__(self) -> int:
        return hash(_compared(self.__class__)(self))

    @reprlib.recursive_repr()
    def __repr__(self) -> str:
        cls = self.__class__
        names = _SHOWN.get(cls)
        if names is None:
            names = _SHOWN[cls] = tuple(f.name for f in fields(self) if f.repr)  # type: ignore[arg-type]
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in names)
        return f"{cls.__qualname__}({shown})"
