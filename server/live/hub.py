"""The process's hub: reads committed events in order and hands each open stream its fragment."""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from server.broker import Broker, Resync
from server.live.batch import preload
from server.live.connection import LiveConnection, Outgoing
from server.live.fragments import EventRenderer, reset
from server.live.session_check import CHECK_SECONDS, alive_sessions
from server.live.sse import PING_SECONDS
from server.models import StreamEvent
from server.streams import (
    STAFF_WIDE_ROLES,
    events_after,
    latest_event_id,
    number_pending,
    read_note,
    replay_for,
)
from server.views.rendering import environment

log = logging.getLogger("colloque.live")

# The broker rings on every commit; this poll is the safety net for a bell that never rang
# (a process that died between commit and publish, a publish that timed out).
POLL_SECONDS = 2.0
_PING_TICK_SECONDS = 1.0
_BATCH = 500

#: The hubs running in this process, for the server to end their streams when it stops.
_RUNNING: set[Hub] = set()


def close_every_stream(reason: str) -> None:
    """Server shutdown: streams never end on their own, so the ASGI server would wait forever;
    each gets its reconnect hint (1012, or `retry:`) instead."""
    for hub in list(_RUNNING):
        hub.close_all(reason)


class Hub:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.last_id = 0
        self._by_user: dict[int, set[LiveConnection]] = defaultdict(set)
        self._staff_by_practice: dict[int, set[LiveConnection]] = defaultdict(set)
        self._by_session: dict[int, set[LiveConnection]] = defaultdict(set)
        self._wake = anyio.Event()
        #: Events announced with a signed copy of their row, by id, not delivered yet.
        self._announced: dict[int, tuple[StreamEvent, frozenset[int]]] = {}
        #: Set when announcements may have been lost: the next drain reads the log.
        self._read_log = True

    @property
    def connections(self) -> int:
        return sum(len(c) for c in self._by_session.values())

    async def run(self) -> None:
        """Follow the log until cancelled: woken by the broker, or by the poll at the latest."""
        self.last_id = await latest_event_id()
        _RUNNING.add(self)
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(self._listen)
                tasks.start_soon(self._keep_alive)
                while True:
                    with anyio.move_on_after(POLL_SECONDS) as poll:
                        await self._wake.wait()
                    self._wake = anyio.Event()
                    if poll.cancelled_caught:
                        self._read_log = True
                        await number_pending()
                    try:
                        await self._drain()
                    except Exception:
                        # The database may be briefly unreachable; the next wake or poll retries
                        # from the same id, so nothing is skipped.
                        log.exception("live fan-out failed; retrying")
        finally:
            _RUNNING.discard(self)

    async def _keep_alive(self) -> None:
        """Pings for the streams that need them, and the periodic session re-check: one timer
        for the whole process instead of one per connection.

        A stream is pinged once it has been silent for PING_SECONDS, not all of them at the
        same tick: thousands of pings written at once stalled the event loop for tens of
        milliseconds, delaying every live delivery behind them. Streams that receive events
        need no ping at all.
        """
        checked_at = anyio.current_time()
        while True:
            await anyio.sleep(_PING_TICK_SECONDS)
            silent_since = time.monotonic() - PING_SECONDS
            for members in list(self._by_session.values()):
                for connection in members:
                    if connection.heartbeat and connection.written_at <= silent_since:
                        connection.ping()
            if anyio.current_time() - checked_at >= CHECK_SECONDS:
                checked_at = anyio.current_time()
                await self._close_ended_sessions()

    async def _listen(self) -> None:
        async for item in self.broker.listen():
            if isinstance(item, Resync):
                # Announcements may have been lost, session ends included: re-check both.
                self._read_log = True
                self._wake.set()
                await self._close_ended_sessions()
                continue
            try:
                note, announced = read_note(item)
                event_id = int(note["event"]) if "event" in note else None
            except (ValueError, TypeError, KeyError):
                continue
            if event_id is not None:
                if event_id > self.last_id:
                    if announced is None:
                        self._read_log = True
                    else:
                        self._announced[event_id] = announced
                    self._wake.set()
            elif "session_ended" in note:
                self.close_session(int(note["session_ended"]))
            elif "typing" in note:
                self._typing(note["typing"])

    async def _drain(self) -> None:
        """Deliver what was committed since `last_id`, in order: from the announcements while
        they follow on from it without a gap, from the log otherwise."""
        while True:
            for stale in [i for i in self._announced if i <= self.last_id]:
                del self._announced[stale]
            batch = []
            while (
                following := self._announced.pop(self.last_id + len(batch) + 1, None)
            ) is not None:
                batch.append(following)
            if batch:
                await self._dispatch(batch)
                continue
            if not (self._read_log or self._announced):
                return
            # A gap (an announcement lost or still on its way, a rolled-back id), a bell
            # without a copy, a resync or the poll: the log is the record.
            self._read_log = False
            batch = await events_after(self.last_id, _BATCH)
            await self._dispatch(batch)
            if len(batch) < _BATCH:
                # What is still announced was committed after this read: its bell has woken
                # the hub again already.
                return
            self._read_log = True

    def _targets(self, event: StreamEvent, recipients: frozenset[int]) -> set[LiveConnection]:
        targets: set[LiveConnection] = set()
        for user_id in recipients:
            targets.update(self._by_user.get(user_id, ()))
        if event.to_practice_staff and event.practice_id is not None:
            targets.update(self._staff_by_practice.get(event.practice_id, ()))
        return targets

    async def _dispatch(self, batch: list[tuple[StreamEvent, frozenset[int]]]) -> None:
        """Renders each event once per user and locale, then queues it to their connections."""
        wanted = [e for e, recipients in batch if self._targets(e, recipients)]
        preloaded = await preload(wanted) if wanted else None
        for event, recipients in batch:
            # Targets again, now: a stream may have opened or closed during the preload.
            targets = self._targets(event, recipients)
            if targets:
                renderer = EventRenderer(event, preloaded)
                rendered: dict[tuple[int, str], Outgoing] = {}
                for connection in targets:
                    key = (connection.user.id, connection.locale)
                    item = rendered.get(key)
                    if item is None:
                        html = await renderer.for_connection(connection)
                        item = rendered[key] = Outgoing(event.id, html)
                    connection.offer(item)
            self.last_id = event.id

    def _typing(self, typing: dict[str, object]) -> None:
        thread_id = int(str(typing["thread_id"]))
        targets: set[LiveConnection] = set()
        for user_id in typing.get("user_ids", []):  # type: ignore[union-attr]
            targets.update(self._by_user.get(int(user_id), ()))
        targets.update(self._staff_by_practice.get(int(str(typing["practice_id"])), ()))
        rendered: dict[str, Outgoing] = {}
        for connection in targets:
            if connection.user.role == "patient":
                continue
            item = rendered.get(connection.locale)
            if item is None:
                html = (
                    environment(connection.locale)
                    .get_template("partials/typing.html")
                    .render(thread_id=thread_id, name=typing["name"])
                )
                item = rendered[connection.locale] = Outgoing(None, html)
            connection.offer(item)

    @asynccontextmanager
    async def connected(self, connection: LiveConnection, after: int) -> AsyncIterator[None]:
        """Register `connection`, replay what it missed after `after`, then keep it live."""
        connection.last_id = after
        self._register(connection)
        try:
            events = await replay_for(connection.user, after)
            if events is None:
                latest = max(await latest_event_id(), after)
                connection.replayed([Outgoing(latest, reset(latest))])
            else:
                preloaded = await preload(events)
                items = []
                for event in events:
                    renderer = EventRenderer(event, preloaded)
                    items.append(Outgoing(event.id, await renderer.for_connection(connection)))
                connection.replayed(items)
            yield
        finally:
            self._unregister(connection)

    def _register(self, connection: LiveConnection) -> None:
        peers = self._by_user.get(connection.user.id)
        if peers:
            # One user object per user, not per connection (10,000 tabs of one secretariat).
            connection.user = next(iter(peers)).user
        user = connection.user
        self._by_user[user.id].add(connection)
        self._by_session[connection.session_id].add(connection)
        if user.role in STAFF_WIDE_ROLES and user.practice_id is not None:
            self._staff_by_practice[user.practice_id].add(connection)

    def _unregister(self, connection: LiveConnection) -> None:
        user = connection.user
        for index, key in (
            (self._by_user, user.id),
            (self._by_session, connection.session_id),
            (self._staff_by_practice, user.practice_id),
        ):
            members = index.get(key) if key is not None else None
            if members is not None:
                members.discard(connection)
                if not members:
                    del index[key]

    def close_session(self, session_id: int) -> None:
        """Logout: that session's streams on this process end now."""
        for connection in list(self._by_session.get(session_id, ())):
            connection.close("logout")

    async def _close_ended_sessions(self) -> None:
        sessions = list(self._by_session)
        if not sessions:
            return
        try:
            alive = await alive_sessions(sessions)
        except Exception:
            log.exception("could not re-check sessions; the periodic check will")
            return
        for session_id in set(sessions) - alive:
            self.close_session(session_id)

    def close_all(self, reason: str) -> None:
        for members in list(self._by_session.values()):
            for connection in list(members):
                connection.close(reason)
