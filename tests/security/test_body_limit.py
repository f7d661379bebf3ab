"""Oversized requests are refused with 413 and a French reason, and store nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from core_support import ALICE, SUBJECT_RENEWAL, login, snapshot, thread_by_subject

from server.body_limit import MAX_BODY_BYTES

pytestmark = pytest.mark.anyio


async def _message_route() -> str:
    return f"/threads/{(await thread_by_subject(SUBJECT_RENEWAL)).id}/messages"


async def test_a_declared_oversized_form_is_refused_with_a_french_page(
    client: httpx.AsyncClient,
) -> None:
    token = await login(client, ALICE)
    before = await snapshot()
    answer = await client.post(
        await _message_route(),
        data={"body": "x" * (MAX_BODY_BYTES + 1), "csrf_token": token},
        headers={"Accept": "text/html"},
    )
    assert answer.status_code == 413
    assert "trop volumineuses" in answer.text
    assert await snapshot() == before


async def test_a_streamed_oversized_body_is_cut_off(client: httpx.AsyncClient) -> None:
    token = await login(client, ALICE)
    before = await snapshot()

    async def chunks() -> AsyncIterator[bytes]:
        yield f"csrf_token={token}&body=".encode()
        for _ in range(MAX_BODY_BYTES // 4096 + 2):
            yield b"y" * 4096

    answer = await client.post(
        await _message_route(),
        content=chunks(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 413
    assert "256 Kio" in answer.text
    assert await snapshot() == before


async def test_the_longest_allowed_message_still_goes_through(client: httpx.AsyncClient) -> None:
    token = await login(client, ALICE)
    answer = await client.post(
        await _message_route(), data={"body": "é" * 5000, "csrf_token": token}
    )
    assert answer.status_code == 303
