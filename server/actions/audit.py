"""The audit trail: who read or changed which thread. It never records message content."""

from __future__ import annotations

from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from server.models import AuditEvent


async def record(
    actor_id: int | None,
    action: str,
    thread_id: int | None = None,
    detail: dict[str, Any] | None = None,
    using: BaseDBAsyncClient | None = None,
) -> None:
    await AuditEvent.create(
        actor_id=actor_id, action=action, thread_id=thread_id, detail=detail or {}, using_db=using
    )
