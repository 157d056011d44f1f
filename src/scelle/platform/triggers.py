"""Database triggers that refuse UPDATE on tables whose rows are written once.

The models already refuse to change those rows; the trigger makes the
database itself refuse, whatever code or SQL tries. DELETE is left to the
models: test databases are emptied with DELETE on SQLite.
"""

from __future__ import annotations

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps


def forbid_updates(table: str, message: str) -> migrations.RunPython:
    """A migration operation adding a refuse-every-UPDATE trigger on `table`."""
    name = f"{table}_no_update"
    quoted = message.replace("'", "''")

    def forward(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
        vendor = schema_editor.connection.vendor
        if vendor == "sqlite":
            schema_editor.execute(
                f"CREATE TRIGGER {name} BEFORE UPDATE ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{quoted}'); END"
            )
        elif vendor == "postgresql":
            schema_editor.execute(
                f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS "
                f"$$ BEGIN RAISE EXCEPTION '{quoted}'; END $$"
            )
            schema_editor.execute(
                f"CREATE TRIGGER {name} BEFORE UPDATE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION {name}()"
            )

    def backward(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
        schema_editor.execute(
            f"DROP TRIGGER IF EXISTS {name}"
            + (f" ON {table}" if schema_editor.connection.vendor == "postgresql" else "")
        )
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(f"DROP FUNCTION IF EXISTS {name}()")

    return migrations.RunPython(forward, backward)
