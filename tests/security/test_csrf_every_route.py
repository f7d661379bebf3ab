"""Every state-changing route, read from the application itself, refuses a request without the
caller's CSRF token (403) and changes nothing, whoever the caller is."""

from __future__ import annotations

import re

import httpx
import pytest
from core_support import ALICE, MARTIN, SECRETARIAT, SUBJECT_RENEWAL, login, snapshot
from core_support import thread_by_subject as find_thread
from starlette.routing import Route

from server.app import create_app

pytestmark = pytest.mark.anyio

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
ROUTES = sorted(
    (method, route.path)
    for route in create_app().routes
    if isinstance(route, Route)
    for method in (route.methods or ())
    if method in UNSAFE
)
# Plausible form content, so that a route would act if the token were not checked first.
FORM = {
    "body": "Message sans jeton",
    "reason": "Sans jeton",
    "email": ALICE,
    "password": "colloque-demo",
    "subject": "Sans jeton",
    "category": "question",
    "locale": "en",
    "assignee_id": "self",
}


@pytest.mark.parametrize("caller", [None, ALICE, MARTIN, SECRETARIAT])
@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_no_token_no_change(
    client: httpx.AsyncClient, caller: str | None, method: str, path: str
) -> None:
    if caller is not None:
        await login(client, caller)
    client.headers.pop("X-CSRF-Token", None)
    thread = await find_thread(SUBJECT_RENEWAL)
    target = re.sub(r"\{thread_id(:[a-z]+)?\}", str(thread.id), path)
    target = re.sub(r"\{[a-z_]+(:[a-z]+)?\}", "x" * 43, target)
    before = await snapshot()
    answer = await client.request(method, target, data=FORM, headers={"X-CSRF-Token": "forged"})
    assert answer.status_code == 403, (target, answer.status_code)
    assert await snapshot() == before
