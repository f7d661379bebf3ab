"""What SSE and WebSocket endpoints share: who is connecting, and from which event on."""

from __future__ import annotations

from starlette.requests import HTTPConnection

from server.actions import second_factor
from server.auth import csrf_token_for, current_session
from server.live.connection import LiveConnection
from server.streams import latest_event_id
from server.views.rendering import request_locale


class BadCursor(ValueError):
    """The client's resume point is not an event id."""


def _parse_id(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    text = value.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise BadCursor(value)
    return int(text)


async def resume_point(connection: HTTPConnection) -> int:
    """`Last-Event-ID` (a browser's own reconnect) wins over `?after=` (the page's cursor);
    with neither, the stream starts now."""
    header = _parse_id(connection.headers.get("last-event-id"))
    if header is not None:
        return header
    query = _parse_id(connection.query_params.get("after"))
    return query if query is not None else await latest_event_id()


async def open_connection(
    connection: HTTPConnection, *, heartbeat: bool = False
) -> LiveConnection | None:
    """The live connection for this caller, or None without a valid session."""
    session = await current_session(connection)
    if session is None or await second_factor.must_enrol(session.user):
        # A user who still has to set up their second factor sees nothing but enrolment.
        return None
    live = LiveConnection(
        user=session.user,
        session_id=session.session_id,
        locale=request_locale(connection),
        csrf_token=csrf_token_for(connection.app.state.settings.secret_key, session.key),
        heartbeat=heartbeat,
    )
    # The request's state lives as long as the stream: drop the session (and its user row) from
    # it, so that the hub can share one user object between that user's connections.
    del connection.state.session
    return live
