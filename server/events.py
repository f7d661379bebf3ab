"""Change events: what domain actions announce after they commit.

The database is the record; an event only tells live connections that something changed and
for whom. Actions publish through `publish`; until a broker is plugged in the sink drops them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Event:
    #: What changed, e.g. "message.created", "thread.created", "thread.status".
    kind: str
    thread_id: int
    practice_id: int
    #: Everyone who may see the change, computed by the action that made it.
    user_ids: frozenset[int]
    data: dict[str, Any] = field(default_factory=dict)


class EventSink(Protocol):
    async def publish(self, event: Event) -> None: ...


class DroppingSink:
    """Used when nothing listens: events are dropped, the database already holds the change."""

    async def publish(self, event: Event) -> None:
        return None


_sink: EventSink = DroppingSink()


def use_sink(sink: EventSink) -> None:
    global _sink
    _sink = sink


async def publish(event: Event) -> None:
    await _sink.publish(event)
