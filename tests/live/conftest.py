"""Live-update fixtures: real `colloque serve` processes, each group on a database of its own.

- `inprocess_cluster`: one process, no REDIS_URL (in-process broker).
- `redis_cluster`: one process with REDIS_URL pointing at a private redis-server.
- `pair_cluster`: two processes sharing PostgreSQL and one private redis-server (scale-out);
  skipped unless DATABASE_URL is a PostgreSQL URL.
- `cluster`: the first two in turn, so that the same test bodies run on both broker backends.

The database is SQLite in a temporary folder, or, when DATABASE_URL is PostgreSQL, a database
created next to it for these tests and dropped afterwards. Redis is never the shared instance: each
group that needs one starts its own on a free loopback port, and stops it by its pid.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from server.live.connection import SEND_BUFFER
from server.streams import MAX_REPLAY

from .support import (
    ALICE_MARTIN_SUBJECT,
    CHLOE,
    MARTIN,
    PASSWORD,
    RUNNING,
    Cluster,
    Databases,
    Person,
    RedisProcess,
    StalledSocket,
    caller_postgres_url,
    cursor_of,
    start_cluster,
    token,
    wait_until,
)

Login = Callable[..., Awaitable[Person]]


@pytest.fixture(scope="package")
def live_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("live")


@pytest.fixture(scope="package")
def databases(live_folder: Path) -> Iterator[Databases]:
    found = Databases(live_folder)
    try:
        yield found
    finally:
        found.drop_all()


class PingWatcher:
    """Chloé's SSE stream read by a plain thread for the whole package: the heartbeat test then
    needs no 15-second wait of its own. Not Alice's: a test logs Alice out everywhere, which
    rightly ends every one of her streams."""

    def __init__(self, base_url: str) -> None:
        self.started = time.monotonic()
        self.comments: list[tuple[float, str]] = []
        self.status_line = ""
        self._stop = threading.Event()
        with httpx.Client(base_url=base_url, timeout=10) as client:
            page = client.get("/login")
            csrf = re.search(r'csrf-token" content="([^"]+)"', page.text)
            assert csrf
            answer = client.post(
                "/login", data={"email": CHLOE, "password": PASSWORD, "csrf_token": csrf[1]}
            )
            assert answer.status_code == 303
            cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
        port = int(base_url.rsplit(":", 1)[1])
        self._sock = socket.create_connection(("127.0.0.1", port), timeout=0.5)
        self._sock.sendall(
            f"GET /events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n"
            f"Cookie: {cookie}\r\n\r\n".encode()
        )
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        pending = b""
        while not self._stop.is_set():
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not chunk:
                return
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                line = raw.decode(errors="replace").rstrip("\r")
                if not self.status_line:
                    self.status_line = line
                if line.startswith(":"):
                    self.comments.append((time.monotonic() - self.started, line[1:].strip()))

    def stop(self) -> None:
        self._stop.set()
        self._sock.close()
        self._thread.join(timeout=5)


@pytest.fixture(scope="package")
def inprocess_cluster(live_folder: Path, databases: Databases) -> Iterator[Cluster]:
    cluster = start_cluster("inprocess", live_folder, databases.new("inprocess"), 1, None)
    watcher = PingWatcher(cluster.base_url)
    cluster.facts["ping_watcher"] = watcher
    try:
        yield cluster
    finally:
        watcher.stop()
        cluster.stop()


@contextlib.contextmanager
def _cluster_with_redis(
    name: str, live_folder: Path, databases: Databases, processes: int
) -> Iterator[Cluster]:
    """`processes` servers sharing a private Redis; the cluster stops its Redis with it."""
    redis = RedisProcess(live_folder)
    redis.start()
    try:
        cluster = start_cluster(name, live_folder, databases.new(name), processes, redis)
    except BaseException:
        redis.stop()
        raise
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="package")
def redis_cluster(live_folder: Path, databases: Databases) -> Iterator[Cluster]:
    with _cluster_with_redis("redis", live_folder, databases, 1) as cluster:
        yield cluster


@pytest.fixture(scope="package")
def pair_cluster(live_folder: Path, databases: Databases) -> Iterator[Cluster]:
    if caller_postgres_url() is None:
        pytest.skip("scale-out needs a shared PostgreSQL: run with DATABASE_URL=postgres://...")
    with _cluster_with_redis("pair", live_folder, databases, 2) as cluster:
        yield cluster


@pytest.fixture(params=["inprocess", "redis"])
def cluster(request: pytest.FixtureRequest) -> Cluster:
    """Each broker backend in turn, with the same test body."""
    found: Cluster = request.getfixturevalue(f"{request.param}_cluster")
    return found


@pytest.fixture
async def people() -> AsyncIterator[Login]:
    """`await people(base_url, email)`: one more browser, logged in; all closed afterwards.

    `same_session_as=person` gives that person's session (cookie and CSRF token) to a browser
    talking to `base_url`, possibly another server process, instead of logging in again.
    """
    made: list[Person] = []

    async def login(base_url: str, email: str, same_session_as: Person | None = None) -> Person:
        if same_session_as is not None:
            person = same_session_as.elsewhere(base_url)
            made.append(person)
            return person
        person = Person(base_url, email)
        made.append(person)
        return await person.login()

    try:
        yield login
    finally:
        for person in made:
            await person.close()


@pytest.fixture(autouse=True)
def _no_server_tracebacks() -> Iterator[None]:
    """A traceback in a server's log while a test ran fails that test, even if it looked fine."""
    start = {server: server.log_size() for server in RUNNING}
    yield
    for server in list(RUNNING):
        written = server.log_text(start.get(server, 0))
        if "Traceback (most recent call last)" in written:
            pytest.fail(
                f"{server.base_url} logged an error during this test:\n{written[-6000:]}",
                pytrace=False,
            )


# --- one flood of messages per group of servers, shared by the tests that need many events ---

HUGE_PADDING = '"' * 4900
# What an escaped huge message weighs on the wire (each '"' becomes '&#34;').
HUGE_BYTES = len(HUGE_PADDING) * 5


def _socket_buffer_bytes() -> int:
    """The most a socket's send buffer may grow to (4 MB by default on Linux)."""
    try:
        return int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    except (OSError, ValueError, IndexError):
        return 4 * 1024 * 1024


# The first messages are as large as a message may be, made of characters that grow fivefold
# when escaped: they fill the operating system's socket buffers in front of a client that does
# not read (with 2 MB to spare), so that the server's own per-client limit is what decides. The
# rest are small, to be quick; there are enough of them to exceed the server's send buffer
# (SEND_BUFFER) and the replay limit (MAX_REPLAY).
FLOOD_HUGE = math.ceil((_socket_buffer_bytes() + 2 * 1024 * 1024) / HUGE_BYTES)
FLOOD_COUNT = max(FLOOD_HUGE + SEND_BUFFER + 50, MAX_REPLAY + 20)
POSTERS = 4


@dataclass
class Flood:
    run: str
    #: Id of the event of a message posted just before the flood.
    marker_id: int
    #: Ids of the flood's events, in order.
    event_ids: list[int]
    #: How many times the reading client received each flood message, by number.
    received: dict[int, int]
    #: Seconds from the last post's answer to the last message on the reading client.
    lag: float
    stalled_received: int
    stalled_close_code: int | None
    stalled_ended: bool


@pytest.fixture
async def flood(cluster: Cluster, people: Login) -> Flood:
    """Dr Martin posts FLOOD_COUNT messages in Alice's thread (once per group of servers) while a
    second tab of his reads its WebSocket and a third never reads its own."""
    cached = cluster.facts.get("flood")
    if isinstance(cached, Flood):
        return cached
    martin = await people(cluster.base_url, MARTIN)
    thread = await martin.thread_id(ALICE_MARTIN_SUBJECT)
    stalled = StalledSocket(cluster.base_url, martin.cookie_header)
    try:
        reader = await martin.ws()
        marker = token()
        await martin.say(thread, marker)
        await wait_until(lambda: bool(reader.having(marker)), what="the marker")
        marker_id = cursor_of(reader.having(marker)[0])
        assert marker_id is not None

        run = token()
        posters = [await people(cluster.base_url, MARTIN) for _ in range(POSTERS)]

        async def post_share(poster: Person, first: int) -> None:
            for number in range(first, FLOOD_COUNT, POSTERS):
                padding = HUGE_PADDING if number < FLOOD_HUGE else ""
                await poster.say(thread, f"{run}-{number:04d}. {padding}")

        await asyncio.gather(*(post_share(p, i) for i, p in enumerate(posters)))
        posted_at = time.monotonic()
        pattern = re.compile(rf"{run}-(\d{{4}})\.")

        def numbers(frames: list[str]) -> list[int]:
            return [int(n) for frame in frames for n in pattern.findall(frame)]

        await wait_until(
            lambda: len(set(numbers(reader.frames))) >= FLOOD_COUNT,
            within=30,
            what="the reading client to receive the whole flood",
        )
        last_seen = max(
            stamp for stamp, frame in zip(reader.stamps, reader.frames, strict=True) if run in frame
        )
        received: dict[int, int] = {}
        for number in numbers(reader.frames):
            received[number] = received.get(number, 0) + 1
        event_ids = sorted(
            cursor
            for frame in reader.frames
            if run in frame and (cursor := cursor_of(frame)) is not None
        )
        frames, close_code, ended = stalled.read_all(quiet_seconds=3.0)
    finally:
        stalled.close()
    result = Flood(
        run=run,
        marker_id=marker_id,
        event_ids=event_ids,
        received=received,
        lag=last_seen - posted_at,
        stalled_received=len(set(numbers(frames))),
        stalled_close_code=close_code,
        stalled_ended=ended,
    )
    cluster.facts["flood"] = result
    return result
