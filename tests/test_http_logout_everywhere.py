"""Logging out everywhere, and what logging out leaves in the browser."""

from __future__ import annotations

import json
from dataclasses import dataclass

import httpx
import pytest
from core_support import ALICE, BOB, HOME, SUBJECT_RENEWAL, ClientFactory, login, thread_by_subject

from server import streams
from server.models import Session, User

pytestmark = pytest.mark.anyio


class _RecordingBroker:
    """Keeps what is published, as every process's hub would hear it."""

    def __init__(self) -> None:
        self.notes: list[dict[str, object]] = []

    async def publish(self, payload: bytes) -> None:
        self.notes.append(json.loads(payload))


@pytest.fixture
def broker(monkeypatch: pytest.MonkeyPatch) -> _RecordingBroker:
    recording = _RecordingBroker()
    monkeypatch.setattr(streams, "_broker", recording)
    return recording


@dataclass
class AliceTwice:
    """Alice on her computer (with its CSRF token) and on her phone."""

    computer: httpx.AsyncClient
    csrf: str
    phone: httpx.AsyncClient


@pytest.fixture
async def alice(new_client: ClientFactory) -> AliceTwice:
    computer, phone = await new_client(), await new_client()
    csrf = await login(computer, ALICE)
    await login(phone, ALICE)
    return AliceTwice(computer, csrf, phone)


async def test_every_session_ends_and_their_pages_go_to_login(
    alice: AliceTwice, new_client: ClientFactory, broker: _RecordingBroker
) -> None:
    computer, phone = alice.computer, alice.phone
    bob = await new_client()
    await login(bob, BOB)
    alice_id = (await User.get(email=ALICE)).id
    session_ids = set(await Session.filter(user_id=alice_id).values_list("id", flat=True))
    assert len(session_ids) == 2

    answer = await computer.post(
        "/account/logout-everywhere",
        data={"csrf_token": alice.csrf},
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    assert answer.headers["clear-site-data"] == '"cache", "storage"'

    thread = await thread_by_subject(SUBJECT_RENEWAL)
    for device in (computer, phone):
        for path in ("/", f"/threads/{thread.id}"):
            page = await device.get(path)
            assert page.status_code == 303 and page.headers["location"] == "/login", path
        fragment = await device.get(f"/threads/{thread.id}", headers={"HX-Request": "true"})
        assert fragment.headers.get("hx-redirect") == "/login"
        assert thread.subject not in fragment.text
    assert not await Session.filter(user_id=alice_id).exists()
    # Each session's streams are told to close, on every process.
    assert {note["session_ended"] for note in broker.notes} == session_ids
    # Someone else's session is untouched.
    assert (await bob.get(HOME[BOB])).status_code == 200


async def test_it_needs_the_csrf_token(alice: AliceTwice) -> None:
    computer, phone = alice.computer, alice.phone
    answer = await computer.post("/account/logout-everywhere", data={})
    assert answer.status_code == 403
    assert (await phone.get("/")).status_code == 200


async def test_it_needs_a_session(client: httpx.AsyncClient) -> None:
    page = await client.get("/login")
    token = page.text.split('name="csrf-token" content="')[1].split('"')[0]
    answer = await client.post("/account/logout-everywhere", data={"csrf_token": token})
    assert answer.status_code == 401


async def test_logout_clears_the_browsers_caches_and_storage_but_not_other_cookies(
    alice: AliceTwice,
) -> None:
    computer = alice.computer
    answer = await computer.post(
        "/logout",
        data={"csrf_token": alice.csrf},
    )
    assert answer.status_code == 303
    assert answer.headers["clear-site-data"] == '"cache", "storage"'
    deleted = [h for h in answer.headers.get_list("set-cookie") if "colloque_session=" in h]
    assert deleted and "max-age=0" in deleted[0].lower()


async def test_pages_with_health_data_are_never_stored(
    alice: AliceTwice,
) -> None:
    computer = alice.computer
    thread = await thread_by_subject(SUBJECT_RENEWAL)
    for path, headers in (
        ("/", {}),
        (f"/threads/{thread.id}", {}),
        (f"/threads/{thread.id}", {"HX-Request": "true"}),
        ("/account", {}),
        ("/threads/999999", {"Accept": "text/html"}),  # an error page
    ):
        answer = await computer.get(path, headers=headers)
        assert answer.headers["cache-control"] == "no-store", path
