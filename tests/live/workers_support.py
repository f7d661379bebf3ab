"""`colloque worker` processes next to a test cluster, and what the triage tests read behind the
service's back: database rows, the Redis job stream, extra patients.

With REDIS_URL set, `colloque serve` runs no worker: these tests start them, with the cluster's
own environment, and stop them by pid (SIGSTOP and SIGKILL play a worker that hangs or dies).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis
from service_support import create_demo_data, stop_process

from server import crypto
from server.jobs.redis_streams import GROUP, STREAM

from .support import (
    MARTIN,
    ROOT,
    SECRET_KEY,
    Cluster,
    Person,
    SSEEvent,
    SSEStream,
    WSStream,
    is_postgres,
)

CARDIAC = (
    "J'ai une douleur dans la poitrine qui serre et mon bras gauche est engourdi depuis 20 minutes"
)
SUICIDAL = "Je veux mourir, j'ai envie d'en finir ce soir"
BENIGN = "Bonjour, pouvez-vous renouveler mon ordonnance de Doliprane ?"

#: What the patient's stream carries when one of their messages is flagged.
GUIDANCE = 'id="emergency-guidance"'
#: The workers' sweep takes over a message unassessed for 5 s, every 2 s.
SWEEP_SECONDS = 8.0
#: A worker process starts (imports, database, Redis) and takes the first job.
WORKER_START_SECONDS = 20.0
RECLAIM_SECONDS = "1"


def cluster_env(cluster: Cluster) -> dict[str, str]:
    """The environment the cluster's servers run with, for workers and `colloque demo`."""
    env = dict(os.environ)
    for variable in ("PORT", "REDIS_URL", "DATABASE_URL"):
        env.pop(variable, None)
    env.update(
        DATABASE_URL=cluster.database_url,
        SECRET_KEY=SECRET_KEY,
        COLLOQUE_ENV="development",
        PYTHONUNBUFFERED="1",
        COLLOQUE_TRIAGE_RECLAIM_SECONDS=RECLAIM_SECONDS,
    )
    if cluster.redis is not None:
        env["REDIS_URL"] = cluster.redis.url
    return env


class WorkerProcess:
    """One `colloque worker` process, stopped by its pid."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> WorkerProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "server.cli", "worker"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def pause(self) -> None:
        """SIGSTOP: a worker that hangs (or whose host froze) while holding its jobs."""
        assert self.running
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after `pause`."""
        assert self.running
        os.kill(self.pid, signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL: the worker dies without acknowledging anything."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGCONT)
        stop_process(self.process, timeout=10)

    def log_text(self) -> str:
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")


@dataclass
class Workers:
    """The workers one test started; all stopped at its end."""

    folder: Path
    started: list[WorkerProcess] = field(default_factory=list)

    def start(self, cluster: Cluster) -> WorkerProcess:
        number = len(self.started)
        log_path = (
            self.folder / f"{cluster.name}-worker-{os.getpid()}-{time.time_ns()}-{number}.log"
        )
        worker = WorkerProcess(cluster_env(cluster), log_path).start()
        self.started.append(worker)
        return worker

    def stop_all(self) -> None:
        for worker in self.started:
            worker.stop()

    def tracebacks(self) -> str:
        return "\n".join(
            worker.log_text()[-4000:]
            for worker in self.started
            if "Traceback (most recent call last)" in worker.log_text()
        )


# --- extra patients ------------------------------------------------------------------------

EXTRA_PATIENTS = 40


def fresh_patient(cluster: Cluster) -> str:
    """A load-test patient of Dr Martin that no other test used: own quotas, own threads."""
    if "triage_next_patient" not in cluster.facts:
        create_demo_data(cluster_env(cluster), EXTRA_PATIENTS)
        # Leave the first ones to any other test that may use them.
        cluster.facts["triage_next_patient"] = 11
    number = int(cluster.facts["triage_next_patient"])
    assert number <= EXTRA_PATIENTS, "raise EXTRA_PATIENTS"
    cluster.facts["triage_next_patient"] = number + 1
    return f"patient-{number:04d}@demo.colloque.test"


async def open_request(patient: Person, body: str, subject: str = "Question") -> int:
    """The patient writes to Dr Martin (the one practitioner they consulted); the thread id."""
    home = await patient.http.get("/")
    found = re.search(r'data-practitioner-id="(\d+)"', home.text)
    assert found, "the patient sees Dr Martin"
    answer = await patient.http.post(
        "/threads",
        data={
            "practitioner_id": found[1],
            "category": "question",
            "subject": subject,
            "body": body,
            "csrf_token": patient.csrf,
        },
    )
    assert answer.status_code == 303, f"opening a request: {answer.status_code} {answer.text[:300]}"
    return int(answer.headers["location"].rstrip("/").rsplit("/", 1)[1])


# --- what the streams show -----------------------------------------------------------------


def guidance_events(stream: SSEStream) -> list[SSEEvent]:
    return stream.having(GUIDANCE)


def alert_marker(thread_id: int) -> str:
    return f'data-emergency-thread-id="{thread_id}"'


def _alert_pattern(thread_id: int) -> re.Pattern[str]:
    return re.compile(
        r'<p class="emergency-alert"[^>]*\bdata-emergency-thread-id="' + str(thread_id) + '"'
    )


def alerts(stream: WSStream, thread_id: int) -> list[str]:
    """The staff alerts for this thread (an element of class "emergency-alert" for it; not
    merely its emergency badge, which any later update of the thread carries), one item each."""
    pattern = _alert_pattern(thread_id)
    return [found[0] for frame in stream.frames for found in pattern.finditer(frame)]


_CURSOR = re.compile(r'id="live-cursor"[^>]*data-after="(\d+)"')


def event_ids_of(frames: list[str], text: str | re.Pattern[str]) -> list[int]:
    """The event id of each occurrence of `text` in the frames: the cursor that closes the
    event carrying it (a frame may carry several events, each ending with its cursor)."""
    pattern = text if isinstance(text, re.Pattern) else re.compile(re.escape(text))
    found = []
    for frame in frames:
        for match in pattern.finditer(frame):
            cursor = _CURSOR.search(frame, match.end())
            assert cursor is not None, "every event ends with the page's cursor"
            found.append(int(cursor[1]))
    return found


def alert_ids(stream: WSStream, thread_id: int) -> list[int]:
    """Event ids of the staff alerts for this thread, in the order received."""
    return event_ids_of(stream.frames, _alert_pattern(thread_id))


# --- the database, read behind the service's back ------------------------------------------


async def rows(database_url: str, query: str, *params: Any) -> list[dict[str, Any]]:
    """Run a read-only query (`?` placeholders) against the cluster's database."""
    if is_postgres(database_url):
        import asyncpg

        numbered = query
        for number in range(1, len(params) + 1):
            numbered = numbered.replace("?", f"${number}", 1)
        connection = await asyncpg.connect("postgresql://" + database_url.split("://", 1)[1])
        try:
            return [dict(row) for row in await connection.fetch(numbered, *params)]
        finally:
            await connection.close()

    def read() -> list[dict[str, Any]]:
        path = database_url.removeprefix("sqlite://")
        with contextlib.closing(sqlite3.connect(path, timeout=10)) as connection:
            connection.row_factory = sqlite3.Row
            return [dict(row) for row in connection.execute(query, params).fetchall()]

    return await asyncio.to_thread(read)


async def insert_unassessed_message(
    database_url: str, thread_id: int, body: str, created_at: datetime
) -> int:
    """Write a patient message of the thread's patient behind the service's back (no job, no
    stream event), unassessed, as a process that died right after committing it would leave it.
    Returns its id."""
    # Stored as the service stores it: encrypted at rest, with the keys the cluster shares.
    body = crypto.active_keyring().encrypt(body, "message.body")
    if is_postgres(database_url):
        import asyncpg

        connection = await asyncpg.connect("postgresql://" + database_url.split("://", 1)[1])
        try:
            async with connection.transaction():
                seq = await connection.fetchval(
                    "UPDATE thread SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq",
                    thread_id,
                )
                return int(
                    await connection.fetchval(
                        "INSERT INTO message (thread_id, seq, author_id, kind, body, created_at,"
                        " triaged_at, emergency, emergency_categories)"
                        " SELECT id, $2, patient_id, 'patient', $3, $4, NULL, false, '[]'::jsonb"
                        " FROM thread WHERE id = $1 RETURNING id",
                        thread_id,
                        seq,
                        body,
                        created_at,
                    )
                )
        finally:
            await connection.close()

    def write() -> int:
        path = database_url.removeprefix("sqlite://")
        with contextlib.closing(sqlite3.connect(path, timeout=10)) as connection, connection:
            connection.execute(
                "UPDATE thread SET last_seq = last_seq + 1 WHERE id = ?", (thread_id,)
            )
            cursor = connection.execute(
                "INSERT INTO message (thread_id, seq, author_id, kind, body, created_at,"
                " triaged_at, emergency, emergency_categories)"
                " SELECT id, last_seq, patient_id, 'patient', ?, ?, NULL, 0, '[]'"
                " FROM thread WHERE id = ?",
                (body, created_at.isoformat(sep=" ", timespec="microseconds"), thread_id),
            )
            return int(cursor.lastrowid or 0)

    return await asyncio.to_thread(write)


async def messages_of_thread(database_url: str, thread_id: int) -> list[dict[str, Any]]:
    found = await rows(
        database_url,
        "SELECT id, kind, body, triaged_at, emergency FROM message WHERE thread_id = ? ORDER BY id",
        thread_id,
    )
    # Bodies are stored encrypted, with the keys of the environment the cluster shares.
    keyring = crypto.active_keyring()
    return [{**row, "body": keyring.decrypt(str(row["body"]), "message.body")} for row in found]


async def flagged_events(database_url: str) -> dict[int, list[int]]:
    """Stream event ids of kind message.flagged, by the message they are about."""
    found: dict[int, list[int]] = {}
    for row in await rows(
        database_url, "SELECT id, data FROM stream_event WHERE kind = 'message.flagged'"
    ):
        data = row["data"] if isinstance(row["data"], dict) else json.loads(row["data"])
        found.setdefault(int(data["message_id"]), []).append(int(row["id"]))
    return found


# --- the Redis job stream -------------------------------------------------------------------


@contextlib.asynccontextmanager
async def redis_client(url: str) -> Any:
    client = Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
    try:
        yield client
    finally:
        await client.aclose()


async def pending_by_consumer(url: str) -> dict[str, list[str]]:
    """Entries handed to a consumer and not acknowledged yet, by consumer name."""
    async with redis_client(url) as client:
        try:
            entries = await client.xpending_range(STREAM, GROUP, min="-", max="+", count=1000)
        except Exception as error:  # no stream or no group yet: nothing pending
            if "NOGROUP" in str(error):
                return {}
            raise
    found: dict[str, list[str]] = {}
    for entry in entries:
        consumer = entry["consumer"].decode()
        found.setdefault(consumer, []).append(entry["message_id"].decode())
    return found


async def pending_count(url: str) -> int:
    return sum(len(ids) for ids in (await pending_by_consumer(url)).values())


def consumer_of(pid: int, names: Iterator[str] | list[str]) -> str | None:
    """The consumer name a worker process uses (it embeds the pid)."""
    for name in names:
        if f"-{pid}-" in name:
            return name
    return None


async def wait_reading_the_stream(url: str, worker: WorkerProcess, within: float) -> str:
    """Return the moment `worker` starts a blocking XREADGROUP on the job stream (seen through
    MONITOR): an entry added within the next second is handed to it. Its consumer name."""
    deadline = time.monotonic() + within
    marker = f"-{worker.pid}-"
    while time.monotonic() < deadline:
        # A read cut short by a timeout leaves the connection unusable: a new one each time.
        async with redis_client(url) as client, client.monitor() as monitor:
            while time.monotonic() < deadline:
                assert worker.running, f"the worker exited:\n{worker.log_text()[-3000:]}"
                try:
                    seen = await asyncio.wait_for(monitor.next_command(), 3.0)
                except TimeoutError:
                    break
                words = str(seen.get("command", "")).split()
                if words and words[0].upper() == "XREADGROUP" and "BLOCK" in words:
                    names = [word for word in words if marker in word]
                    if names:
                        return names[0]
    raise AssertionError(f"worker {worker.pid} never read the job stream")


def _raw(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


async def healthy_post(person: Person, thread_id: int, body: str) -> httpx.Response:
    answer = await person.post(thread_id, body)
    assert answer.status_code == 303, f"{person.email} posting: {answer.status_code}"
    return answer


__all__ = [
    "BENIGN",
    "CARDIAC",
    "GUIDANCE",
    "MARTIN",
    "SUICIDAL",
    "SWEEP_SECONDS",
    "WORKER_START_SECONDS",
    "WorkerProcess",
    "Workers",
    "alert_ids",
    "alert_marker",
    "alerts",
    "cluster_env",
    "consumer_of",
    "event_ids_of",
    "flagged_events",
    "fresh_patient",
    "guidance_events",
    "healthy_post",
    "insert_unassessed_message",
    "messages_of_thread",
    "open_request",
    "pending_by_consumer",
    "pending_count",
    "rows",
    "wait_reading_the_stream",
]
