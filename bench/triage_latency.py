"""Triage latency benchmark: how long a patient waits for the numbers to call.

Run: `.venv/bin/python bench/triage_latency.py` (about five minutes; `--quick` for a short run).
It creates its own PostgreSQL database (`tri_bench`) and its own redis-server on a free loopback
port, starts two `colloque serve` processes and one `colloque worker`, and measures, under the
live-updates background load of bench/live.py (1,000 SSE clients in 100 conversations, staff and
patients posting at the given rates), the time from the start of a patient's POST of an emergency
message to the guidance fragment (`id="emergency-guidance"`) arriving on that patient's own SSE
stream, served by the other process. It stops everything it started (by pid) and writes
bench/TRIAGE_RESULTS.md; text after the `<!-- analysis -->` line of that file is kept.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import os
import platform
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from clients import Tally, cookie_header, login, sse_reader, ws_reader

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "TRIAGE_RESULTS.md"
ANALYSIS_MARK = "<!-- analysis -->"
DATABASE = "tri_bench"
PG_ADMIN_DSN = ["-h", "127.0.0.1", "-p", "5432", "-U", "postgres", "-d", "postgres"]
HOST = "127.0.0.1"
MARTIN = "dr.martin@demo.colloque.test"
SECRETARIAT = "secretariat@demo.colloque.test"
CONVERSATIONS = 100
READERS_PER_CONVERSATION = 10
EMERGENCY_PATIENTS = 40
EMERGENCY_TEXT = (
    "J'ai une douleur dans la poitrine qui serre et mon bras gauche est engourdi depuis 20 minutes"
)
GUIDANCE = b'id="emergency-guidance"'
# A guidance later than this counts as missed (the sweep alone would bring it within ~7 s).
MISSED_AFTER_SECONDS = 15.0
TARGET_P99_MS = 300.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def psql(sql: str) -> None:
    subprocess.run(["psql", *PG_ADMIN_DSN, "-q", "-c", sql], check=True, capture_output=True)


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def base(port: int) -> str:
    return f"http://{HOST}:{port}"


# --- the services, started and stopped by pid ------------------------------------------------


@contextlib.contextmanager
def services(logs: Path) -> Iterator[dict[str, str]]:
    """A fresh PostgreSQL database of our own and a private redis-server, removed afterwards."""
    psql(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    psql(f"CREATE DATABASE {DATABASE}")
    redis_port = free_port()
    redis = subprocess.Popen(
        [
            *("redis-server", "--port", str(redis_port), "--bind", HOST),
            *("--save", "", "--appendonly", "no"),
        ],
        stdout=(logs / "redis.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    env = dict(os.environ)
    env.pop("PORT", None)
    env.update(
        DATABASE_URL=f"postgres://postgres@{HOST}:5432/{DATABASE}",
        REDIS_URL=f"redis://{HOST}:{redis_port}/0",
        SECRET_KEY="triage-bench-secret-key-0123456789abcdef",  # noqa: S106 - a throwaway stack
        COLLOQUE_ENV="development",
        PYTHONUNBUFFERED="1",
    )
    try:
        yield env
    finally:
        redis.terminate()
        redis.wait(10)
        psql(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")


@dataclass
class Stack:
    ports: list[int]
    processes: dict[str, subprocess.Popen[bytes]]


@contextlib.contextmanager
def stack(env: dict[str, str], logs: Path) -> Iterator[Stack]:
    """Two `colloque serve` processes and one `colloque worker`."""
    ports = [free_port(), free_port()]
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for port in ports:
            processes[f"serve-{port}"] = subprocess.Popen(
                [
                    *(sys.executable, "-m", "server.cli", "serve"),
                    *("--host", HOST, "--port", str(port), "--no-access-log"),
                ],
                cwd=ROOT,
                env=env,
                stdout=(logs / f"serve-{port}.log").open("wb"),
                stderr=subprocess.STDOUT,
            )
        processes["worker"] = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "worker"],
            cwd=ROOT,
            env=env,
            stdout=(logs / "worker.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        for port in ports:
            deadline = time.time() + 60
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{base(port)}/healthz", timeout=1).status_code == 200:
                        break
                if time.time() > deadline:
                    raise RuntimeError(f"server on {port} did not start")
                time.sleep(0.2)
        yield Stack(ports, processes)
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.terminate()
        for process in processes.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy so far (all cores)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = fields[3] + fields[4]
    return (sum(fields) - idle) / os.sysconf("SC_CLK_TCK")


def database_backends() -> list[int]:
    """PostgreSQL backend processes serving our database."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if DATABASE.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


class DatabaseCpu:
    """CPU used by our PostgreSQL backends over a period, sampled so that backends which
    start or end during it are counted too."""

    def __init__(self) -> None:
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}

    def sample(self, initial: bool = False) -> None:
        for pid in database_backends():
            with contextlib.suppress(OSError, ValueError, IndexError):
                used = cpu_seconds(pid)
                self.first.setdefault(pid, used if initial else 0.0)
                self.last[pid] = used

    @property
    def seconds(self) -> float:
        return sum(self.last[pid] - self.first[pid] for pid in self.last)


def role_cpu(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far: our processes by role, and the machine's total."""
    used = {"total": machine_busy_seconds(), "bench": cpu_seconds(os.getpid())}
    for name, pid in pids.items():
        with contextlib.suppress(OSError):
            used[name] = cpu_seconds(pid)
    return used


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- clients ------------------------------------------------------------------------------


class GuidanceTally(Tally):
    """A patient's SSE stream: when each guidance fragment arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.guidance: list[float] = []
        self._tail = b""

    def take(self, chunk: bytes) -> None:
        super().take(chunk)
        now = time.time()
        data = self._tail + chunk
        start = 0
        while (found := data.find(GUIDANCE, start)) != -1:
            self.guidance.append(now)
            start = found + len(GUIDANCE)
        self._tail = data[max(start, len(data) - len(GUIDANCE) + 1) :]


@dataclass
class Patient:
    email: str
    client: httpx.AsyncClient
    thread_id: int
    tally: GuidanceTally = field(default_factory=GuidanceTally)
    posts: list[float] = field(default_factory=list)
    usable: bool = True


async def practitioner_id(client: httpx.AsyncClient) -> str:
    page = await client.get("/")
    match = re.search(r'data-practitioner-id="(\d+)"', page.text)
    assert match is not None, "the patient sees Dr Martin"
    return match.group(1)


async def open_request(client: httpx.AsyncClient, subject: str) -> int:
    answer = await client.post(
        "/threads",
        data={
            "practitioner_id": await practitioner_id(client),
            "category": "question",
            "subject": subject,
            "body": "Bonjour docteur",
        },
    )
    assert answer.status_code == 303, answer.text[:300]
    return int(answer.headers["location"].rsplit("/", 1)[1])


async def conversations(ports: list[int]) -> tuple[list[int], list[httpx.AsyncClient]]:
    """Patients 1..100 each open a request that Dr Martin accepts (the background load)."""
    martin = await login(base(ports[0]), MARTIN)
    clients = [
        await login(base(ports[n % 2]), f"patient-{n + 1:04d}@demo.colloque.test")
        for n in range(CONVERSATIONS)
    ]
    threads = []
    for n, client in enumerate(clients):
        thread_id = await open_request(client, f"Bench {n}")
        assert (await martin.post(f"/threads/{thread_id}/accept")).status_code == 303
        threads.append(thread_id)
    await martin.aclose()
    return threads, clients


async def emergency_patients(ports: list[int]) -> list[Patient]:
    """Patients 101..140: each writes to Dr Martin, then watches their own SSE stream."""
    patients = []
    for n in range(EMERGENCY_PATIENTS):
        email = f"patient-{CONVERSATIONS + n + 1:04d}@demo.colloque.test"
        client = await login(base(ports[n % 2]), email)
        patients.append(Patient(email, client, await open_request(client, f"Urgence {n}")))
    return patients


@dataclass
class Background:
    tallies: dict[int, list[Tally]]
    sent: list[tuple[int, int, float, bool]] = field(default_factory=list)


async def background_post(
    client: httpx.AsyncClient, thread_id: int, token: int, background: Background
) -> None:
    started = time.time()
    answer = await client.post(
        f"/threads/{thread_id}/messages", data={"body": f"Message bench:{token}: suivi"}
    )
    background.sent.append((token, thread_id, started, answer.status_code == 303))


# --- one measurement ----------------------------------------------------------------------


async def measure(
    rate: float,
    seconds: float,
    emergency_every: float,
    patients: list[Patient],
    threads: list[int],
    senders: list[httpx.AsyncClient],
    martin: httpx.AsyncClient,
    background: Background,
    first_token: int,
    pids: dict[str, int],
) -> dict[str, float]:
    """Background messages at `rate` for `seconds`, and one emergency every `emergency_every`."""
    for patient in patients:
        patient.posts.clear()
        patient.tally.guidance.clear()
    background.sent.clear()
    cpu_before = role_cpu(pids)
    started_at = time.time()
    database_cpu = DatabaseCpu()
    database_cpu.sample(initial=True)

    async def sample_database() -> None:
        while True:
            await asyncio.sleep(0.5)
            database_cpu.sample()

    sampler = asyncio.create_task(sample_database())
    stop_at = time.time() + seconds
    posts: list[asyncio.Task[None]] = []

    async def load() -> None:
        start = time.time()
        total = int(seconds * rate)
        for n in range(total):
            await asyncio.sleep(max(0.0, start + n / rate - time.time()))
            token = first_token + n
            index = token % CONVERSATIONS
            # One message in ten from the conversation's patient (triaged, benign), as live.py.
            sender = senders[index] if token % 10 == (token // 100) % 10 else martin
            posts.append(
                asyncio.create_task(background_post(sender, threads[index], token, background))
            )

    latencies: list[float] = []
    refused = 0

    own_banner: list[float] = []
    own_missing = 0

    async def emergencies() -> None:
        nonlocal refused, own_missing
        turn = 0
        while time.time() < stop_at:
            tick = time.time()
            ready = [p for p in patients if p.usable and len(p.tally.guidance) >= len(p.posts)]
            if ready:
                patient = ready[turn % len(ready)]
                turn += 1
                started = time.time()
                # As the page sends it (htmx): the answer itself carries the sender's banner.
                answer = await patient.client.post(
                    f"/threads/{patient.thread_id}/messages",
                    data={"body": f"{EMERGENCY_TEXT} ({turn})"},
                    headers={"HX-Request": "true"},
                )
                if answer.status_code == 201:
                    patient.posts.append(started)
                    if 'id="emergency-guidance"' in answer.text:
                        own_banner.append((time.time() - started) * 1000)
                    else:
                        own_missing += 1
                else:
                    refused += 1
            await asyncio.sleep(max(0.0, tick + emergency_every - time.time()))

    await asyncio.gather(load() if rate else asyncio.sleep(0), emergencies())
    await asyncio.gather(*posts)
    for _ in range(int(MISSED_AFTER_SECONDS * 10)):
        if all(len(p.tally.guidance) >= len(p.posts) for p in patients):
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)  # late duplicates, if any
    sampler.cancel()
    database_cpu.sample()
    cpu_after = role_cpu(pids)
    cpu_after["postgres"] = database_cpu.seconds
    elapsed = time.time() - started_at
    cpu = {name: (cpu_after[name] - cpu_before.get(name, 0.0)) / elapsed for name in cpu_after}
    ours = sum(value for name, value in cpu.items() if name != "total")
    cpu["others"] = max(0.0, cpu["total"] - ours)

    posted = missed = duplicated = 0
    for patient in patients:
        posted += len(patient.posts)
        arrived = patient.tally.guidance
        missed += max(0, len(patient.posts) - len(arrived))
        duplicated += max(0, len(arrived) - len(patient.posts))
        for started, at in zip(patient.posts, arrived, strict=False):
            latencies.append((at - started) * 1000)
            if at - started > MISSED_AFTER_SECONDS:
                missed += 1

    delivered, expected, background_latencies = 0, 0, []
    for token, thread_id, started, ok in background.sent:
        if not ok:
            continue
        for tally in background.tallies[thread_id]:
            expected += 1
            at = tally.received.get(token)
            if at is not None:
                delivered += 1
                background_latencies.append((at - started) * 1000)
    ok_sent = [s for s in background.sent if s[3]]
    span = seconds
    return {
        "rate": rate,
        "achieved": len(ok_sent) / span if rate else 0.0,
        "background_refused": len(background.sent) - len(ok_sent),
        "background_lost": expected - delivered,
        "background_p50": percentile(background_latencies, 0.50),
        "background_p99": percentile(background_latencies, 0.99),
        "emergencies": posted,
        "emergency_refused": refused,
        "missed": missed,
        "duplicated": duplicated,
        "p50": percentile(latencies, 0.50),
        "p95": percentile(latencies, 0.95),
        "p99": percentile(latencies, 0.99),
        "own_p50": percentile(own_banner, 0.50),
        "own_p99": percentile(own_banner, 0.99),
        "own_missing": own_missing,
        "max": max(latencies, default=float("nan")),
        "loadavg": os.getloadavg()[0],
        "cpu_serve": sum(v for k, v in cpu.items() if k.startswith("serve-")),
        "cpu_worker": cpu.get("worker", 0.0),
        "cpu_postgres": cpu["postgres"],
        "cpu_bench": cpu["bench"],
        "cpu_others": cpu["others"],
    }


async def run(ports: list[int], pids: dict[str, int], rates: list[float], seconds: float) -> list:
    threads, senders = await conversations(ports)
    patients = await emergency_patients(ports)
    stop = asyncio.Event()
    readers = []
    tallies: dict[int, list[Tally]] = {}
    for n, (thread_id, client) in enumerate(zip(threads, senders, strict=True)):
        tallies[thread_id] = [Tally() for _ in range(READERS_PER_CONVERSATION)]
        for k, tally in enumerate(tallies[thread_id]):
            readers.append(sse_reader(HOST, ports[(n + k) % 2], cookie_header(client), tally, stop))
    for n, patient in enumerate(patients):
        # The stream is on the other process than the one the patient posts to.
        port = ports[(n + 1) % 2]
        readers.append(sse_reader(HOST, port, cookie_header(patient.client), patient.tally, stop))
    for email, port in ((MARTIN, ports[1]), (SECRETARIAT, ports[0])):
        staff = await login(base(port), email)
        for _ in range(5):
            url = base(port).replace("http", "ws") + "/ws"
            readers.append(ws_reader(url, base(port), cookie_header(staff), Tally(), stop))
    tasks = [asyncio.create_task(reader) for reader in readers]
    await asyncio.sleep(5)  # every stream open and registered
    martin = await login(base(ports[0]), MARTIN)
    background = Background(tallies)
    results = []
    first_token = 0
    for rate in rates:
        result = await measure(
            rate, seconds, 0.5, patients, threads, senders, martin, background, first_token, pids
        )
        result["clients"] = len(readers)
        first_token += int(seconds * rate) + 1
        print(
            {k: round(v, 1) if isinstance(v, float) else v for k, v in result.items()}, flush=True
        )
        results.append(result)
        await asyncio.sleep(3)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return results


# --- report -------------------------------------------------------------------------------


def cpu_snapshot() -> dict[int, tuple[float, str]]:
    """CPU seconds used so far by every process, with its command line."""
    found: dict[int, tuple[float, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            used = cpu_seconds(int(entry.name))
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue
        found[int(entry.name)] = (used, command.strip() or f"[{entry.name}]")
    return found


def busiest(before: dict[int, tuple[float, str]], seconds: float) -> str:
    """The processes that used the most CPU since `before` (ours included, marked)."""
    after = cpu_snapshot()
    used = []
    for pid, (total, command) in after.items():
        share = (total - before.get(pid, (0.0, ""))[0]) / seconds
        if share >= 0.02:
            used.append((share, pid, command))
    used.sort(reverse=True)
    return "\n".join(
        f"    {share:4.2f} cores  {command[:110]}" for share, _pid, command in used[:10]
    )


def write_results(
    results: list[dict[str, float]], load_before: str, others: str, seconds: float
) -> None:
    kept = ""
    if RESULTS.exists() and ANALYSIS_MARK in RESULTS.read_text():
        kept = RESULTS.read_text().split(ANALYSIS_MARK, 1)[1]
    lines = [
        "# Triage latency benchmark",
        "",
        "`.venv/bin/python bench/triage_latency.py` on this machine: "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, load generator on the same "
        "machine. Two `colloque serve` processes and one `colloque worker` share PostgreSQL and a "
        "private Redis. Latency is from the start of a patient's POST of an emergency message "
        "to the guidance fragment arriving on that patient's SSE stream, held by the other "
        "server process (stream), and to the answer of the POST itself, which carries the "
        "banner for the page that sent it (own answer). Emergencies: one every 0.5 s, "
        "rotating over "
        f"{EMERGENCY_PATIENTS} patients; {seconds:.0f} s per row. Background: "
        f"{CONVERSATIONS * READERS_PER_CONVERSATION} SSE clients in {CONVERSATIONS} "
        "conversations + 10 staff WebSockets, messages at the rate shown (one in ten from a "
        "patient, so also triaged).",
        "",
        f"Run {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC; load average before "
        f"the run: {load_before}. Processes that used the most CPU over the whole run (set-up "
        "included; ours are the `server.cli` ones, `postgres: ... tri_bench` and the bench "
        "itself, anything else was running beside us):",
        "",
        others,
        "",
        "| background msg/s (achieved) | clients | background p50 / p99 ms | emergencies "
        "| missed | duplicated | stream p50 ms | p95 ms | p99 ms | max ms "
        "| own answer p50 / p99 ms (without banner) | CPU cores: 2 serve / worker / "
        "PostgreSQL / load generator / everything else | load avg (1 min) "
        "| stream p99 ≤ 300 ms | own answer p99 ≤ 300 ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        cpu = " / ".join(
            f"{r[k]:.2f}"
            for k in ("cpu_serve", "cpu_worker", "cpu_postgres", "cpu_bench", "cpu_others")
        )
        lines.append(
            f"| {r['rate']:.0f} ({r['achieved']:.0f}) | {r['clients']:.0f} | "
            f"{r['background_p50']:.0f} / {r['background_p99']:.0f} | {r['emergencies']:.0f} | "
            f"{r['missed']:.0f} | {r['duplicated']:.0f} | {r['p50']:.1f} | {r['p95']:.1f} | "
            f"{r['p99']:.1f} | {r['max']:.1f} | "
            f"{r['own_p50']:.1f} / {r['own_p99']:.1f} ({r['own_missing']:.0f}) | {cpu} | "
            f"{r['loadavg']:.2f} | "
            f"{'yes' if r['p99'] <= TARGET_P99_MS and r['missed'] == 0 else 'no'} | "
            f"{'yes' if r['own_p99'] <= TARGET_P99_MS and r['own_missing'] == 0 else 'no'} |"
        )
    lines += ["", "The table above is written by the script; what follows is written by hand.", ""]
    RESULTS.write_text("\n".join(lines) + "\n" + ANALYSIS_MARK + (kept or "\n"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="10 s per rate, rates 0 and 30")
    parser.add_argument(
        "--rates", default="0,30,60,80,100", help="background messages per second, comma-separated"
    )
    parser.add_argument("--seconds", type=float, default=40.0)
    args = parser.parse_args()
    rates = [0.0, 30.0] if args.quick else [float(r) for r in args.rates.split(",")]
    seconds = 10.0 if args.quick else args.seconds
    logs = ROOT / "var" / "bench-triage"
    logs.mkdir(parents=True, exist_ok=True)
    load_before = Path("/proc/loadavg").read_text().split(" ", 3)[:3]
    cpu_before, started = cpu_snapshot(), time.time()
    with services(logs) as env:
        subprocess.run(
            [
                *(sys.executable, "-m", "server.cli", "demo"),
                *("--patients", str(CONVERSATIONS + EMERGENCY_PATIENTS)),
            ],
            env=env,
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        with stack(env, logs) as running:
            pids = {name: process.pid for name, process in running.processes.items()}
            results = asyncio.run(run(running.ports, pids, rates, seconds))
            others = busiest(cpu_before, time.time() - started)
    write_results(results, ", ".join(load_before), others, seconds)
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
