"""Load-generator clients: raw SSE and WebSocket readers that time every delivery."""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field

import httpx
import websockets

TOKEN = re.compile(rb"bench:(\d+):")
CURSOR = re.compile(rb'id="live-cursor" hx-swap-oob="true" data-after="(\d+)"')


@dataclass
class Tally:
    """What one client received: delivery time per message token, duplicates, reconnects."""

    received: dict[int, float] = field(default_factory=dict)
    duplicates: int = 0
    reconnects: int = 0
    cursor: int = 0

    def take(self, chunk: bytes) -> None:
        now = time.time()
        for match in TOKEN.finditer(chunk):
            token = int(match.group(1))
            if token in self.received:
                self.duplicates += 1
            else:
                self.received[token] = now
        for match in CURSOR.finditer(chunk):
            self.cursor = max(self.cursor, int(match.group(1)))


DEMO_PASSWORD = "colloque-demo"  # noqa: S105 - the published demo password


async def login(base: str, email: str, password: str = DEMO_PASSWORD) -> httpx.AsyncClient:
    """A logged-in HTTP client with its CSRF token in `client.headers`."""
    client = httpx.AsyncClient(base_url=base, timeout=30)
    page = await client.get("/login")
    token = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert token is not None
    answer = await client.post(
        "/login", data={"email": email, "password": password, "csrf_token": token.group(1)}
    )
    assert answer.status_code == 303, (email, answer.status_code)
    home = await client.get(answer.headers["location"])
    token = re.search(r'name="csrf-token" content="([^"]+)"', home.text)
    assert token is not None
    client.headers["X-CSRF-Token"] = token.group(1)
    return client


def cookie_header(client: httpx.AsyncClient) -> str:
    return "; ".join(f"{name}={value}" for name, value in client.cookies.items())


async def sse_reader(host: str, port: int, cookie: str, tally: Tally, stop: asyncio.Event) -> None:
    """Reads `GET /events` over a raw socket (cheap for the generator), resuming on reconnect."""
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            await asyncio.sleep(0.2)
            continue
        resume = f"Last-Event-ID: {tally.cursor}\r\n" if tally.cursor else ""
        writer.write(
            f"GET /events HTTP/1.1\r\nHost: {host}:{port}\r\nCookie: {cookie}\r\n"
            f"Accept: text/event-stream\r\n{resume}\r\n".encode()
        )
        try:
            while not stop.is_set():
                chunk = await reader.read(65536)
                if not chunk:
                    break
                tally.take(chunk)
        except OSError:
            pass
        finally:
            writer.close()
        if not stop.is_set():
            tally.reconnects += 1


async def ws_reader(
    url: str,
    origin: str,
    cookie: str,
    tally: Tally,
    stop: asyncio.Event,
    slow_until: float = 0.0,
) -> None:
    """Reads `WS /ws`, resuming with ?after= from the last cursor when the server closes it.

    Until `slow_until` (a time.time() value) it reads one frame every 50 ms: a client too slow
    for the load, which the server must disconnect and which must then catch up.
    """
    while not stop.is_set():
        after = f"?after={tally.cursor}" if tally.cursor else ""
        try:
            async with websockets.connect(
                url + after,
                additional_headers={"Cookie": cookie, "Origin": origin},
                compression=None,
                max_size=None,
                ping_interval=None,
            ) as socket:
                while not stop.is_set():
                    if time.time() < slow_until:
                        await asyncio.sleep(0.05)
                    try:
                        message = await asyncio.wait_for(socket.recv(), timeout=0.5)
                    except TimeoutError:
                        continue
                    tally.take(message.encode() if isinstance(message, str) else message)
        except (OSError, websockets.WebSocketException):
            await asyncio.sleep(0.05)
        if not stop.is_set():
            tally.reconnects += 1
