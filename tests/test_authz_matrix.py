"""Who gets what: every route of server/app.py, every demo account and an anonymous visitor.

The expected answers are written out here by hand, from the contract and the demo data, not
derived from server code. A thread someone may not see answers 404 whatever the verb; a
refused request changes nothing in the database.

Demo threads, in the column order used below:
    renewal      alice -> Dr Martin, open, category renewal
    certificate  alice -> Dr Martin, pending, category admin
    results      bob -> Dr Bernard, closed
    flu          chloe -> Dr Petit (another practice), open
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from core_support import (
    ALICE,
    BERNARD,
    BOB,
    CHLOE,
    MARTIN,
    PETIT,
    SECRETARIAT,
    SUBJECT_CERTIFICATE,
    SUBJECT_FLU,
    SUBJECT_RENEWAL,
    SUBJECT_RESULTS,
    anonymous_token,
    login,
    snapshot,
    user,
)

from server.models import Message, MessagingSettings, Thread, User

pytestmark = pytest.mark.anyio

ANONYMOUS = "anonymous"
EMAILS = {
    "alice": ALICE,
    "bob": BOB,
    "chloe": CHLOE,
    "dr.martin": MARTIN,
    "dr.bernard": BERNARD,
    "dr.petit": PETIT,
    "secretariat": SECRETARIAT,
}
WHO = (*EMAILS, ANONYMOUS)

THREADS = ("renewal", "certificate", "results", "flu")
SUBJECTS = {
    "renewal": SUBJECT_RENEWAL,
    "certificate": SUBJECT_CERTIFICATE,
    "results": SUBJECT_RESULTS,
    "flu": SUBJECT_FLU,
}
# A phrase of each thread's first message, to check that a 404 leaks none of it.
FIRST_WORDS = {
    "renewal": "mon traitement se termine",
    "certificate": "non contre-indication",
    "results": "mes résultats",
    "flu": "vaccin contre la grippe enceinte",
}

# Status per thread, in THREADS order. 303 = done (redirect to the thread), 409 = refused by the
# thread's state, 404 = not yours to see (or not your role), 401 = log in first.
THREAD_ROUTES: dict[str, dict[str, tuple[int, int, int, int]]] = {
    "GET": {
        "alice": (200, 200, 404, 404),
        "bob": (404, 404, 200, 404),
        "chloe": (404, 404, 404, 200),
        "dr.martin": (200, 200, 404, 404),
        "dr.bernard": (404, 404, 200, 404),
        "dr.petit": (404, 404, 404, 200),
        "secretariat": (200, 200, 200, 404),
        ANONYMOUS: (303, 303, 303, 303),
    },
    "messages": {
        "alice": (303, 303, 404, 404),
        "bob": (404, 404, 409, 404),
        "chloe": (404, 404, 404, 303),
        "dr.martin": (303, 409, 404, 404),
        "dr.bernard": (404, 404, 409, 404),
        "dr.petit": (404, 404, 404, 303),
        "secretariat": (303, 409, 409, 404),
        ANONYMOUS: (401, 401, 401, 401),
    },
    "accept": {
        "alice": (404, 404, 404, 404),
        "bob": (404, 404, 404, 404),
        "chloe": (404, 404, 404, 404),
        "dr.martin": (409, 303, 404, 404),
        "dr.bernard": (404, 404, 409, 404),
        "dr.petit": (404, 404, 404, 409),
        "secretariat": (409, 303, 409, 404),
        ANONYMOUS: (401, 401, 401, 401),
    },
    "decline": {
        "alice": (404, 404, 404, 404),
        "bob": (404, 404, 404, 404),
        "chloe": (404, 404, 404, 404),
        "dr.martin": (409, 303, 404, 404),
        "dr.bernard": (404, 404, 409, 404),
        "dr.petit": (404, 404, 404, 409),
        "secretariat": (409, 303, 409, 404),
        ANONYMOUS: (401, 401, 401, 401),
    },
    "close": {
        "alice": (404, 404, 404, 404),
        "bob": (404, 404, 404, 404),
        "chloe": (404, 404, 404, 404),
        "dr.martin": (303, 303, 404, 404),
        "dr.bernard": (404, 404, 409, 404),
        "dr.petit": (404, 404, 404, 303),
        "secretariat": (303, 303, 409, 404),
        ANONYMOUS: (401, 401, 401, 401),
    },
    "assign": {
        "alice": (404, 404, 404, 404),
        "bob": (404, 404, 404, 404),
        "chloe": (404, 404, 404, 404),
        "dr.martin": (303, 303, 404, 404),
        "dr.bernard": (404, 404, 303, 404),
        "dr.petit": (404, 404, 404, 303),
        "secretariat": (303, 303, 303, 404),
        ANONYMOUS: (401, 401, 401, 401),
    },
}

# Form sent with each thread verb.
FORMS: dict[str, dict[str, str]] = {
    "messages": {"body": "Message de la matrice d'accès"},
    "accept": {},
    "decline": {"reason": "Refus de la matrice d'accès"},
    "close": {},
    "assign": {"assignee_id": "self"},
}

# Pages: status, and where a 303 leads.
PAGES: dict[str, dict[str, int | tuple[int, str]]] = {
    "/": {
        "alice": 200,
        "bob": 200,
        "chloe": 200,
        "dr.martin": (303, "/inbox"),
        "dr.bernard": (303, "/inbox"),
        "dr.petit": (303, "/inbox"),
        "secretariat": (303, "/queue"),
        ANONYMOUS: (303, "/login"),
    },
    "/login": {
        "alice": (303, "/"),
        "bob": (303, "/"),
        "chloe": (303, "/"),
        "dr.martin": (303, "/inbox"),
        "dr.bernard": (303, "/inbox"),
        "dr.petit": (303, "/inbox"),
        "secretariat": (303, "/queue"),
        ANONYMOUS: 200,
    },
    "/threads/new": {
        "alice": 200,
        "bob": 200,
        "chloe": 200,
        "dr.martin": 404,
        "dr.bernard": 404,
        "dr.petit": 404,
        "secretariat": 404,
        ANONYMOUS: (303, "/login"),
    },
    "/inbox": {
        "alice": 404,
        "bob": 404,
        "chloe": 404,
        "dr.martin": 200,
        "dr.bernard": 200,
        "dr.petit": 200,
        "secretariat": 404,
        ANONYMOUS: (303, "/login"),
    },
    "/queue": {
        "alice": 404,
        "bob": 404,
        "chloe": 404,
        "dr.martin": 404,
        "dr.bernard": 404,
        "dr.petit": 404,
        "secretariat": 200,
        ANONYMOUS: (303, "/login"),
    },
    "/settings": {
        "alice": 404,
        "bob": 404,
        "chloe": 404,
        "dr.martin": 200,
        "dr.bernard": 200,
        "dr.petit": 200,
        "secretariat": 404,
        ANONYMOUS: (303, "/login"),
    },
    "/healthz": dict.fromkeys(WHO, 200),
}

# Subjects each person finds on their own list page: a patient's home, a practitioner's inbox
# (all statuses), the secretaries' queue (what waits: pending, or open and unassigned).
LISTS: dict[str, tuple[str, set[str]]] = {
    "alice": ("/", {"renewal", "certificate"}),
    "bob": ("/", {"results"}),
    "chloe": ("/", {"flu"}),
    "dr.martin": ("/inbox?status=all", {"renewal", "certificate"}),
    "dr.bernard": ("/inbox?status=all", {"results"}),
    "dr.petit": ("/inbox?status=all", {"flu"}),
    "secretariat": ("/queue", {"renewal", "certificate"}),
}

# POST routes that are not about one thread: status, and where a 303 leads.
NEW_REQUEST_TO_MARTIN = {
    "alice": (303, "/threads/"),
    "bob": 403,  # has not consulted Dr Martin
    "chloe": 403,
    "dr.martin": 404,
    "dr.bernard": 404,
    "dr.petit": 404,
    "secretariat": 404,
    ANONYMOUS: 401,
}
SAVE_SETTINGS = {
    "alice": 404,
    "bob": 404,
    "chloe": 404,
    "dr.martin": (303, "/settings?saved=1"),
    "dr.bernard": (303, "/settings?saved=1"),
    "dr.petit": (303, "/settings?saved=1"),
    "secretariat": 404,
    ANONYMOUS: 401,
}
LOGOUT = {**dict.fromkeys(EMAILS, (303, "/login")), ANONYMOUS: 401}
LANGUAGE = dict.fromkeys(WHO, (303, "/"))


def _split(expected: int | tuple[int, str]) -> tuple[int, str | None]:
    return expected if isinstance(expected, tuple) else (expected, None)


async def _as(who: str, client: httpx.AsyncClient) -> str:
    """Log `who` in on `client` and return their CSRF token."""
    if who == ANONYMOUS:
        return await anonymous_token(client)
    return await login(client, EMAILS[who])


async def _thread_ids() -> dict[str, int]:
    ids = dict(await Thread.all().values_list("subject", "id"))
    return {name: ids[subject] for name, subject in SUBJECTS.items()}


def _check_answer(
    response: httpx.Response, expected: int | tuple[int, str], label: str
) -> list[str]:
    status, location = _split(expected)
    problems = []
    if response.status_code != status:
        problems.append(f"{label}: expected {status}, got {response.status_code}")
    elif location is not None and not response.headers.get("location", "").startswith(location):
        problems.append(f"{label}: redirected to {response.headers.get('location')}")
    return problems


def test_the_tables_cover_every_account_and_route() -> None:
    for table in (*THREAD_ROUTES.values(), *PAGES.values()):
        assert set(table) == set(WHO)
    for table in (NEW_REQUEST_TO_MARTIN, SAVE_SETTINGS, LOGOUT, LANGUAGE):
        assert set(table) == set(WHO)
    assert set(THREAD_ROUTES) == {"GET", *FORMS}


@pytest.mark.parametrize("who", WHO)
async def test_pages(who: str, client: httpx.AsyncClient) -> None:
    await _as(who, client)
    problems: list[str] = []
    for path, table in PAGES.items():
        response = await client.get(path)
        problems += _check_answer(response, table[who], f"GET {path}")
    assert problems == []


@pytest.mark.parametrize("who", WHO)
async def test_thread_pages(who: str, client: httpx.AsyncClient) -> None:
    await _as(who, client)
    ids = await _thread_ids()
    problems: list[str] = []
    for index, name in enumerate(THREADS):
        expected = THREAD_ROUTES["GET"][who][index]
        for accept in ("*/*", "text/html"):
            response = await client.get(f"/threads/{ids[name]}", headers={"accept": accept})
            label = f"GET {name} ({accept})"
            problems += _check_answer(response, expected, label)
            if expected == 303:
                problems += _check_answer(response, (303, "/login"), label)
            if expected != 200:
                assert SUBJECTS[name] not in response.text, label
                assert FIRST_WORDS[name] not in response.text, label
            else:
                assert SUBJECTS[name] in response.text, label
                assert FIRST_WORDS[name] in response.text, label
    assert problems == []


async def _effect_of(verb: str, thread_id: int, actor: User | None) -> bool:
    """Did `verb` do what it says on `thread_id`?"""
    thread = await Thread.get(id=thread_id)
    if verb == "messages":
        bodies = await Message.filter(thread_id=thread_id).values_list("body", flat=True)
        return FORMS[verb]["body"] in bodies
    if verb == "accept":
        return thread.status == "open"
    if verb == "decline":
        return thread.status == "declined" and thread.decline_reason == FORMS[verb]["reason"]
    if verb == "close":
        return thread.status == "closed"
    assert actor is not None
    return thread.assignee_id == actor.id


@pytest.mark.parametrize("verb", list(FORMS))
@pytest.mark.parametrize("who", WHO)
async def test_thread_actions(who: str, verb: str, client: httpx.AsyncClient) -> None:
    token = await _as(who, client)
    actor = await user(EMAILS[who]) if who != ANONYMOUS else None
    ids = await _thread_ids()
    problems: list[str] = []
    for index, name in enumerate(THREADS):
        expected = THREAD_ROUTES[verb][who][index]
        before = await snapshot()
        response = await client.post(
            f"/threads/{ids[name]}/{verb}", data={**FORMS[verb], "csrf_token": token}
        )
        label = f"POST {verb} on {name}"
        if expected == 303:
            problems += _check_answer(response, (303, f"/threads/{ids[name]}"), label)
            if not await _effect_of(verb, ids[name], actor):
                problems.append(f"{label}: answered {response.status_code} but did nothing")
        else:
            problems += _check_answer(response, expected, label)
            if await snapshot() != before:
                problems.append(f"{label}: refused with {response.status_code} but changed data")
        if expected in (401, 404):
            assert SUBJECTS[name] not in response.text, label
            assert FIRST_WORDS[name] not in response.text, label
    assert problems == []


@pytest.mark.parametrize("who", WHO)
async def test_unknown_thread_is_404_for_every_verb(who: str, client: httpx.AsyncClient) -> None:
    token = await _as(who, client)
    missing = max((await _thread_ids()).values()) + 1000
    before = await snapshot()
    answer = await client.get(f"/threads/{missing}")
    assert answer.status_code == (303 if who == ANONYMOUS else 404)
    for verb, form in FORMS.items():
        answer = await client.post(f"/threads/{missing}/{verb}", data={**form, "csrf_token": token})
        assert answer.status_code == (401 if who == ANONYMOUS else 404), verb
    assert await snapshot() == before


@pytest.mark.parametrize("who", list(LISTS))
async def test_list_pages_show_exactly_the_threads_one_may_see(
    who: str, client: httpx.AsyncClient
) -> None:
    await _as(who, client)
    path, expected = LISTS[who]
    page = await client.get(path)
    assert page.status_code == 200
    shown = {name for name, subject in SUBJECTS.items() if subject in page.text}
    assert shown == expected


async def _post_elsewhere(
    who: str, client: httpx.AsyncClient, path: str, form: dict[str, str]
) -> tuple[httpx.Response, Any, Any]:
    token = await _as(who, client)
    before = await snapshot()
    response = await client.post(path, data={**form, "csrf_token": token})
    return response, before, await snapshot()


@pytest.mark.parametrize("who", WHO)
async def test_new_request(who: str, client: httpx.AsyncClient) -> None:
    martin = await user(MARTIN)
    threads_before = await Thread.all().count()
    response, before, after = await _post_elsewhere(
        who,
        client,
        "/threads",
        {
            "practitioner_id": str(martin.id),
            "category": "question",
            "subject": "Question de la matrice",
            "body": "Bonjour docteur",
        },
    )
    expected = NEW_REQUEST_TO_MARTIN[who]
    assert _check_answer(response, expected, "POST /threads") == []
    if _split(expected)[0] == 303:
        assert await Thread.all().count() == threads_before + 1
        created = next(t for t in await Thread.all() if t.subject == "Question de la matrice")
        assert response.headers["location"] == f"/threads/{created.id}"
        assert created.patient_id == (await user(EMAILS[who])).id
    else:
        assert after == before
    if _split(expected)[0] == 403:
        # The refusal says why, in the page.
        assert 'class="error" role="alert"' in response.text


@pytest.mark.parametrize("who", WHO)
async def test_save_settings(who: str, client: httpx.AsyncClient) -> None:
    response, before, after = await _post_elsewhere(
        who,
        client,
        "/settings",
        {
            "messaging_enabled": "on",
            "accepting_requests": "on",
            "response_days": "9",
            "max_open_requests_per_patient": "7",
            "away_message": "",
        },
    )
    assert _check_answer(response, SAVE_SETTINGS[who], "POST /settings") == []
    if _split(SAVE_SETTINGS[who])[0] == 303:
        changed = await MessagingSettings.get(practitioner__email=EMAILS[who])
        assert (changed.response_days, changed.max_open_requests_per_patient) == (9, 7)
        assert changed.messaging_enabled
        # Only their own settings changed.
        others = await MessagingSettings.exclude(practitioner__email=EMAILS[who]).values_list(
            "response_days", flat=True
        )
        assert 9 not in others
    else:
        assert after == before


@pytest.mark.parametrize("who", WHO)
async def test_logout(who: str, client: httpx.AsyncClient) -> None:
    response, before, after = await _post_elsewhere(who, client, "/logout", {})
    assert _check_answer(response, LOGOUT[who], "POST /logout") == []
    assert after == before
    if who != ANONYMOUS:
        # Logged out: pages send to the login form again.
        home = await client.get("/threads/new")
        assert home.status_code == 303
        assert home.headers["location"] == "/login"


@pytest.mark.parametrize("who", WHO)
async def test_language(who: str, client: httpx.AsyncClient) -> None:
    response, _, _ = await _post_elsewhere(who, client, "/language", {"locale": "en", "next": "/"})
    assert _check_answer(response, LANGUAGE[who], "POST /language") == []
    if who != ANONYMOUS:
        assert (await user(EMAILS[who])).locale == "en"
    assert await User.filter(locale="en").count() == (0 if who == ANONYMOUS else 1)
