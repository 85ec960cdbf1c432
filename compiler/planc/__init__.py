"""planc: compiles declarative plans into a frozen, topologically ordered JSON IR."""

__version__ = "0.1.0"
