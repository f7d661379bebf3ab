"""What the browser is told to allow, keep and send: headers, cookies and the htmx set-up.

A stolen cookie, an injected script, a framed page or a shared family tablet must reveal nothing.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
from collections.abc import AsyncIterator

import httpx
import pytest
from core_support import ALICE, MARTIN, PASSWORD, SECRETARIAT, SUBJECT_RENEWAL, login
from core_support import thread_by_subject as find_thread
from starlette.applications import Starlette

from server.app import create_app
from server.settings import Settings

pytestmark = pytest.mark.anyio

PAGES = {
    ALICE: ["/", "/threads/new", "/account"],
    MARTIN: ["/inbox", "/settings", "/account"],
    SECRETARIAT: ["/queue", "/account"],
}


def _directives(policy: str) -> dict[str, list[str]]:
    parts = (part.split() for part in policy.split(";") if part.strip())
    return {words[0]: words[1:] for words in parts}


async def _pages(client: httpx.AsyncClient) -> AsyncIterator[tuple[str, httpx.Response]]:
    yield "/login", await client.get("/login")
    thread = await find_thread(SUBJECT_RENEWAL)
    for email, paths in PAGES.items():
        token = await login(client, email)
        for path in [*paths, f"/threads/{thread.id}"]:
            answer = await client.get(path)
            if answer.status_code == 200:
                yield path, answer
        await client.post("/logout", data={"csrf_token": token})
        client.cookies.clear()


async def test_every_page_has_a_strict_policy_and_no_inline_code(client: httpx.AsyncClient) -> None:
    seen = 0
    async for path, answer in _pages(client):
        seen += 1
        policy = _directives(answer.headers["content-security-policy"])
        assert policy["script-src"] == ["'self'"], path
        assert policy["object-src"] == ["'none'"], path
        assert policy["base-uri"] == ["'none'"], path
        assert policy["frame-ancestors"] == ["'none'"], path
        assert not any("unsafe" in value for values in policy.values() for value in values), path
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "no-referrer"
        html = answer.text
        # Every script is a file from this origin; no inline handlers or styles to allow.
        assert all('src="/static/' in tag for tag in re.findall(r"<script[^>]*>", html)), path
        assert not re.search(r"\son[a-z]+\s*=", html), path
        assert not re.search(r"\sstyle\s*=", html), path
    assert seen >= 8


async def test_htmx_runs_without_eval_same_origin_and_keeps_no_history(
    client: httpx.AsyncClient,
) -> None:
    await login(client, ALICE)
    page = await client.get("/")
    found = re.search(r"<meta name=\"htmx-config\" content='([^']+)'>", page.text)
    assert found is not None
    config = json.loads(found.group(1))
    assert config["allowEval"] is False
    assert config["allowScriptTags"] is False
    assert config["selfRequestsOnly"] is True
    assert config["historyCacheSize"] == 0
    assert "no-store" in page.headers["cache-control"]


@pytest.fixture
def production_app(db: Settings) -> Starlette:
    key = base64.b64encode(bytes(range(32))).decode()
    settings = dataclasses.replace(
        db,
        environment="production",
        secret_key="p" * 48,
        data_keys=(("k1", base64.b64decode(key)),),
    )
    return create_app(settings)


async def test_production_cookies_are_host_only_secure_and_pages_demand_https(
    production_app: Starlette,
) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=production_app), base_url="https://colloque.test"
    ) as client:
        page = await client.get("/login")
        assert page.headers["strict-transport-security"].startswith("max-age=31536000")
        token = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
        assert token is not None
        answer = await client.post(
            "/login", data={"email": ALICE, "password": PASSWORD, "csrf_token": token.group(1)}
        )
        assert answer.status_code == 303
        cookies = [value for name, value in answer.headers.multi_items() if name == "set-cookie"]
        session = [c for c in cookies if c.startswith("__Host-colloque_session=")]
        assert len(session) == 1, cookies
        attributes = {part.strip().lower() for part in session[0].split(";")[1:]}
        assert {"secure", "httponly", "samesite=lax", "path=/"} <= attributes
        assert not any(part.startswith("domain=") for part in attributes)
