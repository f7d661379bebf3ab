"""server.actions.second_factor against the database: enrolment, codes, recovery, requirement."""

from __future__ import annotations

import anyio
import pytest
from core_support import ALICE, BOB, CHLOE, MARTIN, PETIT, SECRETARIAT, user
from second_factor_support import app_code, unused_code

from server.actions import second_factor
from server.demo import AUTRE, LILAS
from server.models import AuditEvent, Practice, RecoveryCode, User
from server.rules.refusal import Refused
from server.rules.second_factor import RECOVERY_CODE_COUNT
from server.settings import Settings

pytestmark = pytest.mark.anyio

KEY = "test-secret-key-for-recovery-codes-0123456789"


async def _enrolled(email: str) -> list[str]:
    someone = await user(email)
    await second_factor.start_enrolment(someone)
    return await second_factor.confirm_enrolment(someone, await app_code(email), KEY)


def test_codes_are_those_of_rfc_6238_with_sha1_six_digits() -> None:
    # RFC 6238 appendix B, SHA-1 row for T = 59 s: 94287082, of which apps show the last 6.
    secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"  # base32 of "12345678901234567890"
    assert second_factor._totp(secret).at(59) == "287082"


async def test_enrolment_counts_only_once_confirmed(db: Settings) -> None:
    alice = await user(ALICE)
    await second_factor.start_enrolment(alice)
    stored = await user(ALICE)
    assert stored.totp_secret and len(stored.totp_secret) == 32
    assert not second_factor.is_enabled(stored)
    uri = second_factor.provisioning_uri(stored)
    assert uri.startswith("otpauth://totp/Colloque:alice%40demo.colloque.test?")
    assert f"secret={stored.totp_secret}" in uri and "issuer=Colloque" in uri

    with pytest.raises(Refused) as wrong:
        await second_factor.confirm_enrolment(alice, "000000", KEY)
    assert wrong.value.refusal.code == "second_factor.bad_code"
    assert not second_factor.is_enabled(await user(ALICE))

    codes = await second_factor.confirm_enrolment(alice, await app_code(ALICE), KEY)
    assert second_factor.is_enabled(await user(ALICE))
    assert len(codes) == len(set(codes)) == RECOVERY_CODE_COUNT
    stored_hashes = await RecoveryCode.filter(user_id=alice.id).values_list("code_hash", flat=True)
    assert len(stored_hashes) == RECOVERY_CODE_COUNT
    for code in codes:
        assert all(code not in h and code.replace("-", "") not in h for h in stored_hashes)


async def test_confirming_without_a_started_enrolment_is_refused(db: Settings) -> None:
    with pytest.raises(Refused) as refused:
        await second_factor.confirm_enrolment(await user(BOB), "123456", KEY)
    assert refused.value.refusal.code == "second_factor.not_pending"


async def test_enrolling_twice_is_refused(db: Settings) -> None:
    await _enrolled(ALICE)
    with pytest.raises(Refused) as refused:
        await second_factor.start_enrolment(await user(ALICE))
    assert refused.value.refusal.code == "second_factor.already_enabled"


async def test_a_login_code_works_once(db: Settings) -> None:
    await _enrolled(ALICE)
    code = await unused_code(ALICE)
    alice = await user(ALICE)
    issued = alice.totp_last_step
    assert await second_factor.complete_login(alice.id, issued, code, KEY) is not None
    # The same code again, even with the step the first pending login was issued with.
    assert await second_factor.complete_login(alice.id, issued, code, KEY) is None
    moved = (await user(ALICE)).totp_last_step
    assert await second_factor.complete_login(alice.id, moved, code, KEY) is None


async def test_a_wrong_code_logs_nobody_in_and_is_audited(db: Settings) -> None:
    await _enrolled(ALICE)
    alice = await user(ALICE)
    current = await app_code(ALICE)
    wrong = f"{(int(current) + 1) % 1_000_000:06d}"
    assert await second_factor.complete_login(alice.id, alice.totp_last_step, wrong, KEY) is None
    assert await AuditEvent.filter(
        actor_id=alice.id, action="login.second_factor", outcome="denied"
    ).exists()


async def test_a_recovery_code_works_once_and_voids_the_pending_login(db: Settings) -> None:
    codes = await _enrolled(ALICE)
    alice = await user(ALICE)
    issued = alice.totp_last_step
    assert await second_factor.complete_login(alice.id, issued, codes[0].upper(), KEY)
    assert await second_factor.remaining_recovery_codes(alice) == RECOVERY_CODE_COUNT - 1
    assert await second_factor.pending_login_spent(alice.id, issued)
    moved = (await user(ALICE)).totp_last_step
    assert moved > issued
    assert await second_factor.complete_login(alice.id, moved, codes[0], KEY) is None
    assert await second_factor.complete_login(alice.id, moved, codes[1], KEY) is not None


async def test_recovery_codes_are_bound_to_their_user_and_key(db: Settings) -> None:
    alice_codes = await _enrolled(ALICE)
    await _enrolled(BOB)
    bob = await user(BOB)
    assert (
        await second_factor.complete_login(bob.id, bob.totp_last_step, alice_codes[0], KEY) is None
    )
    alice = await user(ALICE)
    other_key = KEY + "-rotated"
    assert (
        await second_factor.complete_login(
            alice.id, alice.totp_last_step, alice_codes[0], other_key
        )
        is None
    )


async def test_new_recovery_codes_void_the_old_ones(db: Settings) -> None:
    old = await _enrolled(ALICE)
    alice = await user(ALICE)
    with pytest.raises(Refused):
        await second_factor.regenerate_recovery_codes(alice, "not a code", KEY)
    code = await unused_code(ALICE)
    new = await second_factor.regenerate_recovery_codes(await user(ALICE), code, KEY)
    assert not set(new) & set(old)
    alice = await user(ALICE)
    step = alice.totp_last_step
    assert await second_factor.complete_login(alice.id, step, old[0], KEY) is None
    assert await second_factor.complete_login(alice.id, step, new[0], KEY) is not None


async def test_turning_off_needs_a_code_and_forgets_the_secret(db: Settings) -> None:
    codes = await _enrolled(ALICE)
    alice = await user(ALICE)
    with pytest.raises(Refused):
        await second_factor.disable(alice, "000000", KEY)
    assert second_factor.is_enabled(await user(ALICE))
    await second_factor.disable(alice, codes[3], KEY)
    stored = await user(ALICE)
    assert stored.totp_secret is None and stored.totp_enabled_at is None
    assert not await RecoveryCode.filter(user_id=stored.id).exists()
    assert (
        await second_factor.complete_login(stored.id, stored.totp_last_step, codes[4], KEY) is None
    )


async def test_demo_accounts_need_no_second_factor(db: Settings) -> None:
    for email in (ALICE, BOB, CHLOE, MARTIN, PETIT, SECRETARIAT):
        assert not await second_factor.must_enrol(await user(email)), email


async def test_staff_follow_their_practice_setting(db: Settings) -> None:
    await Practice.filter(name=LILAS).update(require_staff_second_factor=True)
    assert await second_factor.must_enrol(await user(MARTIN))
    assert await second_factor.must_enrol(await user(SECRETARIAT))
    assert not await second_factor.must_enrol(await user(PETIT))
    # Patients of that practice are not concerned by the staff setting.
    assert not await second_factor.must_enrol(await user(ALICE))
    await _enrolled(MARTIN)
    assert not await second_factor.must_enrol(await user(MARTIN))


async def test_staff_without_a_practice_must_enrol(db: Settings) -> None:
    loner = await User.create(
        email="loner@example.test", password_hash="x", role="secretary", display_name="Loner"
    )
    assert await second_factor.must_enrol(loner)


async def test_patients_need_it_if_one_of_their_practices_asks(db: Settings) -> None:
    await Practice.filter(name=AUTRE).update(require_patient_second_factor=True)
    assert await second_factor.must_enrol(await user(CHLOE))  # cared for by Dr Petit only
    assert not await second_factor.must_enrol(await user(ALICE))  # Lilas only
    await Practice.filter(name=LILAS).update(require_patient_second_factor=True)
    assert await second_factor.must_enrol(await user(ALICE))
    assert await second_factor.must_enrol(await user(BOB))
    # Staff are not concerned by the patients' setting.
    assert not await second_factor.must_enrol(await user(MARTIN))


async def test_staff_change_their_own_practice_only(db: Settings) -> None:
    martin = await user(MARTIN)
    await second_factor.set_patient_requirement(martin, True)
    assert await second_factor.patient_requirement(martin)
    assert not await second_factor.patient_requirement(await user(PETIT))
    assert await AuditEvent.filter(
        actor_id=martin.id, action="practice.patient_second_factor"
    ).exists()
    with pytest.raises(Refused) as refused:
        await second_factor.set_patient_requirement(await user(ALICE), True)
    assert refused.value.refusal.status == 403


async def test_two_racing_uses_of_one_code_accept_one(db: Settings) -> None:
    await _enrolled(ALICE)
    code = await unused_code(ALICE)
    alice = await user(ALICE)
    results: list[object] = []

    async def attempt() -> None:
        results.append(
            await second_factor.complete_login(alice.id, alice.totp_last_step, code, KEY)
        )

    async with anyio.create_task_group() as group:
        for _ in range(4):
            group.start_soon(attempt)
    assert sum(result is not None for result in results) == 1
