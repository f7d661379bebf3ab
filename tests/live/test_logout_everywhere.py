"""Logging out everywhere closes the live streams of every session of that user, at once."""

from __future__ import annotations

import httpx
import pytest

from .conftest import Login
from .support import ALICE, ALICE_MARTIN_SUBJECT, MARTIN, Cluster, token, wait_until

pytestmark = pytest.mark.anyio

LOGOUT_SECONDS = 2.0


async def test_logout_everywhere_closes_every_stream_of_that_user(
    cluster: Cluster, people: Login
) -> None:
    base = cluster.base_url
    alice_computer = await people(base, ALICE)
    alice_phone = await people(base, ALICE)
    martin = await people(base, MARTIN)
    thread = await martin.thread_id(ALICE_MARTIN_SUBJECT)
    computer_stream = await alice_computer.sse()
    phone_stream = await alice_phone.sse()
    martin_stream = await martin.ws()
    phone_cookie = alice_phone.cookie_header

    answer = await alice_computer.http.post(
        "/account/logout-everywhere", data={"csrf_token": alice_computer.csrf}
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    await wait_until(
        lambda: computer_stream.ended and phone_stream.ended,
        within=LOGOUT_SECONDS,
        what="both of Alice's streams to close",
    )

    # The phone's next request goes to the login page, and it cannot reopen a stream.
    page = await alice_phone.http.get("/")
    assert page.status_code == 303 and page.headers["location"] == "/login"
    async with httpx.AsyncClient(base_url=base, timeout=5) as replay:
        reopened = await replay.get("/events", headers={"Cookie": phone_cookie})
        assert reopened.status_code == 401

    # Someone else's stream goes on.
    after = token()
    await martin.say(thread, f"{after} Toujours là")
    await wait_until(lambda: bool(martin_stream.having(after)), what="Martin's stream")
    assert not martin_stream.ended
    assert not computer_stream.having(after) and not phone_stream.having(after)
