"""server.rules.second_factor: who must use a second factor, which codes count. Pure."""

from __future__ import annotations

import pytest

from server.models import Role
from server.rules.second_factor import (
    RECOVERY_ALPHABET,
    RECOVERY_CODE_CHARS,
    STEP_SECONDS,
    WINDOW,
    accepted_step,
    clean_recovery_code,
    clean_totp,
    is_required,
    login_step_after,
    open_before_enrolment,
    show_recovery_code,
    show_secret,
    time_step,
)

STAFF = (Role.PRACTITIONER, Role.SECRETARY, Role.ADMIN)


@pytest.mark.parametrize("role", STAFF)
def test_staff_follow_their_practice(role: Role) -> None:
    assert is_required(role, True, ())
    assert not is_required(role, False, ())
    # Patients' practice settings say nothing about staff.
    assert not is_required(role, False, (True,))


@pytest.mark.parametrize("role", STAFF)
def test_staff_without_a_practice_always_need_one(role: Role) -> None:
    assert is_required(role, None, ())


def test_a_patient_needs_one_if_any_of_their_practices_asks() -> None:
    assert is_required(Role.PATIENT, None, (False, True))
    assert not is_required(Role.PATIENT, None, (False, False))
    assert not is_required(Role.PATIENT, None, ())
    # A patient's own "staff" setting does not exist; whatever is passed, it is ignored.
    assert not is_required(Role.PATIENT, True, ())


@pytest.mark.parametrize(
    "path",
    [
        "/account",
        "/account/second-factor",
        "/account/second-factor/confirm",
        "/account/logout-everywhere",
        "/logout",
        "/login",
        "/login/second-factor",
    ],
)
def test_enrolment_pages_stay_open(path: str) -> None:
    assert open_before_enrolment(path)


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/inbox",
        "/queue",
        "/threads/1",
        "/events",
        "/accounting",
        "/logout-x",
        "/account/export",
        "/account/close",
        "/account/second-factorx",
    ],
)
def test_everything_else_waits_for_enrolment(path: str) -> None:
    assert not open_before_enrolment(path)


NOW = 1_000_000 * STEP_SECONDS + 7.0  # inside step 1,000,000
CURRENT = time_step(NOW)


def _code_at(step: int) -> str:
    """A stand-in authenticator: each step has its own code."""
    return f"{step % 1_000_000:06d}"


def test_the_current_code_and_one_step_either_side_are_accepted() -> None:
    assert CURRENT == 1_000_000
    for offset in range(-WINDOW, WINDOW + 1):
        assert accepted_step(_code_at(CURRENT + offset), NOW, 0, _code_at) == CURRENT + offset


def test_codes_outside_the_window_are_refused() -> None:
    assert accepted_step(_code_at(CURRENT - WINDOW - 1), NOW, 0, _code_at) is None
    assert accepted_step(_code_at(CURRENT + WINDOW + 1), NOW, 0, _code_at) is None
    assert accepted_step("123456", NOW, 0, _code_at) is None


def test_a_code_cannot_be_replayed_nor_an_older_one_used_after_it() -> None:
    assert accepted_step(_code_at(CURRENT), NOW, CURRENT, _code_at) is None
    assert accepted_step(_code_at(CURRENT - 1), NOW, CURRENT, _code_at) is None
    # The next code still works.
    assert accepted_step(_code_at(CURRENT + 1), NOW, CURRENT, _code_at) == CURRENT + 1


@pytest.mark.parametrize(
    ("typed", "clean"),
    [("123456", "123456"), (" 123 456 ", "123456"), ("000000", "000000")],
)
def test_totp_codes_are_six_digits_whatever_the_spacing(typed: str, clean: str) -> None:
    assert clean_totp(typed) == clean


@pytest.mark.parametrize("typed", ["12345", "1234567", "12345a", "١٢٣٤٥٦", "", None, 123456])
def test_anything_else_is_not_a_totp_code(typed: object) -> None:
    assert clean_totp(typed) is None


def test_recovery_codes_are_read_leniently_and_shown_in_groups() -> None:
    raw = "abcdefghjkmnpqrs"
    assert len(raw) == RECOVERY_CODE_CHARS
    shown = show_recovery_code(raw)
    assert shown == "abcd-efgh-jkmn-pqrs"
    assert clean_recovery_code(shown) == raw
    assert clean_recovery_code(" ABCD EFGH-JKMN pqrs ") == raw


@pytest.mark.parametrize(
    "typed", ["abcd-efgh-jkmn-pqr", "abcd-efgh-jkmn-pqrst", "abcd-efgh-jkmn-pqr0", "x" * 200, None]
)
def test_malformed_recovery_codes_are_refused(typed: object) -> None:
    assert clean_recovery_code(typed) is None


def test_recovery_alphabet_leaves_out_lookalikes() -> None:
    assert not set("01ilo") & set(RECOVERY_ALPHABET)
    assert len(set(RECOVERY_ALPHABET)) == len(RECOVERY_ALPHABET) == 31


def test_secret_is_shown_in_groups_of_four() -> None:
    assert show_secret("ABCDEFGHIJKLMNOP") == "ABCD EFGH IJKL MNOP"


def test_a_recovery_login_moves_the_step_past_the_cookie_and_the_clock() -> None:
    assert login_step_after(5, NOW) == CURRENT
    assert login_step_after(CURRENT, NOW) == CURRENT + 1
    assert login_step_after(CURRENT + 1, NOW) == CURRENT + 2
