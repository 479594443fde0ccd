"""Checks: pure functions over looked-up records that report findings (no changes)."""
