"""Did-you-mean suggestions shared by every stage."""

from __future__ import annotations

from collections.abc import Collection

# difflib compares the word with every candidate (~50 µs each for ids alike): 20,000 misspelt
# dependencies among 20,000 steps took over 5 minutes. Past this many comparisons in one planc
# process (a few seconds), diagnostics come without a suggestion, deterministically.
SUGGESTION_BUDGET = 50_000
_spent = 0


def did_you_mean(word: str, candidates: Collection[str]) -> str | None:
    """A hint naming the closest candidate, or None when nothing is close (or the budget of
    comparisons is spent)."""
    global _spent
    if _spent + len(candidates) > SUGGESTION_BUDGET:
        return None
    _spent += len(candidates)
    import difflib  # here: only a plan with a mistake needs it

    matches = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f"did you mean `{matches[0]}`?" if matches else None
