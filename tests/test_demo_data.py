"""Every test starts from the contract's demo data, and that data says what the contract says."""

from __future__ import annotations

import pytest
from core_support import (
    ACCOUNTS,
    ADMIN,
    ALICE,
    BERNARD,
    BOB,
    CHLOE,
    MARTIN,
    PATIENTS,
    PETIT,
    SECRETARIAT,
    user,
)
from tortoise.transactions import in_transaction

from server import demo
from server.actions.threads import OPEN_STATUSES, lock_patient_and_count
from server.models import CareRelationship, Message, MessagingSettings, Practice, Thread, User
from server.passwords import verify_password
from server.rules.quotas import DEFAULT_QUOTA

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("db")]

ROLES = {
    ADMIN: "admin",
    ALICE: "patient",
    BOB: "patient",
    CHLOE: "patient",
    MARTIN: "practitioner",
    BERNARD: "practitioner",
    PETIT: "practitioner",
    SECRETARIAT: "secretary",
}
CONSULTED = {ALICE: {MARTIN, BERNARD}, BOB: {BERNARD}, CHLOE: {PETIT}}


async def test_a_test_that_changes_everything() -> None:
    # The next test checks that none of this survives.
    await Thread.all().update(status="closed")
    await Message.all().delete()
    await User.filter(email=ALICE).update(display_name="Changed")
    await User.create(
        email="intruder@example.test", password_hash="x", role="admin", display_name="X"
    )


async def test_the_next_test_starts_from_the_demo_data_again() -> None:
    assert sorted(await User.all().values_list("email", flat=True)) == sorted(ACCOUNTS)
    assert (await user(ALICE)).display_name == "Alice Durand"
    assert sorted(await Thread.all().values_list("status", flat=True)) == [
        "closed",
        "open",
        "open",
        "pending",
    ]
    assert await Message.all().count() == 7
    # Ids restart too, so that a test never depends on what ran before it.
    assert sorted(await Practice.all().values_list("id", flat=True)) == [1, 2]


async def test_seeding_twice_changes_nothing() -> None:
    before = (await User.all().count(), await Thread.all().count(), await Message.all().count())
    await demo.create_demo()
    after = (await User.all().count(), await Thread.all().count(), await Message.all().count())
    assert after == before


@pytest.mark.parametrize("email", ACCOUNTS)
async def test_accounts_have_the_contract_roles_and_password(email: str) -> None:
    account = await user(email)
    assert account.role == ROLES[email]
    assert account.is_active
    assert await verify_password(account.password_hash, "colloque-demo")


async def test_practices() -> None:
    martin, bernard, secretary, petit = (
        await user(MARTIN),
        await user(BERNARD),
        await user(SECRETARIAT),
        await user(PETIT),
    )
    assert martin.practice_id == bernard.practice_id == secretary.practice_id
    assert petit.practice_id is not None
    assert petit.practice_id != martin.practice_id
    for patient in PATIENTS:
        assert (await user(patient)).practice_id is None


async def test_messaging_settings() -> None:
    settings = {
        s.practitioner.email: s
        for s in await MessagingSettings.all().select_related("practitioner")
    }
    assert settings[MARTIN].messaging_enabled and settings[MARTIN].accepting_requests
    assert not settings[BERNARD].messaging_enabled
    assert settings[PETIT].messaging_enabled


@pytest.mark.parametrize("patient", PATIENTS)
async def test_care_relationships(patient: str) -> None:
    consulted = await CareRelationship.filter(patient__email=patient).values_list(
        "practitioner__email", flat=True
    )
    assert set(consulted) == CONSULTED[patient]


@pytest.mark.parametrize("patient", PATIENTS)
async def test_demo_patients_start_below_every_limit(patient: str) -> None:
    account = await user(patient)
    async with in_transaction() as connection:
        last_minute, last_day = await lock_patient_and_count(account.id, connection)
    assert last_minute == 0
    assert last_day == 0
    assert last_day + 20 <= DEFAULT_QUOTA.per_day
    open_requests = await Thread.filter(patient_id=account.id, status__in=OPEN_STATUSES).count()
    assert open_requests <= 2
