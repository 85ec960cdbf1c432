"""Typed event payloads (planrun.events): one dataclass per event type of docs/state.md, and the
stored payload each renders (keys in declaration order, absent fields left out)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from planrun import events as ev

STATE_MD = Path(__file__).resolve().parents[2] / "docs" / "state.md"
ROW = re.compile(r"^\| `([a-z_]+)` \| (yes|no) \|")


def _documented() -> dict[str, bool]:
    """docs/state.md's event table: type -> whether it is a step event."""
    rows = (ROW.match(line) for line in STATE_MD.read_text().splitlines())
    return {m.group(1): m.group(2) == "yes" for m in rows if m}


def test_every_documented_event_type_has_a_payload_class_and_vice_versa() -> None:
    documented = _documented()
    assert len(documented) == 15
    assert set(ev.PAYLOADS) == set(documented)
    assert set(documented) == ev.RUN_EVENTS | ev.STEP_EVENTS
    assert {t for t, step in documented.items() if step} == ev.STEP_EVENTS


@pytest.mark.parametrize("type_", sorted(ev.PAYLOADS))
def test_payload_classes_are_frozen_slotted_keyword_only(type_: str) -> None:
    cls = ev.PAYLOADS[type_]
    assert type_ == cls.TYPE
    assert dataclasses.is_dataclass(cls)
    params = cls.__dataclass_params__  # type: ignore[attr-defined]
    assert params.frozen
    assert "__slots__" in cls.__dict__
    assert all(f.kw_only for f in dataclasses.fields(cls))


def test_payload_keeps_declaration_order_and_leaves_absent_fields_out() -> None:
    # Given in another order, and with null where null is a value (not absence).
    cancelled = ev.StepCancelled(duration_sec=None, signal=None, reason="aborted")
    assert list(cancelled.payload().items()) == [
        ("reason", "aborted"),
        ("signal", None),
        ("duration_sec", None),
    ]
    started = ev.StepStarted(pid=None, pgid=None)
    assert ev.dump_payload(started.payload()) == '{"pid":null,"pgid":null}'
    with pytest.raises(dataclasses.FrozenInstanceError):
        started.pid = 1  # type: ignore[misc]


def test_a_misspelt_field_is_refused() -> None:
    with pytest.raises(TypeError, match="duraton_sec"):
        ev.StepFailed(reason="x", exit_code=1, duraton_sec=1.0)  # type: ignore[call-arg]


def test_mypy_strict_catches_a_misspelt_field_at_an_emit_site(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mypy_api = pytest.importorskip("mypy.api")
    site = tmp_path / "site.py"
    site.write_text(
        "from planrun.events import StepFailed\n"
        'ok = StepFailed(reason="exit code 3", exit_code=3, duration_sec=1.0)\n'
        'bad = StepFailed(reason="exit code 3", exit_code=3, duraton_sec=1.0)\n'
        'wrong = StepFailed(reason="exit code 3", exit_code="3")\n'
    )
    source_root = Path(ev.__file__).resolve().parents[1]
    # An editable install is an import hook mypy cannot follow: point it at the source. An
    # installed wheel is in site-packages, which mypy reads by itself and refuses in MYPYPATH.
    if source_root.name != "site-packages":
        monkeypatch.setenv("MYPYPATH", str(source_root))
    out, _, status = mypy_api.run(["--strict", "--cache-dir", str(tmp_path / "cache"), str(site)])
    assert status == 1, out
    assert 'site.py:3: error: Unexpected keyword argument "duraton_sec"' in out
    assert 'site.py:4: error: Argument "exit_code" to "StepFailed" has incompatible type' in out
    assert "site.py:2:" not in out
