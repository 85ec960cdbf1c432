"""planrun: interprets the frozen IR produced by planc (docs/architecture.md).

Here: the kernel it shares with planc (core/), the executor and its launchers (executor,
process/ for this machine, dask_launcher/agent/dask_worker for a cluster), the run store
(store/), the views (views/), watch, and the CLI shell (cli, watch_cli, cli_options,
completion). May import core and itself; planc only in plan_loader, lazily, to compile a plan
file in memory (tests/test_import_graph.py)."""

__version__ = "0.1.0"
