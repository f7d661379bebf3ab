"""The broker interface."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol


class Resync:
    """Yielded by `listen` when messages may have been missed (a fresh or restored connection to
    the broker, or a listener that fell behind): listeners then catch up from the database."""

    def __repr__(self) -> str:
        return "RESYNC"


RESYNC = Resync()


class Broker(Protocol):
    async def connect(self) -> None: ...

    async def disconnect(self) -> None: ...

    async def publish(self, payload: bytes) -> None:
        """Send to every process; may raise if the broker is unreachable (the change is already
        committed, so the caller logs and moves on: listeners resync when it is back)."""
        ...

    def listen(self) -> AsyncIterator[bytes | Resync]:
        """Every payload published from now on, in order, with RESYNC where some may be lost.

        The first item is always RESYNC, so a listener catches up with whatever was committed
        before it subscribed.
        """
        ...
