"""Reconnecting: exactly the missed events, in order, once; or a reset when too much was missed."""

from __future__ import annotations

import asyncio
import time

import pytest

from server.streams import MAX_REPLAY

from .conftest import Flood, Login
from .support import (
    ALICE,
    ALICE_MARTIN_SUBJECT,
    MARTIN,
    Cluster,
    Person,
    SSEStream,
    WSStream,
    cursor_of,
    is_reset,
    prune_events_before,
    token,
    wait_until,
)

pytestmark = pytest.mark.anyio


def _in_order(updates: list[str], words: list[str]) -> list[str]:
    """Which of `words` the updates carry, in the order they arrived (repeats included)."""
    found: list[str] = []
    for update in updates:
        found.extend(word for word in words if word in update)
    return found


async def test_sse_resumes_after_last_event_id(cluster: Cluster, people: Login) -> None:
    alice = await people(cluster.base_url, ALICE)
    martin = await people(cluster.base_url, MARTIN)
    thread = await alice.thread_id(ALICE_MARTIN_SUBJECT)
    words = [token() for _ in range(6)]

    first = await alice.sse()
    for word in words[:2]:
        await martin.say(thread, word)
    await wait_until(lambda: bool(first.having(words[1])), what="the first two messages")
    last_seen = first.having(words[1])[0].id
    assert last_seen is not None
    await first.close()

    for word in words[2:5]:  # while Alice is away
        await martin.say(thread, word)

    # Last-Event-ID (the browser's own reconnect) wins over the page's ?after= cursor.
    again = await alice.sse(last_event_id=last_seen, after=1)
    await wait_until(lambda: bool(again.having(words[4])), what="the missed messages")
    await martin.say(thread, words[5])  # and the stream goes on live
    await wait_until(lambda: bool(again.having(words[5])), what="a live message after replay")
    await asyncio.sleep(0.3)

    assert _in_order(again.updates, words) == words[2:], "exactly the missed ones, in order, once"
    ids = [int(event.id) for event in again.events if event.id is not None]
    assert len(ids) == len(again.events), "every event carries an id"
    assert ids == sorted(set(ids)), "in order, each once"
    assert min(ids) > int(last_seen), "none at or before Last-Event-ID"


async def test_websocket_resumes_after_the_cursor(cluster: Cluster, people: Login) -> None:
    martin = await people(cluster.base_url, MARTIN)
    writer = await people(cluster.base_url, MARTIN)
    thread = await martin.thread_id(ALICE_MARTIN_SUBJECT)
    words = [token() for _ in range(6)]

    first = await martin.ws()
    for word in words[:2]:
        await writer.say(thread, word)
    await wait_until(lambda: bool(first.having(words[1])), what="the first two messages")
    cursor = cursor_of(first.having(words[1])[0])
    assert cursor is not None
    await first.close()

    for word in words[2:5]:
        await writer.say(thread, word)

    again = await martin.ws(after=cursor)
    await wait_until(lambda: bool(again.having(words[4])), what="the missed messages")
    await writer.say(thread, words[5])
    await wait_until(lambda: bool(again.having(words[5])), what="a live message after replay")
    await asyncio.sleep(0.3)

    assert _in_order(again.frames, words) == words[2:]
    cursors = [c for frame in again.frames if (c := cursor_of(frame)) is not None]
    assert cursors == sorted(set(cursors)) and min(cursors) > cursor


@pytest.mark.parametrize("name", ["inprocess", "redis", "pair"])
async def test_a_stream_receives_every_event_committed_after_it_opened(
    request: pytest.FixtureRequest, name: str, people: Login
) -> None:
    """Streams opened while messages are being committed (on another process, for the pair):
    those starting now get a gap-free tail of what a stream opened beforehand got, including
    everything posted after they opened; those resuming from an earlier id get exactly what
    followed it, replayed and live meeting without a gap or a repeat."""
    cluster: Cluster = request.getfixturevalue(f"{name}_cluster")
    poster_url, reader_url = cluster.servers[0].base_url, cluster.servers[-1].base_url
    writers = [await people(poster_url, MARTIN) for _ in range(3)]
    alice = await people(reader_url, ALICE)
    martin = await people(reader_url, MARTIN)
    thread = await alice.thread_id(ALICE_MARTIN_SUBJECT)
    reference_sse, reference_ws = await alice.sse(), await martin.ws()
    before = token()
    await writers[0].say(thread, before)
    await wait_until(
        lambda: bool(reference_sse.having(before) and reference_ws.having(before)),
        what="the message before the run",
    )
    resume_id = reference_sse.last_id
    resume_cursor = reference_ws.last_cursor
    assert resume_id is not None and resume_cursor is not None
    run, per_writer = token(), 20
    started: dict[str, float] = {}

    async def post_all(writer: Person, first: int) -> None:
        for number in range(first, 3 * per_writer, 3):
            word = f"{run}-{number:03d}."
            started[word] = time.monotonic()
            await writer.say(thread, word)

    posting = asyncio.gather(*(post_all(w, i) for i, w in enumerate(writers)))
    await wait_until(lambda: len(started) >= 12, what="the first posts")
    opening = [alice.sse() for _ in range(3)] + [martin.ws() for _ in range(2)]
    opening += [alice.sse(last_event_id=resume_id) for _ in range(3)]
    opening += [martin.ws(after=resume_cursor) for _ in range(2)]
    late = await asyncio.gather(*opening)
    now_sse, now_ws, resumed_sse, resumed_ws = late[:3], late[3:5], late[5:8], late[8:]
    await posting
    words = sorted(started)
    last = max(words, key=lambda word: started[word])
    streams = [reference_sse, reference_ws, *late]
    await wait_until(lambda: all(s.having(last) for s in streams), what="the posts everywhere")
    await asyncio.sleep(0.3)
    for stream in streams:
        assert stream.opened_at is not None
        assert not stream.ended, "the stream stayed open"
        missing = [w for w in words if started[w] > stream.opened_at and not stream.having(w)]
        assert not missing, f"posted after the stream opened, never received: {missing}"

    def sse_ids(stream: SSEStream) -> list[int]:
        return [int(e.id) for e in stream.events if e.id is not None and run in e.data]

    def ws_ids(stream: WSStream) -> list[int]:
        return [c for f in stream.frames if run in f and (c := cursor_of(f)) is not None]

    every_sse, every_ws = sse_ids(reference_sse), ws_ids(reference_ws)
    assert len(every_sse) == len(words) == len(every_ws), "the references got every post once"
    for got, reference in [(sse_ids(s), every_sse) for s in now_sse] + [
        (ws_ids(w), every_ws) for w in now_ws
    ]:
        assert got and got == reference[reference.index(got[0]) :], "a gap-free tail, once"
    for got, reference in [(sse_ids(s), every_sse) for s in resumed_sse] + [
        (ws_ids(w), every_ws) for w in resumed_ws
    ]:
        assert got == reference, "exactly what followed the resume point, in order, once"


async def _cursor_missing(flood: Flood, reader: Person, writer: Person, missed: int) -> int:
    """An event id after which `reader` (Alice on SSE, or Dr Martin on the WebSocket) has missed
    exactly `missed` events: of the flood, and of whatever came after it, which a probe stream
    counts first."""
    thread = await writer.thread_id(ALICE_MARTIN_SUBJECT)
    closing = token()
    if reader.email == ALICE:
        probe_sse = await reader.sse(last_event_id=str(flood.event_ids[-1]))
        await writer.say(thread, closing)
        await wait_until(lambda: bool(probe_sse.having(closing)), what="the probe's message")
        updates = probe_sse.updates
        await probe_sse.close()
    else:
        probe_ws = await reader.ws(after=flood.event_ids[-1])
        await writer.say(thread, closing)
        await wait_until(lambda: bool(probe_ws.having(closing)), what="the probe's message")
        updates = probe_ws.frames
        await probe_ws.close()
    assert not any(is_reset(update) for update in updates)
    since_flood = sum(1 for update in updates if cursor_of(update) is not None)
    ids = [flood.marker_id, *flood.event_ids]
    assert len(ids) == len(set(ids)) > MAX_REPLAY + 1
    index = len(ids) - 1 + since_flood - missed
    assert index >= 0
    return ids[index]


_NEVER_CATCHES_UP = (
    "the server closed the stream while replaying {missed} missed events, after sending {sent} "
    "({why}); the client reconnects from the same event id and never catches up"
)


async def test_max_replay_missed_events_are_all_replayed_over_sse(
    cluster: Cluster, flood: Flood, people: Login
) -> None:
    """Up to MAX_REPLAY missed events come back, in order, each once, and the stream goes on."""
    alice = await people(cluster.base_url, ALICE)
    martin = await people(cluster.base_url, MARTIN)
    thread = await alice.thread_id(ALICE_MARTIN_SUBJECT)
    after = await _cursor_missing(flood, alice, martin, MAX_REPLAY)

    full = await alice.sse(last_event_id=str(after))
    await wait_until(
        lambda: len(full.events) >= MAX_REPLAY or full.ended,
        within=20,
        what=f"a replay of {MAX_REPLAY} events",
    )
    assert not full.ended, _NEVER_CATCHES_UP.format(
        missed=MAX_REPLAY, sent=len(full.events), why=f"comments: {full.comments}"
    )
    later = token()
    await martin.say(thread, later)
    await wait_until(lambda: bool(full.having(later)), what="live updates after the replay")
    replayed = [int(event.id) for event in full.events if event.id is not None]
    assert not any(is_reset(update) for update in full.updates)
    assert len(replayed) == len(full.events) == MAX_REPLAY + 1
    assert replayed == sorted(set(replayed)) and replayed[0] > after


async def test_max_replay_missed_events_are_all_replayed_over_websocket(
    cluster: Cluster, flood: Flood, people: Login
) -> None:
    martin = await people(cluster.base_url, MARTIN)
    writer = await people(cluster.base_url, MARTIN)
    thread = await martin.thread_id(ALICE_MARTIN_SUBJECT)
    after = await _cursor_missing(flood, martin, writer, MAX_REPLAY)

    full = await martin.ws(after=after)
    await wait_until(
        lambda: len(full.frames) >= MAX_REPLAY or full.ended,
        within=20,
        what=f"a replay of {MAX_REPLAY} events",
    )
    assert not full.ended, _NEVER_CATCHES_UP.format(
        missed=MAX_REPLAY, sent=len(full.frames), why=f"close code {full.close_code}"
    )
    later = token()
    await writer.say(thread, later)
    await wait_until(lambda: bool(full.having(later)), what="live updates after the replay")
    cursors = [cursor_of(frame) for frame in full.frames]
    assert not any(is_reset(frame) for frame in full.frames)
    assert len(cursors) == MAX_REPLAY + 1 and None not in cursors
    assert cursors == sorted(set(cursors)) and cursors[0] > after  # type: ignore[operator]


async def test_more_than_max_replay_missed_events_get_a_reset(
    cluster: Cluster, flood: Flood, people: Login
) -> None:
    """One more missed event than MAX_REPLAY: a reset fragment (the page reloads its parts)
    instead of a replay, on SSE (Last-Event-ID) and on the WebSocket (?after=)."""
    alice = await people(cluster.base_url, ALICE)
    martin = await people(cluster.base_url, MARTIN)
    thread = await alice.thread_id(ALICE_MARTIN_SUBJECT)
    after = await _cursor_missing(flood, alice, martin, MAX_REPLAY + 1)

    reset = await alice.sse(last_event_id=str(after))
    await wait_until(lambda: bool(reset.events), what="the reset")
    assert is_reset(reset.events[0].data)
    assert reset.events[0].id is not None and int(reset.events[0].id) >= flood.event_ids[-1]
    later = token()
    await martin.say(thread, later)  # and then the stream goes on live
    await wait_until(lambda: bool(reset.having(later)), what="live updates after the reset")
    assert not any(flood.run in update for update in reset.updates), "no replay with the reset"
    assert not reset.ended

    ws = await martin.ws(after=flood.marker_id - 1)
    await wait_until(lambda: bool(ws.frames), what="the WebSocket reset")
    assert is_reset(ws.frames[0])
    await asyncio.sleep(0.3)
    assert not any(flood.run in frame for frame in ws.frames)
    assert not ws.ended


async def test_a_cursor_older_than_the_log_gets_a_reset(cluster: Cluster, people: Login) -> None:
    """The log no longer reaches back to the client's cursor (a retention job removed the
    oldest events): a reset rather than a replay with a hole in it. Runs last in this module,
    as it removes the events the tests above replay."""
    alice = await people(cluster.base_url, ALICE)
    martin = await people(cluster.base_url, MARTIN)
    thread = await alice.thread_id(ALICE_MARTIN_SUBJECT)
    live = await alice.sse()
    kept = token()
    await martin.say(thread, kept)
    await wait_until(lambda: bool(live.having(kept)), what="the message that stays in the log")
    kept_id = int(live.having(kept)[0].id or 0)
    assert kept_id > 2
    await prune_events_before(cluster.database_url, kept_id)

    gone = await alice.sse(last_event_id=str(kept_id - 2))
    await wait_until(lambda: bool(gone.events), what="the reset")
    assert is_reset(gone.events[0].data)
    await asyncio.sleep(0.3)
    assert not gone.having(kept), "no replay with a hole in it"

    # Nothing older than the oldest kept event was missed: a normal replay.
    whole = await alice.sse(last_event_id=str(kept_id - 1))
    await wait_until(lambda: bool(whole.having(kept)), what="the replay")
    assert not any(is_reset(update) for update in whole.updates)
