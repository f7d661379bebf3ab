"""The broker carries "this changed" between server processes; the database stays the record.

One interface, two backends picked from the settings: in-process (embedded default) and Redis
pub/sub (scale-out). Each server process holds one subscription and fans out locally.
"""

from __future__ import annotations

from server.broker.base import RESYNC, Broker, Resync
from server.broker.memory import InProcessBroker


def broker_for(redis_url: str | None) -> Broker:
    """The backend for these settings; Redis is imported only when configured."""
    if redis_url is None:
        return InProcessBroker()
    from server.broker.redis import RedisBroker

    return RedisBroker(redis_url)


__all__ = ["RESYNC", "Broker", "InProcessBroker", "Resync", "broker_for"]
