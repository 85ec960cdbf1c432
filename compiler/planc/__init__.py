"""planc: compiles declarative plans into a frozen, topologically ordered JSON IR.

A pipeline of small stages (pipeline.py; docs/architecture.md): load/ (text -> positioned
nodes), schema, model, rules/ (semantic checks), lower and emit (the IR), analysis/ (proofs
over the IR). May import itself, lark, ruamel.yaml, jsonschema, click and, of planrun, only the
kernel planrun.core (tests/test_import_graph.py)."""

__version__ = "0.1.0"
