"""Emergency triage through the real service: a patient's emergency wording brings them the
numbers to call, and the practice an alert, once, whatever happens to the workers and to Redis.

On the in-process backend `colloque serve` runs the worker itself. With REDIS_URL it does not:
these tests start `colloque worker` processes (tests/live/workers_support.py) and stop, freeze
or kill them by pid.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from .conftest import Login
from .support import (
    ALICE,
    ALICE_MARTIN_SUBJECT,
    BOB,
    MARTIN,
    PETIT,
    SECRETARIAT,
    Cluster,
    Person,
    SSEStream,
    the_message,
    token,
    wait_until,
)
from .workers_support import (
    BENIGN,
    CARDIAC,
    SUICIDAL,
    SWEEP_SECONDS,
    WORKER_START_SECONDS,
    Workers,
    alert_ids,
    alert_marker,
    alerts,
    event_ids_of,
    flagged_events,
    fresh_patient,
    guidance_events,
    healthy_post,
    insert_unassessed_message,
    messages_of_thread,
    open_request,
    pending_by_consumer,
    pending_count,
    rows,
    wait_reading_the_stream,
)

pytestmark = pytest.mark.anyio

# Through its job, a message is assessed and its guidance delivered well before the sweep (which
# only takes over messages unassessed for 5 s) could have done it.
PROMPT_SECONDS = 4.0
# Long enough for a duplicate to show up (broker, poll, resync) if one were coming.
SETTLE_SECONDS = 1.5
POST_SECONDS = 3.0


@pytest.fixture
def workers(live_folder: Path) -> Iterator[Workers]:
    started = Workers(live_folder)
    try:
        yield started
    finally:
        started.stop_all()
    written = started.tracebacks()
    if written:
        pytest.fail(f"a worker logged an error during this test:\n{written}", pytrace=False)


async def eventually(
    check: Callable[[], Awaitable[bool]], within: float, what: str, every: float = 0.1
) -> float:
    """Poll an async condition until true; the seconds it took; fails after `within` s."""
    start = time.monotonic()
    while not await check():
        if time.monotonic() - start > within:
            raise AssertionError(f"timed out after {within:.1f} s waiting for {what}")
        await asyncio.sleep(every)
    return time.monotonic() - start


async def triage_running(cluster: Cluster, workers: Workers) -> None:
    """A worker for this cluster: the server's own in-process one, or one started and ready."""
    if cluster.redis is None:
        return
    worker = workers.start(cluster)
    await wait_reading_the_stream(cluster.redis.url, worker, WORKER_START_SECONDS)


async def message_rows(cluster: Cluster, thread_id: int) -> list[dict[str, object]]:
    return [row for row in await messages_of_thread(cluster.database_url, thread_id)]


def is_suicidal(event_data: str) -> bool:
    return 'href="tel:3114"' in event_data


# --- a: the guidance and the alert, once; nothing for benign wording ---------------------------


async def test_an_emergency_brings_the_patient_guidance_and_staff_an_alert_once(
    cluster: Cluster, people: Login, workers: Workers
) -> None:
    await triage_running(cluster, workers)
    alice = await people(cluster.base_url, ALICE)
    martin = await people(cluster.base_url, MARTIN)
    secretary = await people(cluster.base_url, SECRETARIAT)
    bob = await people(cluster.base_url, BOB)
    petit = await people(cluster.base_url, PETIT)
    thread = await alice.thread_id(ALICE_MARTIN_SUBJECT)
    alice_sse, alice_other_tab = await alice.sse(), await alice.sse()
    martin_ws, secretary_ws = await martin.ws(), await secretary.ws()
    bob_sse, petit_ws = await bob.sse(), await petit.ws()

    cardiac = token()
    started = time.monotonic()
    await healthy_post(alice, thread, f"{CARDIAC} {cardiac}")
    await wait_until(
        lambda: bool(guidance_events(alice_sse)), PROMPT_SECONDS, "the patient's guidance"
    )
    assert time.monotonic() - started < PROMPT_SECONDS
    await wait_until(
        lambda: bool(
            guidance_events(alice_other_tab)
            and alerts(martin_ws, thread)
            and alerts(secretary_ws, thread)
        ),
        what="the guidance on Alice's other tab and the alert on both staff sockets",
    )
    await asyncio.sleep(SETTLE_SECONDS)

    for tab in (alice_sse, alice_other_tab):
        [guidance] = guidance_events(tab)
        assert guidance.id is not None and guidance.id.isdigit(), "a stream event with an id"
        assert 'href="tel:15"' in guidance.data
        assert 'href="tel:112"' in guidance.data
        assert not is_suicidal(guidance.data), "3114 is only for suicidal wording"
        message_event = tab.having(cardiac)[0]
        assert message_event.id is not None and int(message_event.id) < int(guidance.id)
    for staff in (martin_ws, secretary_ws):
        [alert_id] = alert_ids(staff, thread)
        assert alert_id == int(guidance.id), "the same event as the patient's guidance"
        assert not any('id="emergency-guidance"' in frame for frame in staff.frames)
        assert not any('href="tel:3114"' in frame for frame in staff.frames)
    # Nobody else hears of it: not another practice's doctor, not another patient.
    assert not guidance_events(bob_sse)
    assert not any(alert_marker(thread) in frame for frame in petit_ws.frames)
    assert not any(cardiac in frame for frame in petit_ws.frames)

    message_id = the_message(alice_sse.updates, cardiac)
    [stored] = [row for row in await message_rows(cluster, thread) if row["id"] == message_id]
    assert stored["triaged_at"] is not None and stored["emergency"]

    # Suicidal wording: the same, with 3114.
    suicidal = token()
    await healthy_post(alice, thread, f"{SUICIDAL} {suicidal}")
    await wait_until(
        lambda: (
            len(guidance_events(alice_sse)) == 2
            and len(alerts(martin_ws, thread)) == 2
            and len(alerts(secretary_ws, thread)) == 2
        ),
        PROMPT_SECONDS,
        "the second guidance and alerts",
    )
    await asyncio.sleep(SETTLE_SECONDS)
    first, second = guidance_events(alice_sse)
    assert int(second.id or 0) > int(first.id or 0)
    for link in ('href="tel:15"', 'href="tel:112"', 'href="tel:3114"'):
        assert link in second.data
    assert len(guidance_events(alice_other_tab)) == 2
    assert len(alerts(martin_ws, thread)) == 2 and len(alerts(secretary_ws, thread)) == 2
    assert not guidance_events(bob_sse)
    assert not any(alert_marker(thread) in frame for frame in petit_ws.frames)


async def test_benign_wording_brings_neither_guidance_nor_alert(
    cluster: Cluster, people: Login, workers: Workers
) -> None:
    await triage_running(cluster, workers)
    patient = await people(cluster.base_url, fresh_patient(cluster))
    martin = await people(cluster.base_url, MARTIN)
    secretary = await people(cluster.base_url, SECRETARIAT)
    patient_sse = await patient.sse()
    martin_ws, secretary_ws = await martin.ws(), await secretary.ws()

    opening = token()
    thread = await open_request(patient, f"{BENIGN} {opening}", "Renouvellement")
    follow_up = token()
    await healthy_post(patient, thread, f"Merci docteur, à bientôt. {follow_up}")
    await wait_until(
        lambda: bool(martin_ws.having(follow_up) and patient_sse.having(follow_up)),
        what="the benign messages on the streams",
    )

    # Both are assessed (so a worker did run), and then the sweep gets its turn too.
    async def both_assessed() -> bool:
        found = await message_rows(cluster, thread)
        return len(found) == 2 and all(row["triaged_at"] is not None for row in found)

    await eventually(both_assessed, SWEEP_SECONDS, "the benign messages to be assessed")
    await asyncio.sleep(2.5)  # more than a sweep period

    assert not guidance_events(patient_sse)
    for staff in (martin_ws, secretary_ws):
        assert not any(alert_marker(thread) in frame for frame in staff.frames)
        assert not any('class="emergency-alert"' in frame for frame in staff.frames)
    assert not any(row["emergency"] for row in await message_rows(cluster, thread))
    page = await patient.http.get(f"/threads/{thread}")
    assert page.status_code == 200
    assert 'class="emergency-guidance"' not in page.text
    ids = {int(row["id"]) for row in await message_rows(cluster, thread)}  # type: ignore[call-overload]
    assert not ids & set(await flagged_events(cluster.database_url))


# --- b: the guidance is a stream event like any other ------------------------------------------


async def test_the_guidance_is_replayed_after_last_event_id_once_and_never_again(
    cluster: Cluster, people: Login, workers: Workers
) -> None:
    await triage_running(cluster, workers)
    patient = await people(cluster.base_url, fresh_patient(cluster))
    martin = await people(cluster.base_url, MARTIN)
    thread = await open_request(patient, BENIGN, "Ordonnance")
    live = await patient.sse()
    martin_live = await martin.ws()

    word = token()
    await healthy_post(patient, thread, f"{CARDIAC} {word}")
    await wait_until(
        lambda: bool(guidance_events(live) and alerts(martin_live, thread)),
        PROMPT_SECONDS,
        "the guidance and the alert",
    )
    before = live.having(word)[0].id
    [guidance] = guidance_events(live)
    assert before is not None and guidance.id is not None
    assert int(before) < int(guidance.id)
    [alert_cursor] = alert_ids(martin_live, thread)
    [message_cursor] = event_ids_of(martin_live.frames, word)
    assert message_cursor == int(before) and alert_cursor == int(guidance.id)

    # Reconnecting from just before it: the guidance once, with the same id, nothing older.
    replay = await patient.sse(last_event_id=before)
    await wait_until(lambda: bool(guidance_events(replay)), what="the replayed guidance")
    await asyncio.sleep(SETTLE_SECONDS)
    [replayed] = guidance_events(replay)
    assert replayed.id == guidance.id
    assert replayed.data == guidance.data
    assert not replay.having(word), "the event at Last-Event-ID is not sent again"
    staff_replay = await martin.ws(after=message_cursor)
    await wait_until(lambda: bool(alerts(staff_replay, thread)), what="the replayed alert")

    # Reconnecting from the guidance itself, or after: never again.
    after = await patient.sse(last_event_id=guidance.id)
    staff_after = await martin.ws(after=alert_cursor)
    marker = token()
    await healthy_post(patient, thread, f"Merci. {marker}")
    await wait_until(
        lambda: bool(after.having(marker) and staff_after.having(marker)),
        what="a later message on the resumed streams",
    )
    await asyncio.sleep(SETTLE_SECONDS)
    assert not guidance_events(after)
    assert not alerts(staff_after, thread)
    assert len(guidance_events(live)) == 1 and len(guidance_events(replay)) == 1
    assert len(alerts(staff_replay, thread)) == 1 and len(alerts(martin_live, thread)) == 1


# --- c: a worker dies holding the job ----------------------------------------------------------


@pytest.mark.parametrize("name", ["redis", "pair"])
async def test_a_job_held_by_a_worker_that_died_is_assessed_by_the_next_one(
    request: pytest.FixtureRequest, name: str, people: Login, workers: Workers
) -> None:
    cluster: Cluster = request.getfixturevalue(f"{name}_cluster")
    assert cluster.redis is not None
    url = cluster.redis.url
    near, far = cluster.servers[0], cluster.servers[-1]
    patient = await people(near.base_url, fresh_patient(cluster))
    martin = await people(far.base_url, MARTIN)

    doomed = workers.start(cluster)
    thread = await open_request(patient, BENIGN, "Question")

    async def first_assessed() -> bool:
        found = await message_rows(cluster, thread)
        return bool(found) and found[0]["triaged_at"] is not None

    await eventually(first_assessed, WORKER_START_SECONDS, "the worker to assess a message")
    patient_sse = await patient.sse()
    martin_ws = await martin.ws()

    # Freeze the worker just as it starts waiting for jobs, then post: Redis hands the new
    # entry to the frozen worker, where it sits in that worker's pending list. Should the post
    # be slower than the worker's one-second wait, the entry is not handed out: thaw the
    # worker (it assesses that message as usual) and try again.
    async def held(consumer: str) -> bool:
        return len((await pending_by_consumer(url)).get(consumer, [])) == 1

    earlier = 0  # emergencies assessed normally by failed attempts
    for _attempt in range(3):
        consumer = await wait_reading_the_stream(url, doomed, within=10)
        doomed.pause()
        word = token()
        await healthy_post(patient, thread, f"{CARDIAC} {word}")
        try:
            await eventually(
                lambda bound=consumer: held(bound), 2.0, "the job to wait for the frozen worker"
            )
            break
        except AssertionError:
            doomed.resume()
            earlier += 1
            await wait_until(
                lambda count=earlier: len(guidance_events(patient_sse)) == count,
                WORKER_START_SECONDS,
                "the thawed worker to assess the message",
            )
    else:
        pytest.fail("the frozen worker was never handed the job", pytrace=False)
    doomed.kill()
    await asyncio.sleep(SETTLE_SECONDS)
    assert len(guidance_events(patient_sse)) == earlier, "nobody assessed it yet"
    emergency_row = (await message_rows(cluster, thread))[-1]
    assert word in str(emergency_row["body"])
    assert emergency_row["triaged_at"] is None

    workers.start(cluster)
    await wait_until(
        lambda: (
            len(guidance_events(patient_sse)) == earlier + 1
            and len(alerts(martin_ws, thread)) == earlier + 1
        ),
        WORKER_START_SECONDS,
        "the next worker to assess the message",
    )
    await eventually(
        lambda: _no_pending(url), WORKER_START_SECONDS, "the reclaimed job to be acknowledged"
    )
    await asyncio.sleep(SETTLE_SECONDS)
    assert len(guidance_events(patient_sse)) == earlier + 1, "its guidance once"
    assert len(alerts(martin_ws, thread)) == earlier + 1
    stored = (await message_rows(cluster, thread))[-1]
    assert stored["triaged_at"] is not None and stored["emergency"]
    assert len((await flagged_events(cluster.database_url))[int(stored["id"])]) == 1  # type: ignore[call-overload]


async def _no_pending(url: str) -> bool:
    return await pending_count(url) == 0


# --- d: no worker at all, then one ------------------------------------------------------------


@pytest.mark.parametrize("name", ["redis", "pair"])
async def test_a_message_posted_while_no_worker_runs_is_flagged_once_one_starts(
    request: pytest.FixtureRequest, name: str, people: Login, workers: Workers
) -> None:
    cluster: Cluster = request.getfixturevalue(f"{name}_cluster")
    assert cluster.redis is not None
    near, far = cluster.servers[0], cluster.servers[-1]
    patient = await people(near.base_url, fresh_patient(cluster))
    other_tab = await people(far.base_url, patient.email, same_session_as=patient)
    martin = await people(far.base_url, MARTIN)
    patient_sse, other_sse = await patient.sse(), await other_tab.sse()
    martin_ws = await martin.ws()

    word = token()
    thread = await open_request(patient, f"{SUICIDAL} {word}", "Ce soir")
    await wait_until(
        lambda: bool(martin_ws.having(f'data-thread-id="{thread}"')),
        what="the request on Dr Martin's socket",
    )
    await asyncio.sleep(3.0)
    assert not guidance_events(patient_sse), "with no worker, nothing assessed the message"
    assert not alerts(martin_ws, thread)
    [row] = await message_rows(cluster, thread)
    assert row["triaged_at"] is None

    workers.start(cluster)
    await wait_until(
        lambda: bool(
            guidance_events(patient_sse)
            and guidance_events(other_sse)
            and alerts(martin_ws, thread)
        ),
        WORKER_START_SECONDS,
        "the guidance once a worker runs",
    )
    await eventually(lambda: _no_pending(cluster.redis.url), 10, "the job to be acknowledged")  # type: ignore[union-attr]
    await asyncio.sleep(SETTLE_SECONDS)
    for stream in (patient_sse, other_sse):
        [guidance] = guidance_events(stream)
        assert is_suicidal(guidance.data) and 'href="tel:15"' in guidance.data
    assert len(alerts(martin_ws, thread)) == 1
    [row] = await message_rows(cluster, thread)
    assert row["emergency"] and row["triaged_at"] is not None


# --- e: Redis restarted while messages arrive ---------------------------------------------------


@pytest.mark.parametrize("name", ["redis", "pair"])
async def test_redis_restart_loses_no_assessment_and_doubles_no_guidance(
    request: pytest.FixtureRequest, name: str, people: Login, workers: Workers
) -> None:
    cluster: Cluster = request.getfixturevalue(f"{name}_cluster")
    assert cluster.redis is not None
    near, far = cluster.servers[0], cluster.servers[-1]
    await triage_running(cluster, workers)
    first = await people(near.base_url, fresh_patient(cluster))
    second = await people(far.base_url, fresh_patient(cluster))
    martin = await people(far.base_url, MARTIN)
    streams: dict[str, SSEStream] = {
        first.email: await first.sse(),
        second.email: await second.sse(),
    }
    martin_ws = await martin.ws()
    expected: dict[str, bool] = {}  # token -> emergency

    async def post(person: Person, thread_id: int, emergency_text: str | None) -> None:
        word = token()
        expected[word] = emergency_text is not None
        started = time.monotonic()
        answer = await person.post(thread_id, f"{emergency_text or BENIGN} {word}")
        assert answer.status_code == 303, f"posting: {answer.status_code}"
        assert time.monotonic() - started < POST_SECONDS, "a POST must not hang on Redis"

    # Before: one request opens with an emergency, the other with a benign question.
    opening = {token(): True, token(): False}
    words = list(opening)
    threads = {
        first.email: await open_request(first, f"{CARDIAC} {words[0]}", "Douleur"),
        second.email: await open_request(second, f"{BENIGN} {words[1]}", "Ordonnance"),
    }
    expected.update(opening)
    await post(first, threads[first.email], None)
    await post(second, threads[second.email], SUICIDAL)

    cluster.redis.kill()
    try:
        await post(first, threads[first.email], None)
        await post(second, threads[second.email], CARDIAC)
        await post(first, threads[first.email], SUICIDAL)
    finally:
        cluster.redis.start()
    await post(second, threads[second.email], None)
    await post(first, threads[first.email], CARDIAC)

    # Every patient message is assessed, from the job or from the sweep.
    async def all_assessed() -> bool:
        for thread_id in threads.values():
            found = await message_rows(cluster, thread_id)
            if any(row["triaged_at"] is None for row in found):
                return False
        return True

    await eventually(all_assessed, 30, "every patient message to be assessed", every=0.5)
    flagged = await flagged_events(cluster.database_url)
    by_patient: dict[str, set[str]] = {}
    for email, thread_id in threads.items():
        found = await message_rows(cluster, thread_id)
        assert len(found) == (4 if email == second.email else 5)
        for row in found:
            word = next(w for w in expected if w in str(row["body"]))
            assert bool(row["emergency"]) is expected[word], f"{row['body']!r}"
            events = flagged.get(int(row["id"]), [])  # type: ignore[call-overload]
            assert len(events) == (1 if expected[word] else 0), f"events for {row['body']!r}"
            by_patient.setdefault(email, set()).update(str(event) for event in events)

    # Each patient's stream gets each guidance once, whatever the path it took.
    def delivered(email: str) -> list[str]:
        return [event.id or "" for event in guidance_events(streams[email])]

    await wait_until(
        lambda: all(set(delivered(email)) == ids for email, ids in by_patient.items()),
        within=15,
        what="every guidance on the patients' streams",
    )
    await asyncio.sleep(SETTLE_SECONDS)
    for email, ids in by_patient.items():
        assert sorted(delivered(email)) == sorted(ids), f"{email}: each guidance once"
        assert not streams[email].ended
    for email, thread_id in threads.items():
        cursors = alert_ids(martin_ws, thread_id)
        assert sorted(str(c) for c in cursors) == sorted(by_patient[email]), "each alert once"
    assert not martin_ws.ended


# --- f: the embedded server's own worker -------------------------------------------------------


async def test_the_embedded_server_sweeps_up_messages_left_unassessed(
    inprocess_cluster: Cluster, people: Login
) -> None:
    cluster = inprocess_cluster
    patient = await people(cluster.base_url, fresh_patient(cluster))
    martin = await people(cluster.base_url, MARTIN)
    thread = await open_request(patient, BENIGN, "Suivi")
    patient_sse = await patient.sse()
    martin_ws = await martin.ws()

    left = datetime.now(UTC) - timedelta(seconds=10)
    message_id = await insert_unassessed_message(cluster.database_url, thread, CARDIAC, left)
    await wait_until(
        lambda: bool(guidance_events(patient_sse) and alerts(martin_ws, thread)),
        within=SWEEP_SECONDS,
        what="the sweep to flag the message left unassessed",
    )
    await asyncio.sleep(SETTLE_SECONDS)
    [guidance] = guidance_events(patient_sse)
    assert 'href="tel:15"' in guidance.data and 'href="tel:112"' in guidance.data
    assert len(alerts(martin_ws, thread)) == 1
    [row] = [row for row in await message_rows(cluster, thread) if row["id"] == message_id]
    assert row["emergency"] and row["triaged_at"] is not None
    assert len((await flagged_events(cluster.database_url))[message_id]) == 1
    # The patient's page keeps the guidance while the thread is flagged.
    page = await patient.http.get(f"/threads/{thread}")
    assert 'class="emergency-guidance"' in page.text


async def test_the_embedded_server_flags_a_posted_emergency_in_the_database(
    inprocess_cluster: Cluster, people: Login
) -> None:
    cluster = inprocess_cluster
    patient = await people(cluster.base_url, fresh_patient(cluster))
    word = token()
    thread = await open_request(patient, f"{CARDIAC} {word}", "Douleur")

    async def flagged() -> bool:
        [row] = await message_rows(cluster, thread)
        return row["triaged_at"] is not None

    await eventually(flagged, PROMPT_SECONDS, "the embedded worker to assess the request")
    [row] = await message_rows(cluster, thread)
    assert row["emergency"]
    [thread_row] = await rows(
        cluster.database_url, "SELECT emergency FROM thread WHERE id = ?", thread
    )
    assert thread_row["emergency"]
    inbox = await (await people(cluster.base_url, MARTIN)).http.get("/inbox")
    assert alert_marker(thread) in inbox.text, "Dr Martin's inbox shows the emergency badge"


# --- the database is shared with worker processes -----------------------------------------------


@pytest.mark.parametrize("name", ["redis", "pair"])
async def test_patients_posting_while_a_worker_process_writes_are_never_refused(
    request: pytest.FixtureRequest, name: str, people: Login, workers: Workers
) -> None:
    """Each patient message makes a worker process write its assessment a few milliseconds
    later, while the next message is being posted: no post may fail for it (on SQLite, the
    web process must wait for the worker's write lock, not answer 500 "database is locked")."""
    cluster: Cluster = request.getfixturevalue(f"{name}_cluster")
    await triage_running(cluster, workers)
    writers = [await people(cluster.base_url, fresh_patient(cluster)) for _ in range(2)]
    threads = [await open_request(writer, BENIGN, "Suivi") for writer in writers]

    async def chat(writer: Person, thread_id: int) -> list[int]:
        answers = []
        for number in range(8):
            text = CARDIAC if number % 4 == 0 else BENIGN
            answers.append((await writer.post(thread_id, f"{text} {token()}")).status_code)
        return answers

    results = await asyncio.gather(*(chat(w, t) for w, t in zip(writers, threads, strict=True)))
    assert results == [[303] * 8, [303] * 8], "every message is accepted"

    async def all_assessed() -> bool:
        for thread_id in threads:
            found = await message_rows(cluster, thread_id)
            if len(found) != 9 or any(row["triaged_at"] is None for row in found):
                return False
        return True

    await eventually(all_assessed, SWEEP_SECONDS + 5, "every message to be assessed")
