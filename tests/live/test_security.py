"""Who may open a live stream, and what it may carry: what an attacker or another user sees."""

from __future__ import annotations

import asyncio
import hashlib
import json

import httpx
import pytest
import redis.asyncio as redis
import websockets

from .conftest import Login
from .support import (
    ALICE,
    ALICE_MARTIN_SUBJECT,
    BERNARD,
    BOB,
    CHLOE,
    MARTIN,
    PETIT,
    Cluster,
    the_message,
    token,
    wait_until,
    ws_connect,
)

pytestmark = pytest.mark.anyio

LOGOUT_SECONDS = 2.0


async def _refused(base_url: str, **options: object) -> int:
    """The handshake's HTTP status; fails if the WebSocket was accepted."""
    with pytest.raises(websockets.InvalidStatus) as refused:
        connection = await ws_connect(base_url, **options)  # type: ignore[arg-type]
        await connection.close()
    response = refused.value.response
    assert b"data-message-id" not in (response.body or b"")
    return int(response.status_code)


async def test_websocket_without_a_session_is_refused(cluster: Cluster) -> None:
    assert await _refused(cluster.base_url, cookie=None) == 403
    assert await _refused(cluster.base_url, cookie="colloque_session=forged.value") == 403


async def test_websocket_from_a_foreign_origin_is_refused(cluster: Cluster, people: Login) -> None:
    martin = await people(cluster.base_url, MARTIN)
    port = int(cluster.base_url.rsplit(":", 1)[1])
    for origin in (
        "http://evil.test",
        f"http://127.0.0.1:{port + 1}",
        f"http://127.0.0.1:{port}.evil.test",
        "null",
    ):
        assert await _refused(cluster.base_url, cookie=martin.cookie_header, origin=origin) == 403
    assert (
        await _refused(cluster.base_url, cookie=martin.cookie_header, send_origin=False) == 403
    ), "a WebSocket without Origin is refused too"
    # The same session from the service's own origin is accepted: the refusals were the Origin's.
    accepted = await martin.ws()
    assert not accepted.ended


async def test_patients_get_no_websocket(cluster: Cluster, people: Login) -> None:
    alice = await people(cluster.base_url, ALICE)
    assert await _refused(cluster.base_url, cookie=alice.cookie_header) == 403


async def test_event_stream_needs_a_session(cluster: Cluster) -> None:
    async with httpx.AsyncClient(base_url=cluster.base_url, timeout=5) as anonymous:
        answer = await anonymous.get("/events", headers={"Accept": "text/event-stream"})
        assert answer.status_code == 401
        assert "text/event-stream" not in answer.headers.get("content-type", "")
        anonymous.cookies.set("colloque_session", "forged.value")
        answer = await anonymous.get("/events", headers={"Accept": "text/event-stream"})
        assert answer.status_code == 401


async def test_events_reach_only_those_who_may_see_them(cluster: Cluster, people: Login) -> None:
    base = cluster.base_url
    alice = await people(base, ALICE)
    martin = await people(base, MARTIN)
    thread = await alice.thread_id(ALICE_MARTIN_SUBJECT)
    alice_sse = await alice.sse()
    martin_ws = await martin.ws()
    # Outsiders: another practice's patient and doctor, a patient of the same practice, and a
    # doctor of the same practice who is not on this thread.
    chloe_sse = await (await people(base, CHLOE)).sse()
    bob_sse = await (await people(base, BOB)).sse()
    petit_ws = await (await people(base, PETIT)).ws()
    bernard_ws = await (await people(base, BERNARD)).ws()

    question, answer = token(), token()
    await alice.say(thread, f"{question} Ma tension est à 13/8.")
    await martin.say(thread, f"{answer} Très bien, continuez ainsi.")
    # Outsiders try to write into the thread over their own WebSocket: ignored.
    intrusions = [token(), token()]
    for stream, intrusion in zip((petit_ws, bernard_ws), intrusions, strict=True):
        await stream.send_json(
            json.dumps({"type": "message", "thread_id": thread, "body": f"{intrusion} hello"})
        )
        await stream.send_json(json.dumps({"type": "typing", "thread_id": thread}))
    await wait_until(
        lambda: all(
            stream.having(word) for stream in (alice_sse, martin_ws) for word in (question, answer)
        ),
        what="the conversation on its own streams",
    )
    await asyncio.sleep(1.0)  # time for anything misrouted to arrive as well

    for stream in (chloe_sse, bob_sse):
        assert stream.updates == [], "a patient outside the thread receives nothing of it"
    for ws in (petit_ws, bernard_ws):
        assert ws.frames == [], "a doctor outside the thread receives nothing of it"
        assert not ws.ended
    everything = "".join(alice_sse.updates + martin_ws.frames)
    for intrusion in intrusions:
        assert intrusion not in everything, "an outsider's WebSocket frame reached the thread"
    page = await alice.http.get(f"/threads/{thread}")
    assert page.status_code == 200 and question in page.text
    assert not any(intrusion in page.text for intrusion in intrusions)


async def test_logout_closes_that_sessions_streams_only(cluster: Cluster, people: Login) -> None:
    base = cluster.base_url
    alice_here = await people(base, ALICE)
    alice_there = await people(base, ALICE)  # another device: another session
    martin_here = await people(base, MARTIN)
    martin_there = await people(base, MARTIN)
    thread = await alice_there.thread_id(ALICE_MARTIN_SUBJECT)
    leaving_sse = await alice_here.sse()
    staying_sse = await alice_there.sse()
    leaving_ws = await martin_here.ws()
    staying_ws = await martin_there.ws()
    old_alice_cookie = alice_here.cookie_header
    old_martin_cookie = martin_here.cookie_header

    assert (await alice_here.logout()).status_code == 303
    assert (await martin_here.logout()).status_code == 303
    await wait_until(
        lambda: leaving_sse.ended and leaving_ws.ended,
        within=LOGOUT_SECONDS,
        what="the logged-out session's streams to close",
    )
    assert leaving_ws.close_code not in (1012, 1013), "no invitation to reconnect after logout"

    # The other sessions of the same people keep streaming.
    after = token()
    await martin_there.say(thread, f"{after} Message après la déconnexion")
    await wait_until(
        lambda: bool(staying_sse.having(after) and staying_ws.having(after)),
        what="the other sessions to keep receiving",
    )
    assert not staying_sse.ended and not staying_ws.ended
    assert not leaving_sse.having(after) and not leaving_ws.having(after)

    # The ended session cannot open a stream again.
    async with httpx.AsyncClient(base_url=base, timeout=5) as replay:
        answer = await replay.get("/events", headers={"Cookie": old_alice_cookie})
        assert answer.status_code == 401
    assert await _refused(base, cookie=old_martin_cookie) == 403


async def test_a_resume_point_that_is_not_an_event_id_is_refused(
    cluster: Cluster, people: Login
) -> None:
    alice = await people(cluster.base_url, ALICE)
    martin = await people(cluster.base_url, MARTIN)
    for headers, path in (
        ({"Last-Event-ID": "1 OR 1=1"}, "/events"),
        ({"Last-Event-ID": "-5"}, "/events"),
        ({}, "/events?after=abc"),
        ({}, "/events?after=" + "9" * 40),
    ):
        answer = await alice.http.get(path, headers=headers)
        assert answer.status_code == 400, (headers, path, answer.status_code)
    with pytest.raises(websockets.InvalidStatus) as refused:
        await ws_connect(cluster.base_url, cookie=martin.cookie_header, after=-1)
    assert refused.value.response.status_code == 403


async def test_an_announcement_forged_in_redis_delivers_nothing(
    redis_cluster: Cluster, people: Login
) -> None:
    """Someone who can publish on Redis but does not hold SECRET_KEY names themselves as the
    recipient of a real message: hubs only trust signed copies of the log, so nothing leaks and
    live delivery goes on."""
    base = redis_cluster.base_url
    assert redis_cluster.redis is not None
    alice = await people(base, ALICE)
    martin = await people(base, MARTIN)
    thread = await alice.thread_id(ALICE_MARTIN_SUBJECT)
    alice_sse = await alice.sse()
    chloe_sse = await (await people(base, CHLOE)).sse()
    secret = token()
    await alice.say(thread, f"{secret} Mon traitement me fatigue.")
    await wait_until(lambda: bool(alice_sse.having(secret)), what="Alice's own message")
    message_id = the_message(alice_sse.updates, secret)
    last = int(alice_sse.last_id or 0)

    row = ["message.created", thread, None, False, {"message_id": message_id}, list(range(1, 60))]
    body = json.dumps({"event": last + 1, "row": row}).encode()
    publisher = redis.Redis.from_url(redis_cluster.redis.url)
    try:
        for mac in (b"", b"0" * 64, hashlib.sha256(body).hexdigest().encode()):
            await publisher.publish("colloque:events", body + b"\n" + mac)
        # Malformed notes are ignored too, without stopping the hub's listener.
        for junk in (b'{"event": "x"}', b'{"event": null}', b"[1, 2]", b"\xff\xfe", b"{"):
            await publisher.publish("colloque:events", junk)
    finally:
        await publisher.aclose()
    after = token()
    await martin.say(thread, f"{after} Parlons-en en consultation.")
    await wait_until(lambda: bool(alice_sse.having(after)), what="the next real message")
    await asyncio.sleep(0.5)

    assert chloe_sse.updates == [], "a forged announcement delivered a message to an outsider"
    assert len(alice_sse.having(secret)) == 1 and len(alice_sse.having(after)) == 1
