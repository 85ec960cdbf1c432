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
from typing import Any, ClassVar


class ByValue:
    """Mixin of frozen dataclasses: equality and hash by field values, dataclass-style repr."""

    __slots__ = ()
    # Per class, filled on first use: the tuple of the values equality and the hash read
    # (compare=True), compared and hashed as the generated methods' tuples are.
    _compared: ClassVar[Callable[[Any], Any] | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._compared = None  # its own: a subclass has other fields than its base

    # Both are on hot paths (condition trees are cache keys): no lookup or call beyond these.
    def __eq__(self, other: object) -> bool:
        cls = self.__class__
        if other.__class__ is not cls:
            return NotImplemented
        compared = cls._compared or _compared_of(cls)
        equal: bool = compared(self) == compared(other)
        return equal

    def __hash__(self) -> int:
        cls = self.__class__
        return hash((cls._compared or _compared_of(cls))(self))

    @reprlib.recursive_repr()
    def __repr__(self) -> str:
        shown = (f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if f.repr)  # type: ignore[arg-type]
        return f"{self.__class__.__qualname__}({', '.join(shown)})"


def _compared_of(cls: type[ByValue]) -> Callable[[Any], Any]:
    names = [f.name for f in fields(cls) if f.compare]  # type: ignore[arg-type]
    if len(names) == 1:  # a tuple still: its comparison takes an object as equal to itself
        name = names[0]
        getter: Callable[[Any], Any] = lambda value: (getattr(value, name),)  # noqa: E731
    else:
        getter = attrgetter(*names) if names else (lambda _: ())
    cls._compared = getter
    return getter
