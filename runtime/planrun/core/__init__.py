"""The kernel planc and planrun share: what a plan means, independent of where it runs.

Here: the IR (ir: load and verify; ir_types: the typed IR; ir.schema.json with schema_check and
schema_pattern), its vocabularies (status, trigger_rules, actions), the semantics (semantics:
PlanState's pure decisions; conditions: the condition language's tree and evaluation;
invariants; interpolate; params), the one executor loop (loop, scheduler, the launcher protocol
and its attempt vocabulary in launcher, and replay: the loop over instant attempts for
`planc simulate` and `--dry-run`), bound (worst-case durations), describe, failure (a failed
attempt's output), and the start-up shell both programs use (entry, cli_group) with its I/O
helpers (reads, writes, printable).

May import: the standard library, click (cli_group) and itself; never planrun outside core, never
planc. planc imports planrun only from here, but for `planc simulate --state-dir`'s lazy import
of planrun.dry_run (tests/test_import_graph.py holds these rules; docs/architecture.md).
"""
