"""Semantic rules, one per module, run in the order listed here."""
