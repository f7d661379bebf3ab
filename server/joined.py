"""Rows with their to-one relations, in one query whose text is built once per shape.

Tortoise rebuilds a `select_related` query from scratch on every call. On the statements run
for every message (the session, the thread, the live hub's batch) building it cost about nine
times the round trip itself: 0.86 ms of CPU for a thread with four relations, against 0.10 ms
for the same row by hand-written SQL. Here the SELECT and its joins are written once per shape,
and rows become models the way Tortoise's own executor makes them, so the objects behave the
same (`tests/test_joined.py` compares them with Tortoise's).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any, TypeVar

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.models import Model

from server.sql import dialect

M = TypeVar("M", bound=Model)

#: The main table's alias in the `where` text callers pass.
MAIN = "main"


@dataclass(frozen=True)
class _Part:
    """One model of the shape: where its columns sit in the row, and where it hangs."""

    model: type[Model]
    columns: tuple[str, ...]
    start: int
    #: Index of the part it belongs to, and the relation's name there; None for the main row.
    parent: int | None
    attribute: str | None
    #: Position of the primary key among `columns`: NULL there means no related row.
    key: int


@dataclass(frozen=True)
class _Plan:
    head: str
    parts: tuple[_Part, ...]


def _quote(name: str) -> str:
    return f'"{name}"'


@cache
def _plan(model: type[Model], relations: tuple[str, ...]) -> _Plan:
    """`relations` are paths such as "user" and "user__practice" (a parent before its child)."""
    columns = _columns(model)
    parts = [_Part(model, columns, 0, None, None, columns.index(model._meta.db_pk_column))]
    aliases = {(): MAIN}
    indexes: dict[tuple[str, ...], int] = {(): 0}
    selected = [f"{MAIN}.{_quote(c)}" for c in columns]
    joins = []
    for path in relations:
        *above, name = path.split("__")
        parent_index = indexes[tuple(above)]
        parent = parts[parent_index]
        field = parent.model._meta.fields_map[name]
        related: type[Model] = field.related_model  # type: ignore[attr-defined]
        source = parent.model._meta.fields_db_projection[field.source_field]  # type: ignore[attr-defined]
        target = related._meta.fields_db_projection[field.to_field_instance.model_field_name]  # type: ignore[attr-defined]
        alias = f"j{len(parts)}"
        aliases[(*above, name)] = alias
        indexes[(*above, name)] = len(parts)
        related_columns = _columns(related)
        joins.append(
            f"LEFT JOIN {_quote(related._meta.db_table)} {alias}"
            f" ON {alias}.{_quote(target)} = {aliases[tuple(above)]}.{_quote(source)}"
        )
        key = related_columns.index(related._meta.db_pk_column)
        parts.append(_Part(related, related_columns, len(selected), parent_index, name, key))
        selected += [f"{alias}.{_quote(c)}" for c in related_columns]
    table = _quote(model._meta.db_table)
    # Names from model metadata only, never from input.
    head = f"SELECT {', '.join(selected)} FROM {table} {MAIN} {' '.join(joins)}"  # noqa: S608
    return _Plan(head, tuple(parts))


def _columns(model: type[Model]) -> tuple[str, ...]:
    return tuple(model._meta.fields_db_projection.values())


async def select(
    model: type[M],
    relations: tuple[str, ...],
    where: str,
    *params: Any,
    connection: BaseDBAsyncClient | None = None,
) -> list[M]:
    """Instances of `model` matching `where` (SQL on the alias `main`, `?` placeholders, may end
    with ORDER BY and LIMIT), each with the named relations loaded as `select_related` would."""
    plan = _plan(model, relations)
    db = connection or connections.get("default")
    _, rows = await db.execute_query(dialect(db, f"{plan.head} WHERE {where}"), list(params))
    found: list[M] = []
    for row in rows:
        values = tuple(row)
        made: list[Model | None] = []
        for part in plan.parts:
            chunk = values[part.start : part.start + len(part.columns)]
            instance = (
                part.model._init_from_db(**dict(zip(part.columns, chunk, strict=True)))
                if part.parent is None or chunk[part.key] is not None
                else None
            )
            made.append(instance)
            if part.parent is not None:
                owner = made[part.parent]
                if owner is not None:
                    # Where Tortoise keeps a loaded relation (what `select_related` fills).
                    object.__setattr__(owner, f"_{part.attribute}", instance)
        found.append(made[0])  # type: ignore[arg-type]
    return found
