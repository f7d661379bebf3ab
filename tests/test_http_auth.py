"""Logging in and out over HTTP: redirects, error pages, session cookies and their end."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from core_support import (
    ACCOUNTS,
    ALICE,
    HOME,
    MARTIN,
    PASSWORD,
    SUBJECT_RENEWAL,
    ClientFactory,
    anonymous_token,
    csrf_from,
    login,
    thread_by_subject,
)

from server.models import Message, Session, User

pytestmark = pytest.mark.anyio

COOKIE = "colloque_session"


def _set_cookie_header(response: httpx.Response, name: str) -> str:
    headers = [h for h in response.headers.get_list("set-cookie") if h.startswith(f"{name}=")]
    assert len(headers) == 1, response.headers.get_list("set-cookie")
    return headers[0]


def _plant(client: httpx.AsyncClient, value: str) -> None:
    """Put a session cookie in the jar exactly where the server's own would be."""
    client.cookies.set(COOKIE, value, domain="testserver.local", path="/")


async def _post_login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    token = await anonymous_token(client)
    return await client.post(
        "/login", data={"email": email, "password": password, "csrf_token": token}
    )


@pytest.mark.parametrize("email", ACCOUNTS)
async def test_login_sends_each_role_home(email: str, client: httpx.AsyncClient) -> None:
    answer = await _post_login(client, email, PASSWORD)
    assert answer.status_code == 303
    assert answer.headers["location"] == HOME[email]
    landing = await client.get(HOME[email])
    assert landing.status_code == 200
    assert (await User.get(email=email)).display_name in landing.text


async def test_role_homes_are_as_the_contract_says() -> None:
    # Written out once more so that a wrong HOME table cannot hide a wrong redirect.
    assert HOME[ALICE] == "/"
    assert HOME[MARTIN] == "/inbox"
    assert HOME["secretariat@demo.colloque.test"] == "/queue"


async def test_email_is_not_case_sensitive(client: httpx.AsyncClient) -> None:
    answer = await _post_login(client, "  Alice@Demo.Colloque.TEST ", PASSWORD)
    assert answer.status_code == 303


async def test_bad_password_and_unknown_email_get_the_same_answer(
    client: httpx.AsyncClient,
) -> None:
    wrong_password = await _post_login(client, ALICE, "not-the-password")
    unknown_email = await _post_login(client, "nobody@demo.colloque.test", PASSWORD)
    assert wrong_password.status_code == unknown_email.status_code == 401
    # Same page, apart from the email typed back into the form.
    assert wrong_password.text.replace(ALICE, "EMAIL") == unknown_email.text.replace(
        "nobody@demo.colloque.test", "EMAIL"
    )
    assert 'role="alert"' in wrong_password.text
    assert 'name="password"' in wrong_password.text  # the form again
    for answer in (wrong_password, unknown_email):
        assert not any(h.startswith(f"{COOKIE}=") for h in answer.headers.get_list("set-cookie"))
    assert await Session.all().count() == 0


async def test_inactive_account_cannot_log_in(client: httpx.AsyncClient) -> None:
    await User.filter(email=ALICE).update(is_active=False)
    answer = await _post_login(client, ALICE, PASSWORD)
    assert answer.status_code == 401


@pytest.mark.parametrize(
    ("email", "password"),
    [("", PASSWORD), (ALICE, ""), ("", "")],
)
async def test_missing_fields_show_the_form_again(
    email: str, password: str, client: httpx.AsyncClient
) -> None:
    answer = await _post_login(client, email, password)
    assert answer.status_code in (400, 401)
    assert 'name="password"' in answer.text
    assert await Session.all().count() == 0


async def test_overlong_credentials_are_refused(client: httpx.AsyncClient) -> None:
    assert (await _post_login(client, "a" * 300 + "@x.test", PASSWORD)).status_code == 401
    assert (await _post_login(client, ALICE, "p" * 5000)).status_code == 401


async def test_session_cookie_is_httponly_and_samesite_lax(client: httpx.AsyncClient) -> None:
    answer = await _post_login(client, ALICE, PASSWORD)
    header = _set_cookie_header(answer, COOKIE).lower()
    assert "httponly" in header
    assert "samesite=lax" in header
    assert "path=/" in header


async def test_visitor_cookie_is_httponly_and_samesite_lax(client: httpx.AsyncClient) -> None:
    page = await client.get("/login")
    header = _set_cookie_header(page, "colloque_visitor").lower()
    assert "httponly" in header
    assert "samesite=lax" in header


async def test_every_login_gets_a_new_session_cookie(new_client: ClientFactory) -> None:
    first, second = await new_client(), await new_client()
    await login(first, ALICE)
    await login(second, ALICE)
    assert first.cookies[COOKIE] != second.cookies[COOKIE]


async def test_logging_in_again_replaces_and_ends_the_old_session(
    new_client: ClientFactory,
) -> None:
    browser = await new_client()
    token = await login(browser, ALICE)
    old = browser.cookies[COOKIE]
    again = await browser.post(
        "/login", data={"email": ALICE, "password": PASSWORD, "csrf_token": token}
    )
    assert again.status_code == 303
    assert browser.cookies[COOKIE] != old
    # The old key is dead: whoever copied it gets nothing.
    thief = await new_client()
    _plant(thief, old)
    assert (await thief.get("/")).headers["location"] == "/login"


async def test_a_cookie_planted_before_login_is_not_kept(new_client: ClientFactory) -> None:
    browser = await new_client()
    _plant(browser, "planted-by-attacker.0000")
    await login(browser, ALICE)
    assert browser.cookies[COOKIE] != "planted-by-attacker.0000"


async def test_logout_ends_the_session_on_the_server(new_client: ClientFactory) -> None:
    browser = await new_client()
    token = await login(browser, ALICE)
    cookie = browser.cookies[COOKIE]
    thread = await thread_by_subject(SUBJECT_RENEWAL)
    assert await Session.all().count() == 1

    answer = await browser.post("/logout", data={"csrf_token": token})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login"
    assert await Session.all().count() == 0

    # Replaying the old cookie, as someone who copied it would, opens nothing.
    replay = await new_client()
    _plant(replay, cookie)
    home = await replay.get("/")
    assert (home.status_code, home.headers["location"]) == (303, "/login")
    page = await replay.get(f"/threads/{thread.id}")
    assert page.status_code == 303
    assert SUBJECT_RENEWAL not in page.text
    post = await replay.post(
        f"/threads/{thread.id}/messages", data={"body": "Encore là ?", "csrf_token": token}
    )
    assert post.status_code in (401, 403)
    assert "Encore là ?" not in await Message.all().values_list("body", flat=True)


async def test_logout_clears_the_cookie_in_the_browser(client: httpx.AsyncClient) -> None:
    token = await login(client, ALICE)
    answer = await client.post("/logout", data={"csrf_token": token})
    header = _set_cookie_header(answer, COOKIE).lower()
    assert re.search(r"max-age=0|expires=thu, 01 jan 1970", header)
    assert COOKIE not in client.cookies


async def test_a_tampered_cookie_is_not_a_session(client: httpx.AsyncClient) -> None:
    await login(client, ALICE)
    key, mac = client.cookies[COOKIE].rsplit(".", 1)
    _plant(client, f"{key}.{'0' * len(mac)}")
    assert client.cookies[COOKIE].endswith("0" * len(mac))  # replaced, not added
    assert (await client.get("/")).headers["location"] == "/login"


async def test_a_disabled_account_loses_its_open_sessions(client: httpx.AsyncClient) -> None:
    await login(client, ALICE)
    await User.filter(email=ALICE).update(is_active=False)
    assert (await client.get("/")).headers["location"] == "/login"


async def test_an_idle_session_expires(client: httpx.AsyncClient) -> None:
    await login(client, ALICE)
    await Session.all().update(last_seen_at=datetime.now(UTC) - timedelta(minutes=31))
    assert (await client.get("/")).headers["location"] == "/login"


async def test_a_session_expires_after_its_absolute_lifetime(client: httpx.AsyncClient) -> None:
    await login(client, ALICE)
    await Session.all().update(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    assert (await client.get("/")).headers["location"] == "/login"


async def test_a_logged_in_visitor_is_sent_home_from_the_login_page(
    client: httpx.AsyncClient,
) -> None:
    await login(client, MARTIN)
    page = await client.get("/login")
    assert (page.status_code, page.headers["location"]) == (303, "/inbox")


async def test_htmx_requests_without_a_session_are_sent_to_login(
    client: httpx.AsyncClient,
) -> None:
    # An htmx request cannot follow a 303 to a full page: it gets 401, or an HX-Redirect.
    thread = await thread_by_subject(SUBJECT_RENEWAL)
    for path in ("/", f"/threads/{thread.id}", "/inbox"):
        answer = await client.get(path, headers={"HX-Request": "true"})
        assert answer.status_code in (401, 204), path
        if answer.status_code == 204:
            assert answer.headers["HX-Redirect"] == "/login"
        assert SUBJECT_RENEWAL not in answer.text


async def test_the_login_token_differs_from_the_session_token(client: httpx.AsyncClient) -> None:
    before = await anonymous_token(client)
    after = await login(client, ALICE)
    assert before != after
    assert csrf_from((await client.get("/")).text) == after


async def test_an_active_session_stays_alive(client: httpx.AsyncClient) -> None:
    await login(client, ALICE)
    twenty_minutes_ago = datetime.now(UTC) - timedelta(minutes=20)
    await Session.all().update(last_seen_at=twenty_minutes_ago)
    assert (await client.get("/")).status_code == 200
    # The visit counted as activity: another 20 minutes later the session is still alive.
    session = await Session.get()
    assert session.last_seen_at > twenty_minutes_ago + timedelta(minutes=19)
