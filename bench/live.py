"""Live-updates benchmark: two server processes on PostgreSQL + Redis, real SSE and WS clients.

Run: `.venv/bin/python bench/live.py` (about five minutes; `--quick` for a shorter run). It
creates its own PostgreSQL database (`colloque_bench`, or `--database NAME`) and its own
redis-server on a free loopback port, starts the servers, measures, stops everything it
started, and writes bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from clients import (
    RawPoster,
    ReaderProcess,
    ReaderSpec,
    Tally,
    cookie_header,
    login,
    sse_reader,
    ws_reader,
)

ROOT = Path(__file__).resolve().parent.parent
DATABASE = "colloque_bench"
HOST = "127.0.0.1"
MARTIN = "dr.martin@demo.colloque.test"
SECRETARIAT = "secretariat@demo.colloque.test"
#: Closed-loop senders of the queue scenario, each posting as soon as its last answer came back.
#: With more, the single reader process behind the 200 connections is what saturates.
QUEUE_SENDERS = 12


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def psql(sql: str) -> None:
    subprocess.run(
        ["psql", "-q", "-h", HOST, "-U", "postgres", "-d", "postgres", "-c", sql],
        check=True,
        capture_output=True,
    )


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


@dataclass
class Stack:
    env: dict[str, str]
    processes: list[subprocess.Popen[bytes]]
    ports: list[int]


@contextmanager
def services(database: str) -> Iterator[dict[str, str]]:
    """A fresh database and a private Redis, removed afterwards."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", database):
        raise ValueError(f"not a plain database name: {database!r}")
    psql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
    psql(f"CREATE DATABASE {database}")
    redis_port = free_port()
    redis = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(redis_port),
            "--bind",
            HOST,
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
    )
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@{HOST}:5432/{database}",
        "REDIS_URL": f"redis://{HOST}:{redis_port}/0",
        "SECRET_KEY": "bench-secret-key-bench-secret-key-0123456789",
    }
    try:
        yield env
    finally:
        redis.terminate()
        redis.wait()
        psql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


@contextmanager
def servers(
    env: dict[str, str], count: int, logs: Path, ws: str = "websockets-sansio"
) -> Iterator[Stack]:
    ports = [free_port() for _ in range(count)]
    processes = []
    for port in ports:
        log = (logs / f"server-{port}.log").open("wb")
        processes.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "server.cli",
                    "serve",
                    "--host",
                    HOST,
                    "--port",
                    str(port),
                    "--ws",
                    ws,
                    "--no-access-log",
                ],
                env=env,
                cwd=ROOT,
                stdout=log,
                stderr=log,
            )
        )
    try:
        for port in ports:
            deadline = time.time() + 30
            while True:
                try:
                    if httpx.get(f"http://{HOST}:{port}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.time() > deadline:
                    raise RuntimeError(f"server on {port} did not start")
                time.sleep(0.2)
        yield Stack(env, processes, ports)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


def base(port: int) -> str:
    return f"http://{HOST}:{port}"


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def open_threads(stack: Stack, patients: int) -> tuple[list[int], list[httpx.AsyncClient]]:
    """Each of `patients` load-test patients opens a request that Dr Martin accepts."""
    martin = await login(base(stack.ports[0]), MARTIN)
    clients = await asyncio.gather(
        *(
            login(base(stack.ports[n % 2]), f"patient-{n + 1:04d}@demo.colloque.test")
            for n in range(patients)
        )
    )
    thread_ids = []
    for n, client in enumerate(clients):
        answer = await client.post(
            "/threads",
            data={
                "practitioner_id": await practitioner_id(client),
                "category": "question",
                "subject": f"Bench {n}",
                "body": "Bonjour docteur",
            },
        )
        assert answer.status_code == 303, answer.text[:300]
        thread_id = int(answer.headers["location"].rsplit("/", 1)[1])
        accepted = await martin.post(f"/threads/{thread_id}/accept")
        assert accepted.status_code == 303
        thread_ids.append(thread_id)
    await martin.aclose()
    return thread_ids, list(clients)


_PRACTITIONER: dict[str, str] = {}


async def practitioner_id(client: httpx.AsyncClient) -> str:
    if "id" not in _PRACTITIONER:
        page = await client.get("/")
        match = re.search(r'data-practitioner-id="(\d+)"', page.text)
        assert match is not None
        _PRACTITIONER["id"] = match.group(1)
    return _PRACTITIONER["id"]


@dataclass
class Sent:
    token: int
    thread_id: int
    at: float
    ok: bool
    #: When the POST's answer arrived: the part of the latency spent before the fan-out.
    answered: float


async def post(client: RawPoster, thread_id: int, token: int, sent: list[Sent]) -> None:
    started = time.time()
    status = await client.post(
        f"/threads/{thread_id}/messages", {"body": f"Message bench:{token}: suivi"}
    )
    sent.append(Sent(token, thread_id, started, status == 303, time.time()))


def summarise(sent: list[Sent], audiences: dict[int, list[Tally]]) -> dict[str, float]:
    """Latency of every delivery, and what was lost or duplicated, per message and client."""
    latencies, expected, received, duplicates = [], 0, 0, 0
    after_answer: list[float] = []
    for message in sent:
        if not message.ok:
            continue
        for tally in audiences[message.thread_id]:
            expected += 1
            at = tally.received.get(message.token)
            if at is not None:
                received += 1
                latencies.append((at - message.at) * 1000)
                after_answer.append((at - message.answered) * 1000)
    for tally in {id(t): t for ts in audiences.values() for t in ts}.values():
        duplicates += tally.duplicates
    ok = [m for m in sent if m.ok]
    span = (max(m.at for m in ok) - min(m.at for m in ok)) if len(ok) > 1 else 1.0
    answers = [(m.answered - m.at) * 1000 for m in ok]
    return {
        "post_p50": percentile(answers, 0.50),
        "post_p99": percentile(answers, 0.99),
        "after_answer_p50": percentile(after_answer, 0.50),
        "after_answer_p99": percentile(after_answer, 0.99),
        "messages": len(ok),
        "refused": len(sent) - len(ok),
        "deliveries": received,
        "expected": expected,
        "lost": expected - received,
        "duplicated": duplicates,
        "p50": percentile(latencies, 0.50),
        "p95": percentile(latencies, 0.95),
        "p99": percentile(latencies, 0.99),
        "max": max(latencies, default=float("nan")),
        "deliveries_per_s": received / span if span else float("nan"),
        "messages_per_s": len(ok) / span if span else float("nan"),
    }


async def fanout(stack: Stack, seconds: float, rate: float) -> dict[str, float]:
    """1,000 clients in 100 conversations, 100 messages a second through the full path."""
    thread_ids, patients = await open_threads(stack, 100)
    staff_tallies: list[Tally] = []
    audiences: dict[int, list[Tally]] = {}
    specs: list[ReaderSpec] = []
    every: list[Tally] = []
    for n, (thread_id, client) in enumerate(zip(thread_ids, patients, strict=True)):
        tallies = [Tally() for _ in range(10 if n >= 10 else 9)]
        audiences[thread_id] = tallies
        for k, tally in enumerate(tallies):
            specs.append(("sse", HOST, stack.ports[(n + k) % 2], cookie_header(client)))
            every.append(tally)
    for email, port in ((MARTIN, stack.ports[1]), (SECRETARIAT, stack.ports[0])):
        staff = await login(base(port), email)
        for _ in range(5):
            tally = Tally()
            staff_tallies.append(tally)
            url = base(port).replace("http", "ws") + "/ws"
            specs.append(("ws", url, base(port), cookie_header(staff), 0.0))
            every.append(tally)
    for tallies in audiences.values():
        tallies.extend(staff_tallies)
    readers = ReaderProcess(specs)
    await asyncio.sleep(6)  # every stream open and registered
    # Dr Martin's answers go to both servers in turn, as a load balancer would send them.
    martin = await login(base(stack.ports[0]), MARTIN)
    martins = [RawPoster(martin, port) for port in stack.ports]
    posters = [RawPoster(client) for client in patients]
    sent: list[Sent] = []
    posts = []
    start = time.time()
    total = int(seconds * rate)
    for token in range(total):
        await asyncio.sleep(max(0.0, start + token / rate - time.time()))
        thread_index = token % 100
        # One message in ten comes from a patient (patients are rate-limited, so the ten percent
        # rotate over all of them), the rest from staff.
        if token % 10 == (token // 100) % 10:
            sender = posters[thread_index]
        else:
            sender = martins[token % len(martins)]
        posts.append(asyncio.create_task(post(sender, thread_ids[thread_index], token, sent)))
    await asyncio.gather(*posts)
    await asyncio.sleep(3)
    await readers.stop(every)
    result = summarise(sent, audiences)
    result["clients"] = len(specs)
    result["reconnects"] = sum(t.reconnects for ts in audiences.values() for t in ts)
    return result


async def queue_storm(stack: Stack, seconds: float, senders: int) -> dict[str, float]:
    """200 staff connections on one practice queue; senders as fast as they are accepted. Two
    of the 200 are too slow at first and must be disconnected, then catch up."""
    thread_ids, patients = await open_threads(stack, 100)
    for client in patients:
        await client.aclose()
    tallies = [Tally() for _ in range(200)]
    specs: list[ReaderSpec] = []
    slow_until = time.time() + 5 + seconds / 2
    for n in range(4):
        port = stack.ports[n % 2]
        secretary = await login(base(port), SECRETARIAT)
        url = base(port).replace("http", "ws") + "/ws"
        for k in range(50):
            slow = slow_until if n * 50 + k < 2 else 0.0
            specs.append(("ws", url, base(port), cookie_header(secretary), slow))
    readers = ReaderProcess(specs)
    await asyncio.sleep(5)
    martins = [RawPoster(await login(base(stack.ports[n % 2]), MARTIN)) for n in range(senders)]
    sent: list[Sent] = []
    deadline = time.time() + seconds
    counter = iter(range(10**9))

    async def sender(client: RawPoster) -> None:
        while time.time() < deadline:
            token = next(counter)
            await post(client, thread_ids[token % len(thread_ids)], token, sent)

    await asyncio.gather(*(sender(m) for m in martins))
    await asyncio.sleep(10)  # the slow clients reconnect and catch up
    await readers.stop(tallies)
    result = summarise(sent, dict.fromkeys(thread_ids, tallies))
    fast = [t for t in tallies[2:]]
    arrivals = [at for t in fast for at in t.received.values()]
    ok = [m for m in sent if m.ok]
    window = max(arrivals) - min(m.at for m in ok)
    result["deliveries_per_s"] = sum(len(t.received) for t in fast) / window
    result["slow_reconnects"] = sum(t.reconnects for t in tallies[:2])
    result["slow_lost"] = sum(len(ok) - len(t.received) for t in tallies[:2])
    result["senders"] = senders
    return result


async def idle(stack: Stack, count: int, kind: str) -> dict[str, float]:
    """Resident memory per idle connection held by one server process."""
    port, pid = stack.ports[0], stack.processes[0].pid
    email = SECRETARIAT if kind == "ws" else "alice@demo.colloque.test"
    client = await login(base(port), email)
    cookie = cookie_header(client)
    stop = asyncio.Event()
    tallies = [Tally() for _ in range(count)]
    url = base(port).replace("http", "ws") + "/ws"

    def reader(tally: Tally):
        if kind == "ws":
            return ws_reader(url, base(port), cookie, tally, stop)
        return sse_reader(HOST, port, cookie, tally, stop)

    warm = [asyncio.create_task(reader(t)) for t in tallies[:100]]
    await asyncio.sleep(3)
    before = rss_kib(pid)
    tasks = list(warm)
    for start in range(100, count, 500):
        tasks += [asyncio.create_task(reader(t)) for t in tallies[start : start + 500]]
        # Each opening looks its session up in the database: pace them like real arrivals.
        await asyncio.sleep(2.0)
    await asyncio.sleep(8)
    after = rss_kib(pid)
    # Prove they are live: one message must reach every one of them.
    thread = 1  # Alice's conversation with Dr Martin: seen by Alice and by the secretariat
    await client.post(
        f"/threads/{thread}/messages", data={"body": "bench:999999999: ping"}, timeout=300
    )
    await asyncio.sleep(20)
    reached = sum(1 for t in tallies if 999999999 in t.received)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "connections": count,
        "rss_before_kib": before,
        "rss_after_kib": after,
        "kib_per_connection": (after - before) / (count - 100),
        "reached": reached,
    }


def write_results(results: dict[str, dict[str, float]], quick: bool) -> None:
    def row(name: str, r: dict[str, float]) -> str:
        return (
            f"| {name} | {r.get('clients', r.get('senders', ''))} | {r['messages']} | "
            f"{r['messages_per_s']:.0f} | {r['deliveries']} | {r['deliveries_per_s']:.0f} | "
            f"{r['p50']:.1f} | {r['p95']:.1f} | {r['p99']:.1f} | {r['post_p50']:.1f} | "
            f"{r['post_p99']:.1f} | {r['lost']} | {r['duplicated']} |"
        )

    lines = [
        "# Live-updates benchmark",
        "",
        f"`{'.venv/bin/python bench/live.py' + (' --quick' if quick else '')}` on "
        f"{platform.node() and 'this machine'}: {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, load generator on the same machine (the fan-out and queue "
        "readers in a process of their own). Two `colloque serve` "
        "processes share PostgreSQL and a private Redis; every message is an authenticated "
        "POST, committed, rendered once per event and fanned out through Redis. Latency is "
        "from the start of the POST to the fragment read by the client; the POST columns are the "
        "part of it until the POST's answer arrived.",
        "",
        "| scenario | clients / senders | messages | msg/s | deliveries | deliveries/s | "
        "p50 ms | p95 ms | p99 ms | POST p50 ms | POST p99 ms | lost | duplicated |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    if "fanout" in results:
        lines.append(row("1,000 clients, 100 conversations, 100 msg/s", results["fanout"]))
    if "queue" in results:
        lines.append(row("200 staff on one queue, senders flat out", results["queue"]))
    lines.append("")
    if "queue" in results:
        q = results["queue"]
        lines.append(
            f"Queue scenario: the 2 deliberately slow clients were disconnected "
            f"{q['slow_reconnects']:.0f} times and ended with {q['slow_lost']:.0f} messages "
            "missing after catching up."
        )
        lines.append("")
    idle_rows = [(k, v) for k, v in results.items() if k.startswith("idle")]
    if idle_rows:
        lines += [
            "| idle connections | held | RSS before (KiB) | RSS after (KiB) | "
            "KiB per connection | reached by a message |",
            "|---|---|---|---|---|---|",
        ]
        for name, r in idle_rows:
            lines.append(
                f"| {name[5:]} | {r['connections']} | {r['rss_before_kib']} | "
                f"{r['rss_after_kib']} | {r['kib_per_connection']:.1f} | {r['reached']} |"
            )
    (ROOT / "bench" / "RESULTS.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rate", type=float, default=100.0, help="fan-out messages per second")
    parser.add_argument("--only", choices=("fanout", "queue", "idle"), action="append")
    parser.add_argument("--database", default=DATABASE, help="PostgreSQL database to (re)create")
    args = parser.parse_args()
    only = set(args.only or ("fanout", "queue", "idle"))
    logs = ROOT / "var" / "bench"
    logs.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, float]] = {}
    idle_count = 2000 if args.quick else 10000
    with services(args.database) as env:
        subprocess.run(
            [sys.executable, "-m", "server.cli", "demo", "--patients", "200"],
            env=env,
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        if "fanout" in only:
            with servers(env, 2, logs) as stack:
                results["fanout"] = asyncio.run(fanout(stack, 10 if args.quick else 30, args.rate))
                print("fanout", results["fanout"], flush=True)
        if "queue" in only:
            with servers(env, 2, logs) as stack:
                results["queue"] = asyncio.run(
                    queue_storm(stack, 8 if args.quick else 15, QUEUE_SENDERS)
                )
                print("queue", results["queue"], flush=True)
        if "idle" in only:
            for kind, ws in (
                ("ws", "websockets-sansio"),
                ("ws", "websockets"),
                ("sse", "websockets-sansio"),
            ):
                with servers(env, 1, logs, ws=ws) as stack:
                    name = f"idle {kind}" + (f" ({ws})" if kind == "ws" else "")
                    results[name] = asyncio.run(idle(stack, idle_count, kind))
                    print(name, results[name], flush=True)
    write_results(results, args.quick)


if __name__ == "__main__":
    main()
