"""Re-encrypting stored values under the current data key (`colloque rotate-keys`).

Safe while the service runs: rows are rewritten in short batches, each row only if it still
holds the ciphertext that was read (compare-and-set), so a value the service wrote in between
is kept as written. Every value to rewrite is first checked to decrypt: a missing key or an
altered value stops the command before it writes anything. Running it again does nothing more.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass

from tortoise import Tortoise, connections
from tortoise.transactions import in_transaction

from server import sql
from server.crypto import DecryptionError, Keyring, UnknownKeyError, key_id_of
from server.encrypted_fields import EncryptedTextField

#: Rows rewritten per transaction: short enough not to hold locks against the running service.
BATCH_SIZE = 500
#: How many undecryptable values an error names, so the message stays readable.
_NAMED_PROBLEMS = 5


class RotationError(RuntimeError):
    """Some values cannot be decrypted with the configured keys."""


@dataclass(frozen=True)
class EncryptedColumn:
    table: str
    column: str
    pk: str

    @property
    def context(self) -> str:
        return f"{self.table}.{self.column}"


@dataclass(frozen=True)
class ColumnRotation:
    column: EncryptedColumn
    #: Values rewritten under the current key, legacy plaintext included.
    reencrypted: int
    #: Of those, values that were stored before encryption was turned on.
    from_plaintext: int
    #: Values the service rewrote between the read and the update: left as it wrote them.
    changed_meanwhile: int


def encrypted_columns() -> list[EncryptedColumn]:
    """Every encrypted column of the registered models, in a stable order."""
    assert Tortoise.apps is not None, "the database must be open"
    found = {
        EncryptedColumn(
            model._meta.db_table,
            field.source_field or field.model_field_name,
            model._meta.db_pk_column,
        )
        for model in Tortoise.apps.get_models_iterable()
        for field in model._meta.fields_map.values()
        if isinstance(field, EncryptedTextField)
    }
    return sorted(found, key=lambda column: column.context)


async def _stale_batches(
    column: EncryptedColumn, keyring: Keyring, batch_size: int
) -> AsyncIterator[list[tuple[int, str]]]:
    """(id, stored value) of the rows not under the current key, by ascending id.

    The database leaves out the rows already under the current key, so that a run after a
    complete one reads nothing back.
    """
    prefix = f"v1:{keyring.current_id}:"
    # Table and column names come from the models, never from input.
    query = (
        f'SELECT "{column.pk}" AS id, "{column.column}" AS value FROM "{column.table}"'  # noqa: S608
        f' WHERE "{column.pk}" > ? AND "{column.column}" IS NOT NULL'
        f' AND "{column.column}" <> ? AND substr("{column.column}", 1, ?) <> ?'
        f' ORDER BY "{column.pk}" LIMIT ?'
    )
    after = 0
    while True:
        rows = await sql.fetch(
            connections.get("default"), query, after, "", len(prefix), prefix, batch_size
        )
        batch = [(int(row["id"]), str(row["value"])) for row in rows]
        if not batch:
            return
        yield batch
        after = batch[-1][0]


async def _check_decryptable(
    columns: list[EncryptedColumn], keyring: Keyring, batch_size: int
) -> None:
    unknown: Counter[str] = Counter()
    altered: list[str] = []
    for column in columns:
        async for batch in _stale_batches(column, keyring, batch_size):
            for row_id, stored in batch:
                try:
                    keyring.decrypt(stored, column.context)
                except UnknownKeyError:
                    unknown[str(key_id_of(stored))] += 1
                except DecryptionError:
                    altered.append(f"{column.context} id {row_id}")
    if not unknown and not altered:
        return
    lines = [
        f"{sum(unknown.values()) + len(altered)} stored value(s) cannot be decrypted;"
        " nothing was changed."
    ]
    lines += [
        f"  {count} value(s) are encrypted with key {key_id!r}, which COLLOQUE_DATA_KEYS does"
        " not list: add it after the current key"
        for key_id, count in sorted(unknown.items())
    ]
    if altered:
        named = ", ".join(altered[:_NAMED_PROBLEMS]) + (
            ", ..." if len(altered) > _NAMED_PROBLEMS else ""
        )
        lines.append(
            f"  {len(altered)} value(s) fail authentication (altered, or moved from another"
            f" column): {named}"
        )
    raise RotationError("\n".join(lines))


async def _rotate_column(
    column: EncryptedColumn, keyring: Keyring, batch_size: int
) -> ColumnRotation:
    reencrypted = from_plaintext = changed = 0
    # Compare-and-set: the row is rewritten only if it still holds what was read.
    update = (
        f'UPDATE "{column.table}" SET "{column.column}" = ?'  # noqa: S608 - names from the models
        f' WHERE "{column.pk}" = ? AND "{column.column}" = ? RETURNING "{column.pk}"'
    )
    async for batch in _stale_batches(column, keyring, batch_size):
        # Decrypt before the transaction opens, so that it only holds locks while writing.
        try:
            rewritten = [
                (
                    row_id,
                    stored,
                    keyring.encrypt(keyring.decrypt(stored, column.context), column.context),
                )
                for row_id, stored in batch
            ]
        except DecryptionError as error:
            # Written by something else since the check: this batch is not started.
            raise RotationError(
                f"{error}; {reencrypted} value(s) of {column.context} were re-encrypted before"
                " it and are valid. Fix the keys and run rotate-keys again."
            ) from error
        async with in_transaction() as connection:
            for row_id, stored, new in rewritten:
                if await sql.fetch(connection, update, new, row_id, stored):
                    reencrypted += 1
                    from_plaintext += key_id_of(stored) is None
                else:
                    changed += 1
    return ColumnRotation(column, reencrypted, from_plaintext, changed)


async def rotate_keys(keyring: Keyring, batch_size: int = BATCH_SIZE) -> list[ColumnRotation]:
    """Re-encrypt every stored value that is not under `keyring`'s current key."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    columns = encrypted_columns()
    await _check_decryptable(columns, keyring, batch_size)
    return [await _rotate_column(column, keyring, batch_size) for column in columns]
