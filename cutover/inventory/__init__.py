"""Inventory: collect what exists, classify it with reasons, keep snapshots, report."""
