"""ByValue: frozen dataclasses share one __eq__, __hash__ and __repr__, which behave as the ones
dataclasses would generate; and every frozen dataclass of planc and planrun uses them."""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Any

import pytest

import planc
import planrun
from planrun.core.byvalue import ByValue


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Shared(ByValue):
    name: str
    size: int = 0
    cache: dict[str, int] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Generated:
    name: str
    size: int = 0
    cache: dict[str, int] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, eq=False, repr=False)
class One(ByValue):
    value: Any


@dataclass(frozen=True, eq=False, repr=False)
class Empty(ByValue):
    pass


@dataclass(frozen=True, eq=False, repr=False)
class Nested(ByValue):
    inner: Shared
    items: tuple[Shared, ...] = ()


def test_equality_hash_and_text_are_the_generated_ones() -> None:
    for name, size in (("a", 1), ("b", 0), ("", -3)):
        shared, generated = Shared(name, size, {"x": 1}), Generated(name, size, {"x": 1})
        assert repr(shared) == repr(generated).replace("Generated", "Shared")
        assert shared == Shared(name, size, {"other": 2})  # compare=False: not compared
        assert hash(shared) == hash(Shared(name, size))
    assert Shared("a", 1) != Shared("a", 2)
    assert Shared("a") != Generated("a")  # another class: never equal, as generated
    assert Shared("a").__eq__(Generated("a")) is NotImplemented
    assert len({Shared("a"), Shared("a"), Shared("b")}) == 2
    assert repr(Nested(Shared("x"), (Shared("y", 2),))) == (
        "Nested(inner=Shared(name='x', size=0), items=(Shared(name='y', size=2),))"
    )


def test_one_field_and_no_field() -> None:
    assert One(1) == One(1) and One(1) != One(2) and hash(One((1, 2))) == hash(One((1, 2)))
    assert One([1]) == One([1])
    nan = float("nan")
    assert One(nan) == One(nan) and Shared("a", nan) == Shared("a", nan)  # type: ignore[arg-type]
    assert One(nan) != One(float("nan"))  # as generated: the same object only
    with pytest.raises(TypeError, match="unhashable"):  # as generated: a list is not hashable
        hash(One([1]))
    assert Empty() == Empty() and hash(Empty()) == hash(Empty()) and repr(Empty()) == "Empty()"


@dataclass(frozen=True, eq=False, repr=False)
class Base(ByValue):
    a: int


@dataclass(frozen=True, eq=False, repr=False)
class Derived(Base):
    b: int


def test_a_subclass_compares_its_own_fields_whoever_was_compared_first() -> None:
    assert Base(1) == Base(1) and hash(Base(1)) == hash(Base(1))  # Base's fields, first
    assert Derived(1, 2) != Derived(1, 3)
    assert repr(Derived(1, 2)) == "Derived(a=1, b=2)"


def test_still_frozen() -> None:
    shared = Shared("a")
    with pytest.raises(dataclasses.FrozenInstanceError):
        shared.name = "b"  # type: ignore[misc]
    assert dataclasses.replace(shared, size=5) == Shared("a", 5)


def test_a_recursive_repr_ends() -> None:
    box = One([])
    box.value.append(box)
    assert repr(box) == "One(value=[...])"


# Their own module must load nothing of planrun (tests/test_api.py): they keep generated methods.
_GENERATED_ON_PURPOSE = {"planrun.api", "planc.api"}


def test_every_frozen_dataclass_of_planc_and_planrun_shares_them() -> None:
    offenders, checked = [], 0
    for package in (planc, planrun):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if info.name in _GENERATED_ON_PURPOSE or info.name.endswith("__main__"):
                continue
            module = importlib.import_module(info.name)
            for value in vars(module).values():
                if not (isinstance(value, type) and value.__module__ == module.__name__):
                    continue
                params = getattr(value, "__dataclass_params__", None)
                if params is None or not params.frozen or params.order:
                    continue  # order=True needs the generated comparisons
                checked += 1
                if params.eq:  # generated: eq=False declares ByValue's, or identity on purpose
                    offenders.append(f"{info.name}.{value.__qualname__}")
    assert checked > 90  # the walk reached them
    assert offenders == [], "declare them @dataclass(frozen=True, eq=False, repr=False), ByValue"
