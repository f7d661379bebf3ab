"""Real `colloque serve` processes, a private Redis, and clients that read their live streams.

Everything here talks to the service the way a browser or an attacker would: HTTP with cookies
and CSRF tokens, Server-Sent Events, WebSockets (and a raw socket for a client that never reads).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
import websockets
from service_support import create_demo_data, free_port, is_healthy, stop_process
from websockets.asyncio.client import ClientConnection

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "colloque-demo"
SECRET_KEY = "colloque-live-tests-secret-key-0123456789abcdef"

ALICE = "alice@demo.colloque.test"
BOB = "bob@demo.colloque.test"
CHLOE = "chloe@autre.colloque.test"
MARTIN = "dr.martin@demo.colloque.test"
BERNARD = "dr.bernard@demo.colloque.test"
PETIT = "dr.petit@autre.colloque.test"
SECRETARIAT = "secretariat@demo.colloque.test"

ALICE_MARTIN_SUBJECT = "Renouvellement de mon traitement pour la tension"
CHLOE_PETIT_SUBJECT = "Vaccin contre la grippe"

STARTUP_SECONDS = 60
# How long a live update may take to arrive. The hub is woken by the broker at once; its poll
# (2 s) is only the safety net, so a healthy delivery is far quicker than this.
DELIVERY_SECONDS = 5.0


# --- environment ---------------------------------------------------------------------------


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


def unavailable(reason: str) -> None:
    """Skip for lack of a service; under CI=true a missing service is a failure."""
    if in_ci():
        pytest.fail(f"{reason} (required under CI=true)", pytrace=False)
    pytest.skip(reason)


def is_postgres(url: str) -> bool:
    return url.startswith(("postgres://", "postgresql://", "asyncpg://"))


def caller_postgres_url() -> str | None:
    url = os.environ.get("DATABASE_URL", "")
    return url if is_postgres(url) else None


def token() -> str:
    """A unique word to find one message among everything a stream carries."""
    return f"tok{uuid.uuid4().hex[:12]}"


def _run_async(coroutine: Any) -> Any:
    """Run a coroutine from synchronous fixture code, on a loop of its own in another thread."""
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result(timeout=60)


class Databases:
    """One fresh database per group of servers: a SQLite file, or a PostgreSQL database created
    next to the caller's (so that other test runs wiping the caller's database cannot disturb
    ours, and ours never touch theirs). Dropped at the end."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.caller = caller_postgres_url()
        self._created: list[str] = []

    def _admin_dsn(self) -> str:
        assert self.caller is not None
        return "postgresql://" + self.caller.split("://", 1)[1]

    def new(self, name: str) -> str:
        if self.caller is None:
            path = self.folder / f"{name}.sqlite3"
            for stale in self.folder.glob(f"{name}.sqlite3*"):
                stale.unlink()
            return f"sqlite://{path}"
        import asyncpg

        parts = urlsplit(self.caller)
        base = parts.path.lstrip("/") or "postgres"
        database = f"{base}_live_{name}_{os.getpid()}"

        async def create() -> None:
            connection = await asyncpg.connect(self._admin_dsn(), timeout=10)
            try:
                await connection.execute(f'DROP DATABASE IF EXISTS "{database}"')
                await connection.execute(f'CREATE DATABASE "{database}"')
            finally:
                await connection.close()

        try:
            _run_async(create())
        except (OSError, asyncpg.PostgresError) as error:
            unavailable(f"PostgreSQL at {parts.hostname}:{parts.port} is not usable: {error}")
        self._created.append(database)
        return urlunsplit(parts._replace(path=f"/{database}"))

    def drop_all(self) -> None:
        if not self._created:
            return
        import asyncpg

        async def drop() -> None:
            connection = await asyncpg.connect(self._admin_dsn(), timeout=10)
            try:
                for database in self._created:
                    await connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            finally:
                await connection.close()

        _run_async(drop())
        self._created.clear()


class RedisProcess:
    """A private redis-server on a free loopback port; never the shared one."""

    def __init__(self, folder: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            unavailable("redis-server is not installed")
        self.binary = str(binary)
        self.port = free_port()
        self.log_path = folder / f"redis-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
        ]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while not self.answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                unavailable(f"redis-server did not start: {self.log_path.read_text()[-2000:]}")
            time.sleep(0.05)

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as probe:
                probe.sendall(b"PING\r\n")
                return probe.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, timeout=10)
        self.process = None


class ServerProcess:
    """One `colloque serve` process."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.port = free_port()
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def start(self) -> None:
        command = [sys.executable, "-m", "server.cli", "serve", "--host", "127.0.0.1"]
        command += ["--port", str(self.port)]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + STARTUP_SECONDS
        while not is_healthy(f"{self.base_url}/healthz"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"`colloque serve` did not become healthy:\n{self.log_text()[-4000:]}",
                    pytrace=False,
                )
            time.sleep(0.1)

    def log_text(self, start: int = 0) -> str:
        with self.log_path.open("rb") as log:
            log.seek(start)
            return log.read().decode(errors="replace")

    def log_size(self) -> int:
        return self.log_path.stat().st_size

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, timeout=10)
        self.process = None


#: Every server these tests started, so that each test can check their logs for tracebacks.
RUNNING: list[ServerProcess] = []


@dataclass
class Cluster:
    """Server processes sharing one database (and one Redis, if any)."""

    name: str
    database_url: str
    servers: list[ServerProcess]
    redis: RedisProcess | None = None
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return self.servers[0].base_url

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
            with contextlib.suppress(ValueError):
                RUNNING.remove(server)
        if self.redis is not None:
            self.redis.stop()


def start_cluster(
    name: str, folder: Path, database_url: str, processes: int, redis: RedisProcess | None
) -> Cluster:
    env = dict(os.environ)
    for variable in ("PORT", "REDIS_URL", "DATABASE_URL"):
        env.pop(variable, None)
    env.update(
        DATABASE_URL=database_url,
        SECRET_KEY=SECRET_KEY,
        COLLOQUE_ENV="development",
        PYTHONUNBUFFERED="1",
    )
    if redis is not None:
        env["REDIS_URL"] = redis.url
    create_demo_data(env)
    cluster = Cluster(name, database_url, [], redis)
    try:
        for number in range(processes):
            server = ServerProcess(env, folder / f"{name}-serve-{number}.log")
            cluster.servers.append(server)
            RUNNING.append(server)
            server.start()
    except BaseException:
        cluster.stop()
        raise
    return cluster


# --- reading fragments ---------------------------------------------------------------------

_MESSAGE_ID = re.compile(r'data-message-id="(\d+)"')
_CURSOR = re.compile(r'id="live-cursor"[^>]*data-after="(\d+)"')
_CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def message_ids(html: str) -> list[int]:
    return [int(found) for found in _MESSAGE_ID.findall(html)]


def cursor_of(html: str) -> int | None:
    found = _CURSOR.findall(html)
    return int(found[-1]) if found else None


_ELEMENT = re.compile(r'<(\w+)\b[^>]*\bdata-message-id="(\d+)"[^>]*>(.*?)</\1\s*>', re.S)


def message_elements(html: str, text: str) -> list[int]:
    """Ids of the elements carrying `data-message-id` whose own content contains `text`."""
    return [int(found[2]) for found in _ELEMENT.finditer(html) if text in found[3]]


def the_message(updates: list[str], text: str) -> int:
    """The id of the one message element, across all `updates`, that contains `text`."""
    found = [ident for update in updates for ident in message_elements(update, text)]
    assert len(found) == 1, f"expected one message element with {text!r}, got {found}"
    return found[0]


def is_reset(html: str) -> bool:
    return 'id="live-reset"' in html and "data-reload" in html


async def wait_until(
    condition: Callable[[], bool], within: float = DELIVERY_SECONDS, what: str = "condition"
) -> float:
    """Poll `condition` until true; returns the seconds it took; fails after `within` s."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > within:
            raise AssertionError(f"timed out after {within:.1f} s waiting for {what}")
        await asyncio.sleep(0.02)
    return time.monotonic() - start


# --- streams -------------------------------------------------------------------------------


@dataclass
class SSEEvent:
    id: str | None
    event: str | None
    data: str
    at: float


class SSEStream:
    """One `GET /events` read in the background, parsed as the EventSource API would."""

    def __init__(self, http: httpx.AsyncClient, path: str, headers: dict[str, str]) -> None:
        self.http = http
        self.path = path
        self.headers = headers
        self.status: int | None = None
        self.content_type = ""
        self.body = ""
        self.events: list[SSEEvent] = []
        self.comments: list[str] = []
        self.retry: int | None = None
        self.ended_at: float | None = None
        #: When the response's headers arrived: the stream is open from then on.
        self.opened_at: float | None = None
        self.error: BaseException | None = None
        self._opened = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def open(self) -> SSEStream:
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self._opened.wait(), DELIVERY_SECONDS)
        if self.error is not None:
            raise self.error
        return self

    async def _run(self) -> None:
        timeout = httpx.Timeout(DELIVERY_SECONDS, read=None)
        try:
            async with self.http.stream(
                "GET", self.path, headers=self.headers, timeout=timeout
            ) as response:
                self.status = response.status_code
                self.opened_at = time.monotonic()
                self.content_type = response.headers.get("content-type", "")
                self._opened.set()
                if response.status_code != 200:
                    self.body = (await response.aread()).decode(errors="replace")
                    return
                ident: str | None = None
                kind: str | None = None
                data: list[str] = []
                async for line in response.aiter_lines():
                    if line == "":
                        if data or ident is not None:
                            self.events.append(
                                SSEEvent(ident, kind, "\n".join(data), time.monotonic())
                            )
                        ident, kind, data = None, None, []
                    elif line.startswith(":"):
                        self.comments.append(line[1:].strip())
                    else:
                        name, _, value = line.partition(":")
                        value = value.removeprefix(" ")
                        if name == "id":
                            ident = value
                        elif name == "event":
                            kind = value
                        elif name == "data":
                            data.append(value)
                        elif name == "retry" and value.isdigit():
                            self.retry = int(value)
        except (httpx.HTTPError, OSError) as error:
            self.error = error
        finally:
            self.ended_at = time.monotonic()
            self._opened.set()

    @property
    def ended(self) -> bool:
        return self.ended_at is not None

    @property
    def updates(self) -> list[str]:
        return [event.data for event in self.events]

    @property
    def last_id(self) -> str | None:
        ids = [event.id for event in self.events if event.id is not None]
        return ids[-1] if ids else None

    def having(self, text: str) -> list[SSEEvent]:
        return [event for event in self.events if text in event.data]

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


_EVENT_END = re.compile(r'(<span id="live-cursor"[^>]*></span>)')


def event_updates(frame: str) -> list[str]:
    """The server writes what queued up for a client in one frame; each event's fragment ends
    with its cursor span. Split back into one update per event (an ephemeral update, which has
    no cursor, stays with the event after it)."""
    pieces = _EVENT_END.split(frame)
    updates = [pieces[i] + pieces[i + 1] for i in range(0, len(pieces) - 1, 2)]
    if pieces[-1]:
        updates.append(pieces[-1])
    return updates


class WSStream:
    """One `WS /ws` connection whose updates are collected in the background: `frames` holds
    one entry per event (see `event_updates`)."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        #: The handshake is complete: the stream is open from then on.
        self.opened_at = time.monotonic()
        self.frames: list[str] = []
        #: When each frame arrived (time.monotonic()).
        self.stamps: list[float] = []
        self.ended_at: float | None = None
        self.close_code: int | None = None
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        try:
            async for frame in self.connection:
                stamp = time.monotonic()
                for update in event_updates(frame if isinstance(frame, str) else frame.decode()):
                    self.frames.append(update)
                    self.stamps.append(stamp)
        except websockets.ConnectionClosed:
            pass
        finally:
            self.close_code = self.connection.close_code
            self.ended_at = time.monotonic()

    @property
    def ended(self) -> bool:
        return self.ended_at is not None

    def having(self, text: str) -> list[str]:
        return [frame for frame in self.frames if text in frame]

    @property
    def last_cursor(self) -> int | None:
        cursors = [cursor_of(frame) for frame in self.frames]
        known = [c for c in cursors if c is not None]
        return known[-1] if known else None

    async def send_json(self, payload: str) -> None:
        await self.connection.send(payload)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.connection.close(), 2)
        if not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


# --- people --------------------------------------------------------------------------------


class Person:
    """One browser (cookie jar) logged in as one demo account."""

    def __init__(self, base_url: str, email: str) -> None:
        self.base_url = base_url
        self.email = email
        self.http = httpx.AsyncClient(base_url=base_url, timeout=10)
        self.csrf = ""
        self.streams: list[SSEStream | WSStream] = []

    async def login(self) -> Person:
        page = await self.http.get("/login")
        found = _CSRF.search(page.text)
        assert found, "the login page carries a CSRF token"
        answer = await self.http.post(
            "/login", data={"email": self.email, "password": PASSWORD, "csrf_token": found[1]}
        )
        assert answer.status_code == 303, f"login of {self.email}: {answer.status_code}"
        home = await self.http.get(answer.headers["location"])
        assert home.status_code == 200
        self.csrf = _CSRF.search(home.text)[1]  # type: ignore[index]
        return self

    def elsewhere(self, base_url: str) -> Person:
        """The same browser (same session cookie) talking to another server process."""
        other = Person(base_url, self.email)
        other.http.cookies.update(self.http.cookies)
        other.csrf = self.csrf
        return other

    @property
    def cookie_header(self) -> str:
        return "; ".join(f"{name}={value}" for name, value in self.http.cookies.items())

    async def thread_id(self, subject: str) -> int:
        """The id of the thread with this subject, as the person's own list shows it."""
        page = await self.http.get("/" if self.email in (ALICE, BOB, CHLOE) else "/inbox")
        assert page.status_code == 200
        for match in re.finditer(r'data-thread-id="(\d+)"(.*?)</li>', page.text, re.S):
            if subject in match[2]:
                return int(match[1])
        raise AssertionError(f"{self.email} does not see a thread {subject!r}")

    async def post(self, thread_id: int, body: str) -> httpx.Response:
        return await self.http.post(
            f"/threads/{thread_id}/messages", data={"body": body, "csrf_token": self.csrf}
        )

    async def say(self, thread_id: int, body: str) -> None:
        answer = await self.post(thread_id, body)
        assert answer.status_code == 303, f"{self.email} posting: {answer.status_code}"

    async def typing(self, thread_id: int) -> httpx.Response:
        return await self.http.post(
            f"/threads/{thread_id}/typing", headers={"X-CSRF-Token": self.csrf}
        )

    async def logout(self) -> httpx.Response:
        return await self.http.post("/logout", data={"csrf_token": self.csrf})

    async def sse(self, *, last_event_id: str | None = None, after: int | None = None) -> SSEStream:
        headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        path = "/events" if after is None else f"/events?after={after}"
        stream = await SSEStream(self.http, path, headers).open()
        self.streams.append(stream)
        return stream

    async def ws(self, *, after: int | None = None, origin: str | None = None) -> WSStream:
        connection = await ws_connect(
            self.base_url, cookie=self.cookie_header, origin=origin, after=after
        )
        stream = WSStream(connection)
        self.streams.append(stream)
        return stream

    async def close(self) -> None:
        for stream in self.streams:
            await stream.close()
        await self.http.aclose()


async def ws_connect(
    base_url: str,
    *,
    cookie: str | None,
    origin: str | None = None,
    after: int | None = None,
    send_origin: bool = True,
) -> ClientConnection:
    url = base_url.replace("http://", "ws://") + "/ws"
    if after is not None:
        url += f"?after={after}"
    headers: dict[str, str] = {}
    if cookie:
        headers["Cookie"] = cookie
    if send_origin:
        headers["Origin"] = origin or base_url
    return await websockets.connect(
        url,
        additional_headers=headers,
        origin=None,
        open_timeout=DELIVERY_SECONDS,
        max_size=None,
        compression=None,
    )


# --- a WebSocket client that never reads ---------------------------------------------------


class StalledSocket:
    """Completes the WebSocket handshake over a raw socket with a tiny receive buffer, then
    reads nothing until told to: what a stalled phone or a malicious client looks like."""

    def __init__(self, base_url: str, cookie: str) -> None:
        parts = urlsplit(base_url)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.settimeout(DELIVERY_SECONDS)
        self.sock.connect((parts.hostname, parts.port))
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET /ws HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Origin: {base_url}\r\nCookie: {cookie}\r\n\r\n"
        )
        self.sock.sendall(request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                break
            head += chunk
        assert head.startswith(b"HTTP/1.1 101"), head[:200]

    def read_all(self, quiet_seconds: float) -> tuple[list[str], int | None, bool]:
        """Read until the server closes or stays quiet: (text frames, close code, ended)."""
        self.sock.settimeout(quiet_seconds)
        buffer = b""
        frames: list[str] = []
        close_code: int | None = None
        ended = False
        consumed = 0
        while not ended:
            try:
                chunk = self.sock.recv(1 << 20)
            except TimeoutError:
                break
            except OSError:
                ended = True
                chunk = b""
            if not chunk:
                ended = True
            buffer += chunk
            for opcode, payload, consumed in _frames(buffer, consumed):  # noqa: B007, B020
                if opcode == 1:
                    frames.append(payload.decode(errors="replace"))
                elif opcode == 8:
                    close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                    ended = True
        return frames, close_code, ended

    def close(self) -> None:
        self.sock.close()


def _frames(buffer: bytes, position: int) -> Iterator[tuple[int, bytes, int]]:
    """Complete unmasked server frames from `position` on: (opcode, payload, next position)."""
    while position + 2 <= len(buffer):
        opcode = buffer[position] & 0x0F
        length = buffer[position + 1] & 0x7F
        start = position + 2
        if length == 126:
            if start + 2 > len(buffer):
                return
            length = struct.unpack("!H", buffer[start : start + 2])[0]
            start += 2
        elif length == 127:
            if start + 8 > len(buffer):
                return
            length = struct.unpack("!Q", buffer[start : start + 8])[0]
            start += 8
        if start + length > len(buffer):
            return
        position = start + length
        yield opcode, buffer[start:position], position


# --- the event log, for the one test that plays the part of a retention job ----------------


async def prune_events_before(database_url: str, event_id: int) -> None:
    """Delete every stream event older than `event_id`, as a retention job would."""
    statements = (
        "DELETE FROM stream_recipient WHERE event_id < {}",
        "DELETE FROM stream_event WHERE id < {}",
    )
    if is_postgres(database_url):
        import asyncpg

        connection = await asyncpg.connect("postgresql://" + database_url.split("://", 1)[1])
        try:
            async with connection.transaction():
                for statement in statements:
                    await connection.execute(statement.format("$1"), event_id)
        finally:
            await connection.close()
        return
    import sqlite3

    def prune() -> None:
        with (
            contextlib.closing(
                sqlite3.connect(database_url.removeprefix("sqlite://"), timeout=10)
            ) as connection,
            connection,
        ):
            for statement in statements:
                connection.execute(statement.format("?"), (event_id,))

    await asyncio.to_thread(prune)
