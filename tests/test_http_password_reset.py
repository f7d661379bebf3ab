"""Forgotten password over HTTP: asking for a link, the email, using the link once."""

from __future__ import annotations

import email
import email.policy
import hashlib
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from core_support import ALICE, BOB, HOME, PASSWORD, ClientFactory, anonymous_token, csrf_from
from core_support import login as log_in
from tortoise import connections

from server import log_redaction, outbox
from server.models import AuditEvent, LoginThrottle, PasswordReset, Session

pytestmark = pytest.mark.anyio

UNKNOWN = "nobody@demo.colloque.test"
NEW_PASSWORD = "Cheval-Agrafe-Pile-8841"
_LINK = re.compile(r"http://testserver/password/reset/([A-Za-z0-9_-]+)")


@pytest.fixture
def mailbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("COLLOQUE_OUTBOX_DIR", str(tmp_path / "outbox"))
    monkeypatch.delenv("COLLOQUE_PUBLIC_URL", raising=False)
    outbox.mail_settings.cache_clear()
    yield tmp_path / "outbox"
    outbox.mail_settings.cache_clear()


def _emails(mailbox: Path) -> list[email.message.EmailMessage]:
    files = sorted(mailbox.glob("*.eml")) if mailbox.exists() else []
    return [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
        for path in files
    ]


async def _forgot(client: httpx.AsyncClient, address: str) -> httpx.Response:
    token = await anonymous_token(client)
    return await client.post("/password/forgot", data={"email": address, "csrf_token": token})


async def _link_for(client: httpx.AsyncClient, mailbox: Path, address: str = ALICE) -> str:
    """Ask for a link and return the token it carries."""
    before = len(_emails(mailbox))
    assert (await _forgot(client, address)).status_code == 200
    sent = _emails(mailbox)
    assert len(sent) == before + 1
    match = _LINK.search(sent[-1].get_content())
    assert match is not None
    return match.group(1)


async def _reset(
    client: httpx.AsyncClient, token: str, password: str, confirmation: str | None = None
) -> httpx.Response:
    page = await client.get(f"/password/reset/{token}")
    csrf = csrf_from(page.text)  # error pages carry the token too
    return await client.post(
        f"/password/reset/{token}",
        data={
            "password": password,
            "password_confirmation": password if confirmation is None else confirmation,
            "csrf_token": csrf,
        },
    )


async def _login_status(client: httpx.AsyncClient, address: str, password: str) -> int:
    # Someone already logged in is sent home by GET /login: any page carries the token.
    token = csrf_from((await client.get("/login", follow_redirects=True)).text)
    answer = await client.post(
        "/login", data={"email": address, "password": password, "csrf_token": token}
    )
    return answer.status_code


async def test_the_login_page_links_to_the_forgotten_password_page(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/login")
    assert 'href="/password/forgot"' in page.text
    assert "Mot de passe oublié ?" in page.text
    form = await client.get("/password/forgot")
    assert form.status_code == 200
    assert 'name="email"' in form.text


async def test_known_and_unknown_emails_get_the_same_answer(
    new_client: ClientFactory, mailbox: Path
) -> None:
    known_client, unknown_client = await new_client(), await new_client()
    known = await _forgot(known_client, ALICE)
    unknown = await _forgot(unknown_client, UNKNOWN)
    assert known.status_code == unknown.status_code == 200
    strip = re.compile(r'(content|value)="[^"]*"')
    assert strip.sub("", known.text) == strip.sub("", unknown.text)
    assert "Si un compte existe" in known.text
    sent = _emails(mailbox)
    assert [message["To"] for message in sent] == [ALICE]


async def test_the_email_is_french_and_the_database_keeps_only_a_hash(
    client: httpx.AsyncClient, mailbox: Path
) -> None:
    token = await _link_for(client, mailbox)
    message = _emails(mailbox)[0]
    assert "mot de passe" in message["Subject"].lower()
    assert "30 minutes" in message.get_content()
    assert len(token) == 43  # 32 random bytes, URL-safe base64
    rows = await connections.get("default").execute_query_dict("SELECT * FROM password_reset")
    assert token not in repr(rows)
    assert rows[0]["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    reset = await PasswordReset.get()
    assert timedelta(minutes=29) < reset.expires_at - datetime.now(UTC) <= timedelta(minutes=30)


async def test_a_link_sets_a_new_password_once(client: httpx.AsyncClient, mailbox: Path) -> None:
    token = await _link_for(client, mailbox)
    page = await client.get(f"/password/reset/{token}")
    assert page.status_code == 200
    assert 'autocomplete="new-password"' in page.text
    answer = await _reset(client, token, NEW_PASSWORD)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?notice=password-changed"
    notice = await client.get(answer.headers["location"])
    assert "Votre nouveau mot de passe est enregistré" in notice.text
    assert await _login_status(client, ALICE, PASSWORD) == 401
    assert await _login_status(client, ALICE, NEW_PASSWORD) == 303
    # Used once: the link is spent, whatever is sent to it.
    again = await client.get(f"/password/reset/{token}")
    assert again.status_code == 410
    assert "déjà été utilisé" in again.text
    replay = await _reset(client, token, "Another-Long-Password-77")
    assert replay.status_code == 410
    assert await _login_status(client, ALICE, NEW_PASSWORD) == 303


@pytest.mark.parametrize(
    ("password", "confirmation", "reason"),
    [
        ("court", None, "au moins 12 caractères"),
        ("unbelievable", None, "des plus utilisés"),
        ("alice-password-2026", None, "adresse e-mail"),
        (NEW_PASSWORD, NEW_PASSWORD + "x", "ne sont pas identiques"),
    ],
)
async def test_a_weak_password_is_refused_with_the_reason_and_the_link_survives(
    client: httpx.AsyncClient, mailbox: Path, password: str, confirmation: str | None, reason: str
) -> None:
    token = await _link_for(client, mailbox)
    answer = await _reset(client, token, password, confirmation)
    assert answer.status_code == 400
    assert reason in answer.text
    assert await _login_status(client, ALICE, PASSWORD) == 303
    assert (await _reset(client, token, NEW_PASSWORD)).status_code == 303


async def test_an_expired_link_is_refused(client: httpx.AsyncClient, mailbox: Path) -> None:
    token = await _link_for(client, mailbox)
    await PasswordReset.all().update(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    page = await client.get(f"/password/reset/{token}")
    assert page.status_code == 410
    assert "expiré" in page.text
    assert 'href="/password/forgot"' in page.text
    assert (await _reset(client, token, NEW_PASSWORD)).status_code == 410
    assert await _login_status(client, ALICE, PASSWORD) == 303


@pytest.mark.parametrize("token", ["not-a-token", "x" * 500, "A" * 43])
async def test_an_unknown_link_is_refused(client: httpx.AsyncClient, token: str) -> None:
    page = await client.get(f"/password/reset/{token}")
    assert page.status_code == 400
    assert "pas valide" in page.text
    assert (await _reset(client, token, NEW_PASSWORD)).status_code == 400


async def test_using_a_link_cancels_the_earlier_ones(
    client: httpx.AsyncClient, mailbox: Path
) -> None:
    first = await _link_for(client, mailbox)
    second = await _link_for(client, mailbox)
    assert (await _reset(client, second, NEW_PASSWORD)).status_code == 303
    assert (await client.get(f"/password/reset/{first}")).status_code == 410
    assert (await _reset(client, first, "Attacker-Chosen-Password")).status_code == 410
    assert await _login_status(client, ALICE, NEW_PASSWORD) == 303


async def test_a_reset_ends_every_session_and_closes_their_streams(
    new_client: ClientFactory, mailbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    phone, laptop, visitor = await new_client(), await new_client(), await new_client()
    await log_in(phone, ALICE)
    await log_in(laptop, ALICE)
    await log_in(await new_client(), BOB)
    alice_sessions = set(await Session.filter(user__email=ALICE).values_list("id", flat=True))
    assert len(alice_sessions) == 2
    announced: list[int] = []

    async def record(session_id: int) -> None:
        announced.append(session_id)

    monkeypatch.setattr("server.views.password.announce_session_end", record)
    token = await _link_for(visitor, mailbox)
    assert (await _reset(visitor, token, NEW_PASSWORD)).status_code == 303
    assert set(announced) == alice_sessions
    audited = await AuditEvent.filter(action__startswith="password.").order_by("id")
    assert [(line.action, line.detail) for line in audited] == [
        ("password.reset_requested", {}),
        ("password.reset", {"sessions_ended": 2}),
    ]
    whole_trail = await connections.get("default").execute_query_dict("SELECT * FROM audit_event")
    assert token not in repr(whole_trail)
    assert NEW_PASSWORD not in repr(whole_trail)
    assert await Session.filter(user__email=ALICE).count() == 0
    assert await Session.filter(user__email=BOB).count() == 1
    for device in (phone, laptop):
        home = await device.get(HOME[ALICE])
        assert home.status_code == 303
        assert home.headers["location"] == "/login"


async def test_a_reset_lifts_the_accounts_login_wait(
    client: httpx.AsyncClient, mailbox: Path
) -> None:
    for _ in range(6):
        await _login_status(client, ALICE, "wrong-guess")
    assert await _login_status(client, ALICE, PASSWORD) == 429
    token = await _link_for(client, mailbox)
    assert (await _reset(client, token, NEW_PASSWORD)).status_code == 303
    assert await _login_status(client, ALICE, NEW_PASSWORD) == 303
    assert await LoginThrottle.filter(key__startswith="account:").count() == 0


async def test_requests_for_links_are_rate_limited_alike_for_unknown_emails(
    new_client: ClientFactory, mailbox: Path
) -> None:
    known_client, unknown_client = await new_client(), await new_client()
    for _ in range(3):
        assert (await _forgot(known_client, ALICE)).status_code == 200
        assert (await _forgot(unknown_client, UNKNOWN)).status_code == 200
    known = await _forgot(known_client, ALICE)
    unknown = await _forgot(unknown_client, UNKNOWN)
    assert known.status_code == unknown.status_code == 429
    assert known.headers["retry-after"] == unknown.headers["retry-after"] == "60"
    assert "Trop de tentatives" in known.text
    assert len(_emails(mailbox)) == 3


async def test_forms_need_the_csrf_token(client: httpx.AsyncClient, mailbox: Path) -> None:
    assert (await client.post("/password/forgot", data={"email": ALICE})).status_code == 403
    token = await _link_for(client, mailbox)
    answer = await client.post(
        f"/password/reset/{token}",
        data={"password": NEW_PASSWORD, "password_confirmation": NEW_PASSWORD},
    )
    assert answer.status_code == 403
    assert await _login_status(client, ALICE, PASSWORD) == 303


async def test_a_bad_email_gets_the_form_again(client: httpx.AsyncClient, mailbox: Path) -> None:
    answer = await _forgot(client, "not an email")
    assert answer.status_code == 400
    assert 'name="email"' in answer.text
    assert _emails(mailbox) == []


async def test_no_log_line_holds_the_token_or_the_password(
    client: httpx.AsyncClient, mailbox: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, the database's queries included
    token = await _link_for(client, mailbox)
    await _reset(client, token, "court")
    await _reset(client, token, NEW_PASSWORD)
    await _login_status(client, ALICE, NEW_PASSWORD)
    server_side = [record for record in caplog.records if record.name != "httpx"]
    assert any("outbox" in record.getMessage() for record in server_side)
    for record in server_side:  # httpx is the test's browser, not the service
        line = record.getMessage()
        assert token not in line
        assert NEW_PASSWORD not in line


def test_the_access_log_shows_reset_links_without_their_token() -> None:
    # The record uvicorn's access logger makes for a request (uvicorn/protocols/http).
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("192.0.2.1:5000", "GET", "/password/reset/eGdD7mMbFuN6yGWcoTqnj1?x=1", "1.1", 200),
        None,
    )
    assert log_redaction.RedactResetLinks().filter(record)
    assert record.getMessage() == (
        '192.0.2.1:5000 - "GET /password/reset/[redacted]?x=1 HTTP/1.1" 200'
    )
