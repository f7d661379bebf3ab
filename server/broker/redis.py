"""Redis pub/sub backend: one subscription per server process, fanned out locally."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import anyio
from redis.asyncio import Redis
from redis.exceptions import RedisError

from server.broker.base import RESYNC, Resync

log = logging.getLogger("colloque.broker")

CHANNEL = "colloque:events"
# Publishing happens after commit on the request path: a dead Redis must not hang a POST for
# long. The message is stored already, and listeners resync when Redis is back.
_PUBLISH_TIMEOUT_SECONDS = 0.5
# Reconnect quickly at first (a Redis restart takes about a second), then back off.
_BACKOFF_SECONDS = (0.1, 0.25, 0.5, 1.0, 2.0)


class RedisBroker:
    def __init__(self, url: str) -> None:
        self._url = url
        # Its own client: the publish path must not wait behind a blocked subscriber socket.
        self._publisher = Redis.from_url(
            url,
            socket_timeout=_PUBLISH_TIMEOUT_SECONDS,
            socket_connect_timeout=_PUBLISH_TIMEOUT_SECONDS,
        )

    async def connect(self) -> None:
        return None

    async def disconnect(self) -> None:
        await self._publisher.aclose()

    async def publish(self, payload: bytes) -> None:
        await self._publisher.publish(CHANNEL, payload)

    async def listen(self) -> AsyncIterator[bytes | Resync]:
        attempt = 0
        while True:
            # redis-py 8 gives clients a default socket timeout that would end a quiet
            # subscription; a subscriber waits as long as it takes (health checks detect a
            # dead server instead).
            client = Redis.from_url(
                self._url, socket_timeout=None, socket_connect_timeout=2, health_check_interval=10
            )
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(CHANNEL)
                attempt = 0
                yield RESYNC
                while True:
                    # A bounded wait lets redis-py run its periodic health check, which notices
                    # a server that vanished without closing the socket.
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None and message["type"] == "message":
                        yield message["data"]
            except (RedisError, OSError) as error:
                log.warning("Redis subscription lost (%s); live updates resume on reconnect", error)
            finally:
                with anyio.CancelScope(shield=True):
                    await pubsub.aclose()
                    await client.aclose()
            await anyio.sleep(_BACKOFF_SECONDS[min(attempt, len(_BACKOFF_SECONDS) - 1)])
            attempt += 1
