"""Turning an event into the HTML fragment each viewer receives.

A fragment is a set of out-of-band swaps. Parts shared by many viewers (the message itself,
the queue row) are rendered once per event and variant; parts about one user's own state
(their unread count) once per user.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from server.actions.visibility import may_read_content
from server.live.batch import Preloaded, preload
from server.live.connection import CSRF_PLACEHOLDER, LiveConnection
from server.models import Message, Role, StreamEvent, Thread, ThreadStatus, User
from server.queries import ThreadRow, practice_team
from server.rules.access import is_staff
from server.streams import STAFF_WIDE_ROLES
from server.views.rendering import environment


def cursor(event_id: int) -> str:
    """Every fragment ends by moving the page's cursor, which is where it resumes after a
    reconnect (and where a frame holding several events' fragments can be cut)."""
    return f'<span id="live-cursor" hx-swap-oob="true" data-after="{event_id}" hidden></span>'


def reset(event_id: int) -> str:
    """Too much was missed to replay: the page reloads its parts from the database."""
    return '<span id="live-reset" hx-swap-oob="true" data-reload hidden></span>' + cursor(event_id)


def in_queue(thread: Thread) -> bool:
    return thread.status == ThreadStatus.PENDING or (
        thread.status == ThreadStatus.OPEN and thread.assignee_id is None
    )


class EventRenderer:
    """Renders one event for every viewer that receives it, reusing shared parts.

    A fragment may depend on the viewer's user and locale only (the CSRF token goes in as
    CSRF_PLACEHOLDER): the hub renders once per user and locale, not once per connection.
    """

    def __init__(self, event: StreamEvent, preloaded: Preloaded | None = None) -> None:
        self.event = event
        #: The hub's batch, read in a few queries; without it, this event's rows are read alone.
        self._preloaded = preloaded
        self._loaded = False
        self.thread: Thread | None = None
        self.message: Message | None = None
        self._parts: dict[tuple[object, ...], str] = {}

    async def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        if self._preloaded is None:
            self._preloaded = await preload([self.event])
        if self.event.thread_id is not None:
            self.thread = self._preloaded.threads.get(self.event.thread_id)
        message_id = self.event.data.get("message_id")
        if message_id is not None:
            self.message = self._preloaded.messages.get(int(message_id))

    async def _part(self, key: tuple[object, ...], make: Callable[[], Awaitable[str]]) -> str:
        if key not in self._parts:
            self._parts[key] = await make()
        return self._parts[key]

    def _render(self, locale: str, template: str, **context: object) -> str:
        return environment(locale).get_template(template).render(**context)

    async def for_connection(self, connection: LiveConnection) -> str:
        await self._load()
        thread = self.thread
        if thread is None:
            return cursor(self.event.id)
        user, locale = connection.user, connection.locale
        named = user.id in (thread.patient_id, thread.practitioner_id, thread.assignee_id)
        kind = self.event.kind
        parts: list[str] = []
        if kind == "message.created" and self.message is not None:
            visible = may_read_content(user, thread)
            parts.append(
                await self._part(
                    ("message", locale, visible), lambda: self._message(locale, visible)
                )
            )
        if kind in ("thread.status", "thread.assigned"):
            parts.append(
                await self._part(
                    ("header", locale, is_staff(Role(user.role))), lambda: self._header(connection)
                )
            )
            parts.append(
                await self._part(
                    ("controls", locale, user.role, may_read_content(user, thread)),
                    lambda: self._controls(connection),
                )
            )
        if kind == "message.flagged":
            parts.append(await self._flagged(connection))
        if named:
            parts.append(await self._part(("row", user.id), lambda: self._row(connection)))
        if user.role in STAFF_WIDE_ROLES and kind != "message.created":
            parts.append(await self._part(("queue", locale), lambda: self._queue_row(connection)))
        parts.append(cursor(self.event.id))
        return "".join(parts)

    async def _flagged(self, connection: LiveConnection) -> str:
        """The patient who wrote is told to call 15 or 112 now; staff see the alert first."""
        assert self.thread is not None
        user, locale = connection.user, connection.locale
        if user.id == self.thread.patient_id:
            return await self._part(("guidance", locale), lambda: self._guidance(locale))
        if not is_staff(Role(user.role)):
            return ""
        header = await self._part(("header", locale, True), lambda: self._header(connection))
        alert = await self._part(("alert", locale), lambda: self._alert(locale))
        return alert + header

    async def _guidance(self, locale: str) -> str:
        html = self._render(
            locale,
            "partials/emergency_guidance.html",
            suicidal=bool(self.event.data.get("suicidal")),
            sent=True,
            guidance_key=self.event.id,
        )
        return f'<div id="emergency-guidance" hx-swap-oob="true">{html}</div>'

    async def _alert(self, locale: str) -> str:
        html = self._render(locale, "partials/emergency_alert.html", thread=self.thread)
        return f'<div hx-swap-oob="afterbegin:#emergency-alerts">{html}</div>'

    async def _message(self, locale: str, visible: bool) -> str:
        assert self.thread is not None and self.message is not None
        return self._render(
            locale,
            "partials/message_appended.html",
            message=self.message,
            thread=self.thread,
            content_visible=visible,
        )

    @property
    def _batch(self) -> Preloaded:
        assert self._preloaded is not None, "read once _load has run"
        return self._preloaded

    async def _team_members(self) -> list[User]:
        assert self.thread is not None
        practice_id = self.thread.practice_id
        teams = self._batch.teams
        if practice_id not in teams:
            teams[practice_id] = await practice_team(practice_id)
        return teams[practice_id]

    async def _header(self, connection: LiveConnection) -> str:
        assert self.thread is not None
        return self._render(
            connection.locale,
            "partials/thread_header.html",
            thread=self.thread,
            is_staff=is_staff(Role(connection.user.role)),
            oob=True,
        )

    async def _controls(self, connection: LiveConnection) -> str:
        assert self.thread is not None
        staff = is_staff(Role(connection.user.role))
        return self._render(
            connection.locale,
            "partials/thread_controls.html",
            thread=self.thread,
            user=connection.user,
            is_staff=staff,
            content_visible=may_read_content(connection.user, self.thread),
            team=await self._team_members() if staff else [],
            csrf_token=CSRF_PLACEHOLDER,
            oob=True,
        )

    async def _row(self, connection: LiveConnection) -> str:
        """The user's own list row, moved to the top: delete, then insert at the start."""
        thread = self.thread
        assert thread is not None
        # Only the thread's named people get a row: the batch read their marks.
        read = self._batch.read_marks.get((connection.user.id, thread.id), 0)
        unread = max(0, thread.last_seq - read)
        row = ThreadRow(thread, unread, datetime.now(UTC) - thread.created_at)
        template = (
            "partials/patient_thread_row.html"
            if connection.user.role == Role.PATIENT
            else "partials/inbox_row.html"
        )
        html = self._render(connection.locale, template, row=row, status_filter="active")
        return (
            f'<li id="thread-row-{thread.id}" hx-swap-oob="delete"></li>'
            f'<div hx-swap-oob="afterbegin:#thread-list">{html}</div>'
        )

    async def _queue_row(self, connection: LiveConnection) -> str:
        thread = self.thread
        assert thread is not None
        removal = f'<li id="queue-row-{thread.id}" hx-swap-oob="delete"></li>'
        if not in_queue(thread):
            return removal
        row = ThreadRow(thread, 0, datetime.now(UTC) - thread.created_at)
        html = self._render(
            connection.locale,
            "partials/queue_row.html",
            row=row,
            team=await self._team_members(),
            csrf_token=CSRF_PLACEHOLDER,
        )
        return removal + f'<div hx-swap-oob="beforeend:#queue-list">{html}</div>'
