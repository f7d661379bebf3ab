"""Two-step verification (TOTP, RFC 6238) and its recovery codes: enrol, confirm, verify,
regenerate, turn off.

The shared secret is read and written as `user.totp_secret` in clear through the model: its
field encrypts it at rest. Recovery codes are stored as HMAC-SHA-256 digests keyed with the
server's SECRET_KEY and the user's id: the codes are random (79 bits), so a slow password hash
would buy nothing against guessing and would cost ten slow hashes per check, while the key means
a database dump alone lets nobody test a guess at all. Changing SECRET_KEY voids the codes
(people make new ones from their account page with their authenticator).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from datetime import UTC, datetime

import pyotp
from tortoise.transactions import in_transaction

from server.actions import audit
from server.models import CareRelationship, Practice, RecoveryCode, Role, User
from server.rules import second_factor as rules
from server.rules.refusal import Refused

ISSUER = "Colloque"


def _totp(secret: str) -> pyotp.TOTP:
    return pyotp.TOTP(secret, digits=rules.DIGITS, interval=rules.STEP_SECONDS)


def is_enabled(user: User) -> bool:
    return user.totp_enabled_at is not None


async def is_required(user: User) -> bool:
    """Whether this user's practice (staff) or one of their practices (patients) requires it."""
    if user.role != Role.PATIENT:
        staff_setting = None
        if isinstance(user.practice, Practice):
            # Loaded with the session: no query on every page.
            staff_setting = user.practice.require_staff_second_factor
        elif user.practice_id is not None:
            staff_setting = (
                await Practice.filter(id=user.practice_id)
                .first()
                .values_list("require_staff_second_factor", flat=True)
            )
        return rules.is_required(Role(user.role), staff_setting, ())
    # A patient's practices are those of the practitioners who care for them.
    asked = await CareRelationship.filter(
        patient_id=user.id, practitioner__practice__require_patient_second_factor=True
    ).exists()
    return rules.is_required(Role.PATIENT, None, (asked,))


async def must_enrol(user: User) -> bool:
    """Required but not set up yet: the user may only reach the enrolment pages."""
    return not is_enabled(user) and await is_required(user)


async def start_enrolment(user: User) -> None:
    """Give the user a new secret to add to their app; it counts only once confirmed."""
    if is_enabled(user):
        raise Refused(rules.ALREADY_ENABLED)
    user.totp_secret = pyotp.random_base32()  # 160 bits, as RFC 4226 recommends
    await user.save(update_fields=["totp_secret"])


def provisioning_uri(user: User) -> str:
    """The otpauth:// URI an authenticator app reads from the QR code."""
    assert user.totp_secret is not None
    return _totp(user.totp_secret).provisioning_uri(name=user.email, issuer_name=ISSUER)


async def _accept_totp(user: User, raw_code: object, *, last_step: int | None = None) -> bool:
    """Check a code against the user's secret and burn its time step, so that it cannot be used
    again; the conditional update makes two requests racing with the same code accept one.

    With `last_step`, the code is accepted only if no other code was since that step.
    """
    code = rules.clean_totp(raw_code)
    if code is None or user.totp_secret is None:
        return False
    totp = _totp(user.totp_secret)
    step = rules.accepted_step(code, time.time(), user.totp_last_step, totp.generate_otp)
    if step is None:
        return False
    unchanged = {"totp_last_step__lt": step} if last_step is None else {"totp_last_step": last_step}
    burnt = await User.filter(id=user.id, **unchanged).update(totp_last_step=step)
    if burnt:
        user.totp_last_step = step
    return bool(burnt)


def _recovery_hash(secret_key: str, user_id: int, code: str) -> str:
    message = f"recovery:{user_id}:{code}".encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()


async def _new_recovery_codes(user: User, secret_key: str) -> list[str]:
    """Replace the user's recovery codes with fresh ones; returns them for showing once."""
    codes = [
        "".join(secrets.choice(rules.RECOVERY_ALPHABET) for _ in range(rules.RECOVERY_CODE_CHARS))
        for _ in range(rules.RECOVERY_CODE_COUNT)
    ]
    async with in_transaction() as connection:
        await RecoveryCode.filter(user_id=user.id).using_db(connection).delete()
        await RecoveryCode.bulk_create(
            [
                RecoveryCode(user_id=user.id, code_hash=_recovery_hash(secret_key, user.id, code))
                for code in codes
            ],
            using_db=connection,
        )
    return [rules.show_recovery_code(code) for code in codes]


async def _use_recovery_code(user: User, raw_code: object, secret_key: str) -> bool:
    """Spend one unused recovery code; the conditional update makes it single use under races."""
    code = rules.clean_recovery_code(raw_code)
    if code is None:
        return False
    found = await RecoveryCode.filter(
        user_id=user.id, code_hash=_recovery_hash(secret_key, user.id, code), used_at=None
    ).first()
    if found is None:
        return False
    spent = await RecoveryCode.filter(id=found.id, used_at=None).update(used_at=datetime.now(UTC))
    return bool(spent)


async def confirm_enrolment(user: User, raw_code: object, secret_key: str) -> list[str]:
    """Turn the factor on once the user typed a code from their app; returns the recovery
    codes, to be shown this once."""
    if is_enabled(user):
        raise Refused(rules.ALREADY_ENABLED)
    if user.totp_secret is None:
        raise Refused(rules.NOT_PENDING)
    if not await _accept_totp(user, raw_code):
        await audit.record_account(user, "second_factor.confirm", outcome=audit.DENIED)
        raise Refused(rules.BAD_CODE)
    user.totp_enabled_at = datetime.now(UTC)
    await user.save(update_fields=["totp_enabled_at"])
    codes = await _new_recovery_codes(user, secret_key)
    await audit.record_account(user, "second_factor.enabled")
    return codes


async def regenerate_recovery_codes(user: User, raw_code: object, secret_key: str) -> list[str]:
    """New codes, the old ones void; needs a current code from the app."""
    if not is_enabled(user):
        raise Refused(rules.NOT_ENABLED)
    if not await _accept_totp(user, raw_code):
        raise Refused(rules.BAD_CODE)
    codes = await _new_recovery_codes(user, secret_key)
    await audit.record_account(user, "second_factor.recovery_codes_renewed")
    return codes


async def disable(user: User, raw_code: object, secret_key: str) -> None:
    """Turn the factor off; needs a current code from the app or a recovery code."""
    if not is_enabled(user):
        raise Refused(rules.NOT_ENABLED)
    if not (
        await _accept_totp(user, raw_code) or await _use_recovery_code(user, raw_code, secret_key)
    ):
        raise Refused(rules.BAD_CODE)
    async with in_transaction() as connection:
        await RecoveryCode.filter(user_id=user.id).using_db(connection).delete()
        await (
            User.filter(id=user.id)
            .using_db(connection)
            .update(totp_secret=None, totp_enabled_at=None)
        )
    user.totp_secret = None
    user.totp_enabled_at = None
    await audit.record_account(user, "second_factor.disabled")


async def remaining_recovery_codes(user: User) -> int:
    return await RecoveryCode.filter(user_id=user.id, used_at=None).count()


async def complete_login(
    user_id: int, issued_step: int, raw_code: object, secret_key: str
) -> User | None:
    """The user, if `raw_code` (from the app, or a recovery code) completes the login that
    was pending since `issued_step`; None otherwise.

    Success moves `totp_last_step` on from `issued_step` in one conditional update, so a
    pending login completes once only, even if its cookie was copied.
    """
    user = await User.get_or_none(id=user_id, is_active=True)
    if user is None or not is_enabled(user) or user.totp_last_step != issued_step:
        return None
    if await _accept_totp(user, raw_code, last_step=issued_step):
        await audit.record_account(user, "login.second_factor", detail={"method": "totp"})
        return user
    if not await _use_recovery_code(user, raw_code, secret_key):
        await audit.record_account(user, "login.second_factor", outcome=audit.DENIED)
        return None
    # The recovery code is spent: close this pending login too.
    moved = await User.filter(id=user.id, totp_last_step=issued_step).update(
        totp_last_step=rules.login_step_after(issued_step, time.time())
    )
    if not moved:
        return None
    await audit.record_account(user, "login.second_factor", detail={"method": "recovery_code"})
    return user


async def email_of(user_id: int) -> str | None:
    """The email of an active account, which login throttling counts by."""
    found = await User.filter(id=user_id, is_active=True).first().values_list("email", flat=True)
    return str(found) if found is not None else None


async def pending_login_spent(user_id: int, issued_step: int) -> bool:
    """Whether a pending login can no longer complete: completed already (here or by another
    login since), or the account or its second factor is gone."""
    user = await User.get_or_none(id=user_id, is_active=True)
    return user is None or not is_enabled(user) or user.totp_last_step != issued_step


async def patient_requirement(staff: User) -> bool:
    """Whether the staff member's practice requires two-step verification of its patients."""
    assert staff.practice_id is not None
    return bool(
        await Practice.filter(id=staff.practice_id)
        .first()
        .values_list("require_patient_second_factor", flat=True)
    )


async def set_patient_requirement(staff: User, required: bool) -> None:
    """Change the practice's setting; staff change only their own practice's."""
    if staff.practice_id is None or Role(staff.role) == Role.PATIENT:
        raise Refused(rules.NOT_PRACTICE_STAFF)
    changed = await Practice.filter(
        id=staff.practice_id, require_patient_second_factor=not required
    ).update(require_patient_second_factor=required)
    if changed:
        await audit.record(
            staff.id,
            "practice.patient_second_factor",
            detail={"required": required},
            practice_id=staff.practice_id,
            object=f"practice:{staff.practice_id}",
        )
