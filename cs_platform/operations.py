"""Migration operations that are not about tenancy (those live in cs_platform.tenancy.operations)."""

from __future__ import annotations

from django.db.migrations.operations.base import Operation


class SetStorageParameters(Operation):
    """ALTER TABLE ... SET (parameter = value, ...) on PostgreSQL; nothing on other databases.
    Reversible: going back RESETs the same parameters to the server's defaults."""

    reversible = True

    def __init__(self, table: str, parameters: dict[str, int | float | str]):
        self.table = table
        self.parameters = parameters

    def state_forwards(self, app_label, state):
        pass  # storage parameters are not part of Django's model state

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            settings = ", ".join(f"{name} = {value}" for name, value in self.parameters.items())
            schema_editor.execute(f"ALTER TABLE {schema_editor.quote_name(self.table)} SET ({settings})")

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            names = ", ".join(self.parameters)
            schema_editor.execute(f"ALTER TABLE {schema_editor.quote_name(self.table)} RESET ({names})")

    def describe(self):
        return f"Set storage parameters of {self.table}: {self.parameters}"

    def deconstruct(self):
        return self.__class__.__name__, [], {"table": self.table, "parameters": self.parameters}
