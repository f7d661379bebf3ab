"""server.joined loads the same objects as Tortoise's `select_related`, on both databases."""

from __future__ import annotations

import pytest
from core_support import ALICE, MARTIN, SUBJECT_RENEWAL, thread_by_subject, user

from server import joined
from server.models import Message, Session, Thread
from server.sessions import start_session

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("db")]

THREAD_RELATIONS = ("practice", "patient", "practitioner", "assignee")


def _fields(instance: object) -> dict[str, object]:
    meta = instance._meta  # type: ignore[attr-defined]
    return {name: getattr(instance, name) for name in meta.fields_db_projection}


async def test_a_thread_and_its_people_match_what_the_orm_loads() -> None:
    thread = await thread_by_subject(SUBJECT_RENEWAL)
    martin = await user(MARTIN)
    await Thread.filter(id=thread.id).update(assignee_id=martin.id)
    expected = await Thread.get(id=thread.id).select_related(*THREAD_RELATIONS)

    [loaded] = await joined.select(Thread, THREAD_RELATIONS, "main.id = ?", thread.id)

    assert _fields(loaded) == _fields(expected)
    assert loaded.subject == SUBJECT_RENEWAL  # decrypted like any other read
    for relation in THREAD_RELATIONS:
        assert _fields(getattr(loaded, relation)) == _fields(getattr(expected, relation))
    assert loaded.assignee.display_name == martin.display_name


async def test_a_missing_relation_is_none_not_an_empty_object() -> None:
    thread = await thread_by_subject(SUBJECT_RENEWAL)
    await Thread.filter(id=thread.id).update(assignee_id=None)

    [loaded] = await joined.select(Thread, THREAD_RELATIONS, "main.id = ?", thread.id)

    assert loaded.assignee is None
    assert loaded.practitioner.id == thread.practitioner_id


async def test_nested_relations_hang_on_their_parent() -> None:
    alice, martin = await user(ALICE), await user(MARTIN)
    await start_session(alice)
    await start_session(martin)

    [patient] = await joined.select(
        Session, ("user", "user__practice"), "main.user_id = ?", alice.id
    )
    [staff] = await joined.select(
        Session, ("user", "user__practice"), "main.user_id = ?", martin.id
    )

    assert patient.user.email == ALICE
    assert patient.user.practice is None  # patients belong to no practice
    assert staff.user.practice.id == martin.practice_id
    assert staff.user.practice.name


async def test_several_rows_keep_the_requested_order_and_no_match_is_empty() -> None:
    thread = await thread_by_subject(SUBJECT_RENEWAL)
    ids = list(
        await Message.filter(thread_id=thread.id).order_by("-id").values_list("id", flat=True)
    )
    assert len(ids) >= 2

    loaded = await joined.select(
        Message,
        ("author",),
        f"main.thread_id = ? ORDER BY main.id DESC LIMIT {len(ids)}",
        thread.id,
    )

    assert [m.id for m in loaded] == ids
    assert all(m.author is None or m.author.id == m.author_id for m in loaded)
    assert await joined.select(Message, ("author",), "main.id = ?", -1) == []
