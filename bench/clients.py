"""Load-generator clients: raw SSE and WebSocket readers that time every delivery."""

from __future__ import annotations

import asyncio
import base64
import multiprocessing
import multiprocessing.connection
import os
import re
import socket
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

import httpx

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


class RawPoster:
    """Posts forms over kept-alive connections with a logged-in client's cookie and CSRF token.

    It does what the benchmark's senders need and nothing else, for a small part of httpx's
    CPU per request (about 2 ms there): the load generator shares the two cores with the
    servers it measures, and the clock starts before the request is built.
    """

    def __init__(self, client: httpx.AsyncClient, port: int | None = None) -> None:
        """`port`: another server process than the client's, sessions being valid on all."""
        self.host = client.base_url.host
        self.port = port or client.base_url.port or 80
        self.headers = (
            f"Host: {self.host}:{self.port}\r\nCookie: {cookie_header(client)}\r\n"
            f"X-CSRF-Token: {client.headers['X-CSRF-Token']}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
        )
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def post(self, path: str, form: dict[str, str]) -> int:
        """The answer's status code; the answer's body is read and dropped."""
        body = urlencode(form).encode()
        request = (
            f"POST {path} HTTP/1.1\r\n{self.headers}Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        while self._idle:
            reader, writer = self._idle.pop()
            try:
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                break
            except (asyncio.IncompleteReadError, ConnectionError):
                # The server closed it while idle (its keep-alive timeout), as browsers see too.
                writer.close()
        else:
            reader, writer = await asyncio.open_connection(self.host, self.port)
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
        if length:
            await reader.readexactly(int(length.group(1)))
        if re.search(rb"(?i)\r\nconnection: *close", head):
            writer.close()
        else:
            self._idle.append((reader, writer))
        return status

    def close(self) -> None:
        for _, writer in self._idle:
            writer.close()
        self._idle.clear()


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


class _FrameReader(asyncio.Protocol):
    """A WebSocket client reduced to what the benchmark needs: after the handshake, unmasked
    server frames are cut out of the byte stream and handed to the tally; pings are answered.
    The websockets library costs several times more CPU per frame, and the load generator
    shares the machine with the servers it measures."""

    def __init__(self, tally: Tally, slow_until: float) -> None:
        self.tally = tally
        self.slow_until = slow_until
        self.buffer = bytearray()
        self.upgraded = False
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        if not self.upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buffer.startswith(b"HTTP/1.1 101"):
                self._close()
                return
            self.upgraded = True
            del buffer[: end + 4]
        position = 0
        while len(buffer) - position >= 2:
            opcode, length = buffer[position] & 0x0F, buffer[position + 1] & 0x7F
            start = position + 2
            if length == 126:
                if len(buffer) < start + 2:
                    break
                length = int.from_bytes(buffer[start : start + 2], "big")
                start += 2
            elif length == 127:
                if len(buffer) < start + 8:
                    break
                length = int.from_bytes(buffer[start : start + 8], "big")
                start += 8
            if len(buffer) < start + length:
                break
            position = start + length
            if opcode in (0, 1, 2):
                self.tally.take(bytes(buffer[start:position]))
            elif opcode == 8:
                self._close()
                return
            elif opcode == 9 and self.transport is not None:
                self.transport.write(_masked(0xA, bytes(buffer[start:position])))
        del buffer[:position]
        if self.slow_until and time.time() < self.slow_until and self.transport is not None:
            # A client too slow for the load: a few KiB every 50 ms.
            self.transport.pause_reading()
            asyncio.get_running_loop().call_later(0.05, self._resume)

    def _resume(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def _masked(opcode: int, payload: bytes) -> bytes:
    """A client frame (clients must mask, the mask may be zero)."""
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + b"\0\0\0\0" + payload


async def ws_reader(
    url: str,
    origin: str,
    cookie: str,
    tally: Tally,
    stop: asyncio.Event,
    slow_until: float = 0.0,
) -> None:
    """Reads `WS /ws`, resuming with ?after= from the last cursor when the server closes it.

    Until `slow_until` (a time.time() value) it reads a few KiB every 50 ms: a client too slow
    for the load, which the server must disconnect and which must then catch up.
    """
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        after = f"?after={tally.cursor}" if tally.cursor else ""
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {parts.path}{after} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Origin: {origin}\r\nCookie: {cookie}\r\n\r\n"
        )
        try:
            sock = socket.socket()
            sock.setblocking(False)
            if slow_until:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            await loop.sock_connect(sock, (host, port))
            transport, reader = await loop.create_connection(
                lambda: _FrameReader(tally, slow_until), sock=sock
            )
        except OSError:
            await asyncio.sleep(0.2)
            continue
        transport.write(request.encode())
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait((reader.done, stopping), return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        transport.close()
        if not stop.is_set():
            tally.reconnects += 1
            await asyncio.sleep(0.05)


#: ("sse", host, port, cookie) or ("ws", url, origin, cookie, slow_until)
ReaderSpec = tuple[object, ...]


def _reader_process(specs: list[ReaderSpec], pipe: multiprocessing.connection.Connection) -> None:
    async def main() -> None:
        stop = asyncio.Event()
        tallies = [Tally() for _ in specs]
        tasks = []
        for spec, tally in zip(specs, tallies, strict=True):
            if spec[0] == "sse":
                _, host, port, cookie = spec
                reader = sse_reader(str(host), int(str(port)), str(cookie), tally, stop)
            else:
                _, url, origin, cookie, slow_until = spec
                reader = ws_reader(
                    str(url), str(origin), str(cookie), tally, stop, float(str(slow_until))
                )
            tasks.append(asyncio.create_task(reader))
        await asyncio.get_running_loop().run_in_executor(None, pipe.recv)
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        pipe.send([(t.received, t.duplicates, t.reconnects) for t in tallies])

    asyncio.run(main())


class ReaderProcess:
    """The readers in a process of their own: their timestamps do not wait behind the senders'
    HTTP work in one event loop, and the generator can use both cores."""

    def __init__(self, specs: list[ReaderSpec]) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        self._process = context.Process(target=_reader_process, args=(specs, child), daemon=True)
        self._process.start()

    async def stop(self, tallies: list[Tally]) -> None:
        """Stop reading and fill `tallies` (same order as the specs) with what was read."""
        self._pipe.send("stop")
        loop = asyncio.get_running_loop()
        results = await loop.run_in_executor(None, self._pipe.recv)
        await loop.run_in_executor(None, self._process.join)
        for tally, (received, duplicates, reconnects) in zip(tallies, results, strict=True):
            tally.received, tally.duplicates, tally.reconnects = received, duplicates, reconnects
