"""Random forms posted to every state-changing route by every kind of caller, on a real server.

What an attacker poking at the service would see: never a server error, and a refused request
(any 4xx) never changes what is stored. The routes are read from the application itself, so a
route added later is fuzzed too.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from live.support import Databases, ServerProcess
from service_support import create_demo_data
from starlette.routing import Route

from server.app import create_app

PASSWORD = "colloque-demo"
CALLERS = {
    "anonymous": None,
    "patient": "alice@demo.colloque.test",
    "practitioner": "dr.martin@demo.colloque.test",
    "secretary": "secretariat@demo.colloque.test",
}
# Tables whose content a refused request must leave alone. Sessions, throttling counters and
# the audit trail legitimately record refusals and visits.
RECORD_TABLES = (
    "practice",
    "user",
    "messaging_settings",
    "care_relationship",
    "thread",
    "message",
    "read_state",
    "recovery_code",
    "password_reset",
)
FIELDS = (
    "email",
    "password",
    "body",
    "subject",
    "category",
    "practitioner_id",
    "reason",
    "assignee_id",
    "locale",
    "next",
    "code",
    "new_password",
    "messaging_enabled",
    "accepting_requests",
    "away_message",
    "response_days",
    "max_open_requests_per_patient",
)
NASTY = (
    "",
    " ",
    "0",
    "-1",
    "1e9",
    "99999999999999999999",
    "self",
    "none",
    "question",
    "admin",
    "fr",
    "en",
    "\x00",
    "<script>alert(1)</script>",
    '" hx-get="/logout" hx-trigger="load',
    "{{7*7}}",
    "../../etc/passwd",
    "//evil.example/",
    "https://evil.example/",
    "é" * 6000,
    "a" * 70_000,
)


def _post_routes() -> list[str]:
    routes = []
    for route in create_app().routes:
        if isinstance(route, Route) and "POST" in (route.methods or ()):
            routes.append(route.path)
    return sorted(routes)


class Service:
    def __init__(self, server: ServerProcess, database_url: str) -> None:
        self.server = server
        self.database_url = database_url
        self.clients: dict[str, httpx.Client] = {}

    def client(self, caller: str) -> httpx.Client:
        """A client for `caller`, logged in again if a previous example logged it out."""
        client = self.clients.get(caller)
        if client is None:
            client = httpx.Client(base_url=self.server.base_url, timeout=30)
            self.clients[caller] = client
        email = CALLERS[caller]
        client.headers.pop("X-CSRF-Token", None)  # the previous session's, if any
        home = client.get("/login", follow_redirects=True)
        if email is not None and home.url.path == "/login":
            token = _csrf(home.text)
            answer = client.post(
                "/login", data={"email": email, "password": PASSWORD, "csrf_token": token}
            )
            assert answer.status_code == 303, answer.text
            home = client.get(answer.headers["location"], follow_redirects=True)
        client.headers["X-CSRF-Token"] = _csrf(home.text)
        return client

    def snapshot(self) -> list[Any]:
        if self.database_url.startswith("sqlite://"):
            connection = sqlite3.connect(self.database_url.removeprefix("sqlite://"))
            try:
                return [
                    connection.execute(f'SELECT * FROM "{table}" ORDER BY id').fetchall()  # noqa: S608
                    for table in RECORD_TABLES
                ]
            finally:
                connection.close()
        return asyncio.run(self._postgres_snapshot())

    async def _postgres_snapshot(self) -> list[Any]:
        import asyncpg

        connection = await asyncpg.connect("postgresql://" + self.database_url.split("://", 1)[1])
        try:
            tables = []
            for table in RECORD_TABLES:
                query = f'SELECT * FROM "{table}" ORDER BY id'  # noqa: S608 - fixed names
                tables.append([tuple(row) for row in await connection.fetch(query)])
            return tables
        finally:
            await connection.close()

    def thread_ids(self) -> list[int]:
        return [row[0] for row in self.snapshot()[RECORD_TABLES.index("thread")]][:6]


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert found is not None, html[:500]
    return found.group(1)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    folder = tmp_path_factory.mktemp("fuzz")
    databases = Databases(folder)
    database_url = databases.new("fuzz")
    env = {
        **{k: v for k, v in __import__("os").environ.items() if k not in ("REDIS_URL", "PORT")},
        "DATABASE_URL": database_url,
        "COLLOQUE_ENV": "development",
    }
    create_demo_data(env, patients=2)
    server = ServerProcess(env, folder / "serve.log")
    server.start()
    running = Service(server, database_url)
    try:
        yield running
    finally:
        for client in running.clients.values():
            client.close()
        server.stop()
        databases.drop_all()
        traces = [line for line in server.log_text().splitlines() if "Traceback" in line]
        assert not traces, server.log_text()[-4000:]


ROUTES = _post_routes()


@settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    route=st.sampled_from(ROUTES),
    caller=st.sampled_from(sorted(CALLERS)),
    thread_choice=st.integers(min_value=0, max_value=7),
    form=st.dictionaries(
        st.sampled_from(FIELDS) | st.text(max_size=12),
        st.sampled_from(NASTY) | st.text(max_size=200),
        max_size=6,
    ),
    with_csrf=st.booleans(),
)
def test_random_forms_never_fail_and_refusals_change_nothing(
    service: Service,
    route: str,
    caller: str,
    thread_choice: int,
    form: dict[str, str],
    with_csrf: bool,
) -> None:
    client = service.client(caller)
    threads = service.thread_ids()
    thread_id = (
        str(threads[thread_choice]) if thread_choice < len(threads) else str(10_000 + thread_choice)
    )
    path = re.sub(r"\{thread_id(:[a-z]+)?\}", thread_id, route)
    path = re.sub(r"\{[a-z_]+(:[a-z]+)?\}", "x" * (thread_choice + 1), path)
    headers = {} if with_csrf else {"X-CSRF-Token": ""}
    before = service.snapshot()
    answer = client.post(path, data=form, headers=headers, follow_redirects=False)
    assert answer.status_code < 500, (path, caller, form, answer.text[:500])
    if answer.status_code >= 400:
        assert service.snapshot() == before, (path, caller, form, answer.status_code)
    if not with_csrf:
        assert answer.status_code == 403, (path, caller, answer.status_code)
