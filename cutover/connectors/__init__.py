"""Connectors: one module per external system, each with a file-backed twin. See base.py."""
