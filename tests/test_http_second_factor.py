"""Two-step verification over HTTP, as a user or an attacker sees it: enrolment, the code step
of login, recovery codes, the pending-login cookie, and practices that require it."""

from __future__ import annotations

import time

import httpx
import pytest
from core_support import (
    ACCOUNTS,
    ALICE,
    BOB,
    CHLOE,
    HOME,
    MARTIN,
    PETIT,
    SECRETARIAT,
    SUBJECT_RENEWAL,
    ClientFactory,
    csrf_from,
    login,
    snapshot,
    thread_by_subject,
    user,
)
from second_factor_support import (
    PENDING_COOKIE,
    SESSION_COOKIE,
    app_code,
    code_step,
    enrol,
    login_with_code,
    password_step,
    recovery_codes_in,
    require_for_everyone,
    unused_code,
)

from server.demo import AUTRE, LILAS
from server.models import Practice, Session
from server.sessions import sign
from server.settings import Settings

pytestmark = pytest.mark.anyio


def _set_cookie(response: httpx.Response, name: str) -> str | None:
    found = [h for h in response.headers.get_list("set-cookie") if h.startswith(f"{name}=")]
    return found[0] if found else None


async def _enrolled_alice(new_client: ClientFactory) -> list[str]:
    browser = await new_client()
    codes = await enrol(browser, ALICE, await login(browser, ALICE))
    assert len(codes) == 10
    return codes


# --- enrolment -----------------------------------------------------------------------------


async def test_every_role_has_an_account_page_linked_from_the_header(
    new_client: ClientFactory,
) -> None:
    for email in ACCOUNTS:
        browser = await new_client()
        await login(browser, email)
        home = await browser.get(HOME[email])
        assert 'href="/account"' in home.text
        page = await browser.get("/account")
        assert page.status_code == 200
        assert 'data-second-factor="off"' in page.text
        assert 'action="/account/logout-everywhere"' in page.text


async def test_enrolment_shows_the_key_and_a_qr_image_then_the_codes_once(
    client: httpx.AsyncClient,
) -> None:
    csrf = await login(client, ALICE)
    await client.post("/account/second-factor/start", data={"csrf_token": csrf})
    setup = await client.get("/account/second-factor")
    assert setup.status_code == 200
    assert setup.headers["cache-control"] == "no-store"
    assert '<img class="qr" src="data:image/svg+xml' in setup.text
    assert "otpauth://totp/Colloque:alice%40demo.colloque.test?secret=" in setup.text
    assert "<script>" not in setup.text  # nothing inline: the CSP stays strict

    wrong = await client.post(
        "/account/second-factor/confirm",
        data={"code": "12345x", "csrf_token": csrf_from(setup.text)},
    )
    assert wrong.status_code == 400
    assert "est pas valide. Vérifiez l" in wrong.text
    assert (await user(ALICE)).totp_enabled_at is None

    confirmed = await client.post(
        "/account/second-factor/confirm",
        data={"code": await app_code(ALICE), "csrf_token": csrf_from(setup.text)},
    )
    assert confirmed.status_code == 200
    assert confirmed.headers["cache-control"] == "no-store"
    codes = recovery_codes_in(confirmed.text)
    assert len(set(codes)) == 10
    # Shown once: the account page only counts them.
    account = await client.get("/account")
    assert 'data-second-factor="on"' in account.text
    assert not any(code in account.text for code in codes)
    assert "10" in account.text
    # The set-up page is gone once enrolled.
    assert (await client.get("/account/second-factor")).headers["location"] == "/account"


async def test_enrolment_needs_the_csrf_token(client: httpx.AsyncClient) -> None:
    await login(client, ALICE)
    answer = await client.post("/account/second-factor/start", data={})
    assert answer.status_code == 403
    assert (await user(ALICE)).totp_secret is None


async def test_new_codes_and_turning_off_need_a_current_code(new_client: ClientFactory) -> None:
    browser = await new_client()
    csrf = await login(browser, ALICE)
    old_codes = await enrol(browser, ALICE, csrf)
    refused = await browser.post(
        "/account/second-factor/recovery-codes", data={"code": "000000", "csrf_token": csrf}
    )
    assert refused.status_code == 400
    renewed = await browser.post(
        "/account/second-factor/recovery-codes",
        data={"code": await unused_code(ALICE), "csrf_token": csrf},
    )
    new_codes = recovery_codes_in(renewed.text)
    assert len(new_codes) == 10 and not set(new_codes) & set(old_codes)

    refused = await browser.post(
        "/account/second-factor/disable", data={"code": old_codes[0], "csrf_token": csrf}
    )
    assert refused.status_code == 400
    assert (await user(ALICE)).totp_enabled_at is not None
    off = await browser.post(
        "/account/second-factor/disable", data={"code": new_codes[0], "csrf_token": csrf}
    )
    assert off.status_code == 303
    assert (await user(ALICE)).totp_enabled_at is None
    # Back to a password-only login.
    again = await password_step(await new_client(), ALICE)
    assert again.headers["location"] == HOME[ALICE]


# --- the code step of login ----------------------------------------------------------------


async def test_a_correct_password_alone_opens_no_session(new_client: ClientFactory) -> None:
    await _enrolled_alice(new_client)
    sessions_before = await Session.filter(user__email=ALICE).count()
    browser = await new_client()
    answer = await password_step(browser, ALICE)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login/second-factor"
    assert _set_cookie(answer, SESSION_COOKIE) is None
    cookie = _set_cookie(answer, PENDING_COOKIE)
    assert cookie is not None
    lowered = cookie.lower()
    assert "httponly" in lowered and "samesite=lax" in lowered and "max-age=300" in lowered
    assert await Session.filter(user__email=ALICE).count() == sessions_before
    # The pending login reaches nothing.
    assert (await browser.get("/")).headers["location"] == "/login"
    thread = await thread_by_subject(SUBJECT_RENEWAL)
    assert (await browser.get(f"/threads/{thread.id}")).headers["location"] == "/login"


async def test_the_right_code_logs_in_with_a_new_session(new_client: ClientFactory) -> None:
    await _enrolled_alice(new_client)
    browser = await new_client()
    answer = await login_with_code(browser, ALICE, await unused_code(ALICE))
    assert answer.status_code == 303
    assert answer.headers["location"] == HOME[ALICE]
    assert _set_cookie(answer, SESSION_COOKIE) is not None
    assert "max-age=0" in (_set_cookie(answer, PENDING_COOKIE) or "").lower()
    home = await browser.get("/")
    assert home.status_code == 200 and "Alice Durand" in home.text


async def test_a_wrong_code_is_refused_and_the_form_comes_back(new_client: ClientFactory) -> None:
    await _enrolled_alice(new_client)
    browser = await new_client()
    current = await app_code(ALICE)
    wrong = f"{(int(current) + 500_000) % 1_000_000:06d}"
    answer = await login_with_code(browser, ALICE, wrong)
    assert answer.status_code == 401
    assert 'action="/login/second-factor"' in answer.text
    assert _set_cookie(answer, SESSION_COOKIE) is None
    assert (await browser.get("/")).headers["location"] == "/login"
    # A retry with the right code still works within the five minutes.
    retry = await code_step(browser, await app_code(ALICE, later=1))
    assert retry.status_code == 303 and retry.headers["location"] == HOME[ALICE]


async def test_a_used_code_cannot_be_replayed(new_client: ClientFactory) -> None:
    await _enrolled_alice(new_client)
    code = await unused_code(ALICE)
    first = await login_with_code(await new_client(), ALICE, code)
    assert first.status_code == 303
    # Someone who saw the code (over the shoulder, a phishing page) and knows the password.
    replay = await login_with_code(await new_client(), ALICE, code)
    assert replay.status_code == 401
    assert _set_cookie(replay, SESSION_COOKIE) is None


async def test_a_recovery_code_logs_in_once(new_client: ClientFactory) -> None:
    codes = await _enrolled_alice(new_client)
    first = await login_with_code(await new_client(), ALICE, codes[0])
    assert first.status_code == 303 and first.headers["location"] == HOME[ALICE]
    again = await login_with_code(await new_client(), ALICE, codes[0])
    assert again.status_code == 401


async def test_a_pending_login_completes_once(new_client: ClientFactory) -> None:
    await _enrolled_alice(new_client)
    browser = await new_client()
    await password_step(browser, ALICE)
    pending = browser.cookies.get(PENDING_COOKIE)
    assert pending
    assert (await code_step(browser, await app_code(ALICE, later=1))).status_code == 303
    # A copy of the cookie, with another valid code, opens no second session.
    thief = await new_client()
    thief.cookies.set(PENDING_COOKIE, pending, domain="testserver.local", path="/")
    page = await thief.get("/login")
    answer = await thief.post(
        "/login/second-factor",
        data={"code": await app_code(ALICE, later=-1), "csrf_token": csrf_from(page.text)},
    )
    assert answer.status_code == 401
    assert _set_cookie(answer, SESSION_COOKIE) is None


async def _post_code_with_cookie(
    client: httpx.AsyncClient, cookie: str, code: str
) -> httpx.Response:
    client.cookies.set(PENDING_COOKIE, cookie, domain="testserver.local", path="/")
    page = await client.get("/login")
    return await client.post(
        "/login/second-factor", data={"code": code, "csrf_token": csrf_from(page.text)}
    )


async def test_forged_or_expired_pending_logins_are_refused(
    new_client: ClientFactory, db: Settings
) -> None:
    await _enrolled_alice(new_client)
    alice = await user(ALICE)
    code = await unused_code(ALICE)
    step = (await user(ALICE)).totp_last_step
    future = int(time.time()) + 300
    past = int(time.time()) - 1
    forgeries = {
        "unsigned": f"pending-login:{alice.id}:{step}:{future}:nonce",
        "wrong key": sign("not-the-key", f"pending-login:{alice.id}:{step}:{future}:nonce"),
        "expired": sign(db.secret_key, f"pending-login:{alice.id}:{step}:{past}:nonce"),
        "other kind": sign(db.secret_key, f"{alice.id}"),
        "malformed": sign(db.secret_key, f"pending-login:{alice.id}:x:{future}:nonce"),
    }
    for name, cookie in forgeries.items():
        browser = await new_client()
        answer = await _post_code_with_cookie(browser, cookie, code)
        assert answer.status_code == 401, name
        assert _set_cookie(answer, SESSION_COOKIE) is None, name
        assert 'action="/login"' in answer.text, name  # back to the password form
        assert (await browser.get("/login/second-factor")).headers["location"] == "/login"
    # Control: a well-formed, signed, current cookie is accepted with the same code.
    genuine = sign(db.secret_key, f"pending-login:{alice.id}:{step}:{future}:nonce")
    answer = await _post_code_with_cookie(await new_client(), genuine, code)
    assert answer.status_code == 303


async def test_the_code_page_without_a_pending_login_goes_to_login(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.get("/login/second-factor")
    assert answer.status_code == 303 and answer.headers["location"] == "/login"


# --- practices that require it --------------------------------------------------------------


async def test_staff_without_it_are_sent_to_enrolment_and_read_nothing(
    new_client: ClientFactory,
) -> None:
    await require_for_everyone(LILAS)
    browser = await new_client()
    answer = await password_step(browser, MARTIN)
    assert answer.status_code == 303 and answer.headers["location"] == HOME[MARTIN]
    inbox = await browser.get("/inbox")
    assert inbox.status_code == 303 and inbox.headers["location"] == "/account"
    thread = await thread_by_subject(SUBJECT_RENEWAL)
    for path in ("/inbox?status=all", f"/threads/{thread.id}", f"/inbox?thread={thread.id}"):
        page = await browser.get(path)
        assert page.status_code == 303 and page.headers["location"] == "/account", path
        assert thread.subject not in page.text
    account = await browser.get("/account")
    assert account.status_code == 200
    assert "data-enrolment-required" in account.text
    assert "Votre cabinet exige la vérification en deux étapes" in account.text
    # No live stream is offered on the enrolment page.
    assert "ws-connect" not in account.text and "sse-connect" not in account.text

    csrf = csrf_from(account.text)
    before = await snapshot()
    fragment = await browser.get("/inbox", headers={"HX-Request": "true"})
    assert fragment.status_code == 403 and thread.subject not in fragment.text
    posted = await browser.post(
        f"/threads/{thread.id}/messages", data={"body": "Bonjour", "csrf_token": csrf}
    )
    assert posted.status_code == 403
    program = await browser.post(
        f"/threads/{thread.id}/close", data={"csrf_token": csrf}, headers={"Accept": "text/plain"}
    )
    assert program.status_code == 403 and "two-step verification" in program.text
    assert await snapshot() == before

    await enrol(browser, MARTIN, csrf)
    assert (await browser.get("/inbox")).status_code == 200


async def test_a_secretary_in_a_practice_requiring_it_is_held_too(
    client: httpx.AsyncClient,
) -> None:
    await require_for_everyone(LILAS)
    await password_step(client, SECRETARIAT)
    assert (await client.get("/queue")).headers["location"] == "/account"


async def test_patients_follow_their_practices_setting(new_client: ClientFactory) -> None:
    await Practice.filter(name=AUTRE).update(require_patient_second_factor=True)
    chloe = await new_client()
    await password_step(chloe, CHLOE)
    assert (await chloe.get("/")).headers["location"] == "/account"
    # Alice's practitioners are all at Lilas, which does not require it.
    alice = await new_client()
    await login(alice, ALICE)
    assert (await alice.get("/")).status_code == 200
    # Staff of that practice are not concerned by the patients' setting.
    petit = await new_client()
    await login(petit, PETIT)
    assert (await petit.get("/inbox")).status_code == 200


async def test_logging_out_stays_possible_before_enrolment(client: httpx.AsyncClient) -> None:
    await require_for_everyone(LILAS)
    await password_step(client, MARTIN)
    csrf = csrf_from((await client.get("/account")).text)
    answer = await client.post("/logout", data={"csrf_token": csrf})
    assert answer.status_code == 303 and answer.headers["location"] == "/login"


async def test_demo_logins_are_unaffected(new_client: ClientFactory) -> None:
    for email in ACCOUNTS:
        browser = await new_client()
        answer = await password_step(browser, email)
        assert answer.status_code == 303 and answer.headers["location"] == HOME[email]
        assert (await browser.get(HOME[email])).status_code == 200


# --- the practice setting -------------------------------------------------------------------


async def test_a_practitioner_sets_the_patient_requirement_of_their_practice(
    client: httpx.AsyncClient,
) -> None:
    csrf = await login(client, MARTIN)
    page = await client.get("/settings")
    assert 'name="require_patient_second_factor"' in page.text
    answer = await client.post(
        "/settings/second-factor", data={"require_patient_second_factor": "on", "csrf_token": csrf}
    )
    assert answer.status_code == 303
    assert await Practice.filter(name=LILAS, require_patient_second_factor=True).exists()
    assert await Practice.filter(name=AUTRE, require_patient_second_factor=False).exists()
    checkbox = 'name="require_patient_second_factor" checked'
    assert checkbox in (await client.get("/settings")).text
    off = await client.post("/settings/second-factor", data={"csrf_token": csrf})
    assert off.status_code == 303
    assert await Practice.filter(name=LILAS, require_patient_second_factor=False).exists()
    assert checkbox not in (await client.get("/settings")).text


@pytest.mark.parametrize("email", [ALICE, SECRETARIAT])
async def test_others_cannot_change_it(email: str, client: httpx.AsyncClient) -> None:
    csrf = await login(client, email)
    answer = await client.post(
        "/settings/second-factor", data={"require_patient_second_factor": "on", "csrf_token": csrf}
    )
    assert answer.status_code == 404
    assert not await Practice.filter(require_patient_second_factor=True).exists()


# --- the suggestion to patients -------------------------------------------------------------


async def test_patients_without_it_are_offered_it_until_they_say_not_now(
    client: httpx.AsyncClient,
) -> None:
    csrf = await login(client, BOB)
    home = await client.get("/")
    assert "data-second-factor-suggestion" in home.text
    answer = await client.post("/account/second-factor/hint", data={"csrf_token": csrf})
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    assert "data-second-factor-suggestion" not in (await client.get("/")).text


async def test_patients_with_it_are_not_offered_it(new_client: ClientFactory) -> None:
    await _enrolled_alice(new_client)
    browser = await new_client()
    await login_with_code(browser, ALICE, await unused_code(ALICE))
    assert "data-second-factor-suggestion" not in (await browser.get("/")).text


async def test_wrong_codes_count_as_failed_logins(new_client: ClientFactory) -> None:
    await _enrolled_alice(new_client)
    browser = await new_client()
    attempts = 0
    right = await app_code(ALICE, later=1)
    wrong = f"{(int(right) + 500_000) % 1_000_000:06d}"
    answer = await login_with_code(browser, ALICE, wrong)
    while answer.status_code == 401 and attempts < 20:
        attempts += 1
        answer = await code_step(browser, wrong)
    assert answer.status_code == 429
    assert attempts <= 5
    assert int(answer.headers["retry-after"]) > 0
    # While throttled, even the right code is not tested, and the password step does not
    # buy fresh guesses.
    assert (await code_step(browser, right)).status_code == 429
    assert (await password_step(await new_client(), ALICE)).status_code == 429
    assert (await browser.get("/")).headers["location"] == "/login"
