"""A text column encrypted by the application (see server/crypto.py).

Code reads and writes the attribute as text, `message.body` like any other field; the database
only ever sees `v1:<key id>:<ciphertext>`. Tortoise converts on every path that goes through a
model: saving, create(), update(), loading objects, `.values()` and `.values_list()`. Raw SQL
sees the ciphertext. Encryption is randomised, so a filter on such a column could never match:
it raises instead of quietly finding nothing (only the empty string can be looked up).
"""

from __future__ import annotations

from typing import Any

from tortoise import fields

from server import crypto


class EncryptedColumnFilter(TypeError):
    """A query compared an encrypted column with a value: compare after loading instead."""


class EncryptedTextField(fields.TextField):
    """A TextField stored encrypted; the empty string is stored as is (nothing to hide)."""

    def context(self) -> str:
        """`table.column`: the associated data that ties a ciphertext to this column."""
        return f"{self.model._meta.db_table}.{self.source_field or self.model_field_name}"

    # Encryption happens in Python and changes nothing in the schema: migrations see the plain
    # TEXT column it is. As a field type of its own, the autodetector would "alter" each column,
    # which SQLite does by copying the whole table and dropping its indexes on the way.
    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        _, args, kwargs = super().deconstruct()
        return f"{fields.TextField.__module__}.{fields.TextField.__name__}", args, kwargs

    def describe(self, serializable: bool) -> dict[str, Any]:
        description = super().describe(serializable)
        if serializable:
            description["field_type"] = fields.TextField.__name__
        return description

    def to_db_value(self, value: Any, instance: Any) -> str | None:
        if value is None or value == "":
            return value
        if isinstance(instance, type):
            # Tortoise passes the model class, not an instance or None, only to encode filters.
            raise EncryptedColumnFilter(
                f"{self.context()} is encrypted: a filter on it cannot match,"
                " compare the loaded values instead"
            )
        return crypto.active_keyring().encrypt(str(value), self.context())

    def to_python_value(self, value: Any) -> str | None:
        if value is None or value == "":
            return value
        return crypto.active_keyring().decrypt(str(value), self.context())
