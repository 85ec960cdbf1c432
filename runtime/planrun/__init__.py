"""planrun: interprets the frozen IR produced by planc. Imports nothing from the compiler."""

__version__ = "0.1.0"
