"""End-to-end fixtures: the real service in a subprocess, driven by headless Chromium.

These fixtures stand alone: they do not use the database fixtures of `tests/conftest.py`. The
service gets its own database (a fresh SQLite file, or the caller's PostgreSQL database with its
`public` schema wiped first), the demo accounts, and a free loopback port.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from service_support import create_demo_data, free_port, is_healthy, stop_process

from .helpers import CHROMIUM, browser_contexts, log_in, require_browser

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 60
# Extra patients of Dr Martin (patient-0001@demo.colloque.test, ...), so that tests which open
# requests do not use up the demo patients' quotas.
LOAD_TEST_PATIENTS = 2
SERVER_LOG = pytest.StashKey[Path]()
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def _is_postgres(url: str) -> bool:
    return url.startswith(("postgres://", "postgresql://", "asyncpg://"))


def _reset_postgres(url: str) -> None:
    """Drop everything in the database's `public` schema: each run starts from nothing."""
    import asyncpg

    dsn = "postgresql://" + url.split("://", 1)[1]

    async def reset() -> None:
        connection = await asyncpg.connect(dsn)
        try:
            await connection.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        finally:
            await connection.close()

    # In a thread of its own: Playwright's sync API may already run an event loop in this one.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, reset()).result(timeout=60)


def _service_environment(tmp_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    caller_url = env.get("DATABASE_URL", "")
    if _is_postgres(caller_url):
        _reset_postgres(caller_url)
        env["DATABASE_URL"] = caller_url
    else:
        env["DATABASE_URL"] = f"sqlite://{tmp_dir / 'e2e.sqlite3'}"
    # One process running everything, background workers included.
    env.pop("REDIS_URL", None)
    env.pop("PORT", None)
    env["COLLOQUE_ENV"] = "development"
    env["PYTHONUNBUFFERED"] = "1"
    return env


# Package scope: in a full `pytest` run the service stops once tests/e2e/ is done, before the other
# tests reset a shared PostgreSQL database under it.
@pytest.fixture(scope="package")
def live_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Base URL of a running `colloque serve` with the demo data, stopped after these tests."""
    tmp_dir = tmp_path_factory.mktemp("e2e")
    env = _service_environment(tmp_dir)
    create_demo_data(env, LOAD_TEST_PATIENTS)

    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log_path = tmp_dir / "serve.log"
    request.config.stash[SERVER_LOG] = log_path
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "server.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not is_healthy(f"{base_url}/healthz"):
            if server.poll() is not None or time.monotonic() > deadline:
                log_text = log_path.read_text(errors="replace")
                pytest.fail(f"`colloque serve` did not become healthy:\n{log_text}", pytrace=False)
            time.sleep(0.2)
        yield base_url
    finally:
        # Exactly the process started above, by its pid.
        stop_process(server)


@pytest.fixture(autouse=True)
def _no_server_errors(live_server: str, request: pytest.FixtureRequest) -> Iterator[None]:
    """A traceback in the service's log while a test ran fails that test, even if pages looked
    fine."""
    log_path = request.config.stash[SERVER_LOG]
    start = log_path.stat().st_size
    yield
    with log_path.open("rb") as log:
        log.seek(start)
        written = log.read().decode(errors="replace")
    if "Traceback (most recent call last)" in written:
        pytest.fail(f"the service logged an error during this test:\n{written}", pytrace=False)


# Package scope as well: Playwright's sync API holds an event loop in this thread until it stops,
# which the asyncio tests outside tests/e2e/ cannot share.
@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    require_browser()
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        playwright.stop()


@pytest.fixture
def new_context(live_server: str, browser: Browser) -> Iterator[Callable[..., BrowserContext]]:
    """Opens isolated browser contexts (one per person) on the service; all closed afterwards."""
    yield from browser_contexts(browser, live_server)


@pytest.fixture
def login(new_context: Callable[..., BrowserContext]) -> Callable[..., Page]:
    """`login(email, **context_options)`: a logged-in page in a fresh context."""

    def open_as(email: str, **options: Any) -> Page:
        return log_in(new_context(**options), email)

    return open_as
