"""planc.invariants' fast path against Lark's parse of grammar/invariant.lark.

The fast path must never accept a text that Lark refuses, and must build the very Invariant
that Lark's parse gives (terms with their offsets, `not`, junctions flattened as Lark's are);
everything else it leaves to Lark, which words the errors.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from planc import invariants
from planc.invariants import Junction, Term, parse_invariant
from planc.pipeline import compile_bytes


def _lark(text: str) -> invariants.Parsed:
    return invariants._parse_with_lark(text)


def _assert_agree(text: str) -> bool:
    """Whether the fast path read `text`; when it did, Lark must read the same invariant."""
    fast = invariants._Fast.parse(text)
    if fast is None:
        return False
    reference = _lark(text)
    assert reference.errors == ()
    assert fast == reference.invariant
    return True


_LEXEMES = st.sampled_from(
    [
        *("a.success", "b.failed", "c.d.timed_out", "e-f.skipped", "g.upstream_failed"),
        *("h.cancelled", "x", "push", "a.ok", "a.", ".success", "1.success", "_.success"),
        *("requires", "after", "never", "when", "and", "or", "not", "in", "true", "null"),
        *("Requires", "(", ")", " ", "  ", "\n", "\t", "==", "'s'", "1", "[", "]", ",", "é"),
    ]
)


@settings(max_examples=3000, deadline=None)
@given(st.lists(_LEXEMES, max_size=16).map(" ".join))
def test_the_fast_path_agrees_with_lark_on_token_soup(text: str) -> None:
    _assert_agree(text)


_TERMS = st.sampled_from(["a.success", "b.failed", "c.d.timed_out", "e-f.skipped", "g.cancelled"])
_GAP = st.sampled_from([" ", "  ", "\n", " \t"])


@st.composite
def _guard(draw: st.DrawFn, depth: int = 0) -> str:
    if depth > 3 or draw(st.integers(0, 2)) == 0:
        return draw(_TERMS)
    kind = draw(st.sampled_from(["and", "or", "not", "paren"]))
    if kind == "not":
        return "not" + draw(_GAP) + draw(_guard(depth + 1))
    if kind == "paren":
        return "(" + draw(st.sampled_from(["", " "])) + draw(_guard(depth + 1)) + ")"
    parts = draw(st.lists(_guard(depth + 1), min_size=2, max_size=4))
    return (draw(_GAP) + kind + draw(_GAP)).join(parts)


@st.composite
def _invariant(draw: st.DrawFn) -> str:
    guard = draw(_guard())
    head = draw(st.sampled_from(["deploy requires ", "deploy after ", "never deploy when "]))
    return draw(st.sampled_from(["", " "])) + head + guard + draw(st.sampled_from(["", "\n"]))


@settings(max_examples=1500, deadline=None)
@given(_invariant())
def test_the_fast_path_reads_well_formed_invariants_as_lark_does(text: str) -> None:
    if text.count("(") <= invariants._FAST_MAX_PARENS:
        assert _assert_agree(text)


@st.composite
def _near_miss(draw: st.DrawFn) -> str:
    """A well-formed invariant with one word dropped or one lexeme put in."""
    words = draw(_invariant()).split(" ")
    at = draw(st.integers(0, len(words) - 1))
    if draw(st.booleans()):
        del words[at]
    else:
        words.insert(at, draw(_LEXEMES))
    return " ".join(words)


@settings(max_examples=3000, deadline=None)
@given(_near_miss())
def test_the_fast_path_agrees_with_lark_on_near_misses(text: str) -> None:
    _assert_agree(text)


def test_the_fast_paths_keywords_are_the_grammars() -> None:
    """Lark re-types a name that is a keyword of either grammar; the fast path must know them
    all, or it would take a keyword for a step."""
    literal = {
        str(t.pattern.value)
        for t in invariants._parser().terminals
        if type(t.pattern).__name__ == "PatternStr" and str(t.pattern.value).isalpha()
    }
    assert literal == invariants._KEYWORDS


def test_a_junction_of_three_terms_is_one_invariant_on_both_paths() -> None:
    """Lark's parse used to drop `a or b or c` (a junction of three or more terms, flattened)
    with no error: the invariant vanished from the IR and was never checked."""
    text = "never push when a.failed or b.failed or c.failed"
    expected = Junction("or", tuple(Term(s, "failed", 16 + 12 * i, 8) for i, s in enumerate("abc")))
    assert _lark(text).invariant is not None
    assert _lark(text).invariant == invariants._Fast.parse(text)
    parsed = parse_invariant(text)
    assert parsed.invariant is not None and parsed.invariant.guard == expected
    plan = (
        "plan_id: P\nglobals: {default_timeout_sec: 5}\ninvariants:\n  - " + text + "\nsteps:\n"
        + "".join(f"  - {{id: {s}, command: 'true'}}\n" for s in ("a", "b", "c"))
        + "  - {id: push, command: 'true', depends_on: [a, b, c]}\n"
    )  # fmt: skip
    result = compile_bytes("p.yaml", plan.encode())
    assert result.ir is not None
    [compiled] = json.loads(result.ir)["invariants"]
    assert compiled["guard"]["kind"] == "or"
    assert len(compiled["guard"]["operands"]) == 3


def test_what_the_fast_path_leaves_to_lark() -> None:
    for text in (
        "deploy requires a.ok",  # not a term: Lark words the error
        "deploy requires a.success == 1",
        "deploy requires",
        "never requires a.success",
        "a.success never a.success",
        "deploy requires (a.success",
        "(" * 40 + "deploy requires a.success" + ")" * 40,
        "deploy requires " + "(" * 40 + "a.success" + ")" * 40,
    ):
        assert invariants._Fast.parse(text) is None, text
    deep = "deploy requires " + "(" * 40 + "a.success" + ")" * 40
    assert parse_invariant(deep).invariant == _lark(deep).invariant is not None


def test_a_plan_whose_invariants_are_usual_never_imports_lark(tmp_path: Path) -> None:
    probe = (
        "import sys\nfrom planc.invariants import parse_invariant\n"
        "parse_invariant('never push when not (a.success or b.skipped) and c.failed')\n"
        "print('lark' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr
