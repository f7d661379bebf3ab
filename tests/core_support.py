"""Helpers shared by the core suite: demo accounts, logging in over HTTP, reading pages.

Kept out of conftest.py so that test modules can import them by name.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from server.models import Message, MessagingSettings, Thread, User

PASSWORD = "colloque-demo"

#: What the `new_client` fixture gives: call it for one more independent browser.
ClientFactory = Callable[[], Awaitable[httpx.AsyncClient]]

ALICE = "alice@demo.colloque.test"
BOB = "bob@demo.colloque.test"
CHLOE = "chloe@autre.colloque.test"
MARTIN = "dr.martin@demo.colloque.test"
BERNARD = "dr.bernard@demo.colloque.test"
PETIT = "dr.petit@autre.colloque.test"
SECRETARIAT = "secretariat@demo.colloque.test"
ADMIN = "admin@demo.colloque.test"  # administrator of the Lilas practice

# What a patient might write: the emergency detector flags the first two, not the third.
CARDIAC = (
    "J'ai une douleur dans la poitrine qui serre et mon bras gauche est engourdi depuis 20 minutes"
)
SUICIDAL = "Je veux mourir, j'ai envie d'en finir ce soir"
BENIGN = "Bonjour, pouvez-vous renouveler mon ordonnance de Doliprane ?"

PATIENTS = (ALICE, BOB, CHLOE)
PRACTITIONERS = (MARTIN, BERNARD, PETIT)
ACCOUNTS = (ALICE, BOB, CHLOE, MARTIN, BERNARD, PETIT, SECRETARIAT, ADMIN)

# The demo threads, by the subject the demo gives them.
SUBJECT_RENEWAL = "Renouvellement de mon traitement pour la tension"  # alice -> Martin, open
SUBJECT_CERTIFICATE = "Certificat pour la piscine"  # alice -> Martin, pending, admin
SUBJECT_RESULTS = "Résultats de prise de sang"  # bob -> Bernard, closed
SUBJECT_FLU = "Vaccin contre la grippe"  # chloe -> Petit, open

HOME = {
    ALICE: "/",
    BOB: "/",
    CHLOE: "/",
    MARTIN: "/inbox",
    BERNARD: "/inbox",
    PETIT: "/inbox",
    SECRETARIAT: "/queue",
    ADMIN: "/queue",
}

_CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


def csrf_from(html: str) -> str:
    """The CSRF token of a page; fails the test if the page has none."""
    match = _CSRF_META.search(html)
    assert match is not None, "page has no csrf-token meta tag"
    return match.group(1)


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> str:
    """Log in through the login form and return the CSRF token of the landing page."""
    page = await client.get("/login")
    assert page.status_code == 200
    answer = await client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": csrf_from(page.text)},
    )
    assert answer.status_code == 303, answer.text
    landing = await client.get(answer.headers["location"])
    assert landing.status_code == 200
    return csrf_from(landing.text)


async def anonymous_token(client: httpx.AsyncClient) -> str:
    """A visitor's CSRF token (and its binding cookie), as the login page hands it out."""
    page = await client.get("/login")
    assert page.status_code == 200
    return csrf_from(page.text)


async def user(email: str) -> User:
    return await User.get(email=email)


async def thread_by_subject(subject: str) -> Thread:
    """Subjects are encrypted at rest, so a query cannot compare them: compare once loaded."""
    threads = await Thread.all().select_related("practice", "patient", "practitioner", "assignee")
    matches = [thread for thread in threads if thread.subject == subject]
    assert len(matches) == 1, f"{len(matches)} threads titled {subject!r}"
    return matches[0]


async def demo_thread_ids() -> dict[str, int]:
    return dict(await Thread.all().values_list("subject", "id"))


@dataclass(frozen=True)
class Snapshot:
    """Everything a refused request must leave as it was."""

    threads: tuple[tuple[Any, ...], ...]
    messages: tuple[tuple[Any, ...], ...]
    settings: tuple[tuple[Any, ...], ...]
    locales: tuple[tuple[Any, ...], ...]


async def snapshot() -> Snapshot:
    return Snapshot(
        threads=tuple(
            await Thread.all()
            .order_by("id")
            .values_list(
                "id", "status", "assignee_id", "decline_reason", "last_seq", "subject", "category"
            )
        ),
        messages=tuple(
            await Message.all().order_by("id").values_list("id", "thread_id", "seq", "body")
        ),
        settings=tuple(
            await MessagingSettings.all()
            .order_by("id")
            .values_list(
                "practitioner_id",
                "messaging_enabled",
                "accepting_requests",
                "away_message",
                "response_days",
                "max_open_requests_per_patient",
            )
        ),
        locales=tuple(await User.all().order_by("id").values_list("id", "locale")),
    )
