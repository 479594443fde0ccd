"""sqlite-utils migration sets, built and checked the same way for every database cutover
keeps (the state, the copy engine's identity map). Cheap to import: sqlite-utils is imported
only when a set is built, that is when a migration may run."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlite_utils.migrations import Migrations

MIGRATIONS_TABLE = "_sqlite_migrations"  # where sqlite-utils' Migrations records what ran


def build_migrations(name: str, steps: Sequence[Callable[..., Any]]) -> Migrations:
    """The sqlite-utils migration set `name` of `steps`, in order."""
    from sqlite_utils.migrations import Migrations

    migrations = Migrations(name)
    for step in steps:
        migrations()(step)
    return migrations


def migrations_applied(conn: sqlite3.Connection, name: str,
                       steps: Sequence[Callable[..., Any]]) -> bool:
    """Whether every one of `steps` is recorded as applied in the migration set `name` (read
    without sqlite-utils)."""
    try:
        applied = {row[0] for row in conn.execute(
            f"SELECT name FROM {MIGRATIONS_TABLE} WHERE migration_set = ?", [name])}
    except sqlite3.OperationalError:  # no migrations table: a new or foreign database
        return False
    return all(step.__name__ in applied for step in steps)
