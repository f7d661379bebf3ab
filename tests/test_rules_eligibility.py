"""server.rules.eligibility: may a patient open a new request with a practitioner? Pure."""

from __future__ import annotations

import pytest

from server.rules.eligibility import (
    MESSAGING_OFF,
    NOT_ACCEPTING,
    NOT_CONSULTED,
    TOO_MANY_OPEN,
    PractitionerAvailability,
    check_can_open_request,
)

OPEN_DOOR = PractitionerAvailability(
    messaging_enabled=True, accepting_requests=True, max_open_requests_per_patient=5
)


def test_consulted_patient_may_write_to_an_available_practitioner() -> None:
    assert check_can_open_request(True, OPEN_DOOR, 0) is None


def test_a_patient_who_never_consulted_is_refused() -> None:
    assert check_can_open_request(False, OPEN_DOOR, 0) is NOT_CONSULTED


@pytest.mark.parametrize(
    "availability",
    [
        None,
        PractitionerAvailability(False, True, 5),
        PractitionerAvailability(False, False, 0),
    ],
)
def test_never_consulted_wins_over_every_setting(
    availability: PractitionerAvailability | None,
) -> None:
    # The refusal must not reveal the settings of a practitioner the patient has no link with.
    assert check_can_open_request(False, availability, 99) is NOT_CONSULTED


def test_messaging_off_is_refused() -> None:
    off = PractitionerAvailability(False, True, 5)
    assert check_can_open_request(True, off, 0) is MESSAGING_OFF


def test_practitioner_without_settings_counts_as_messaging_off() -> None:
    assert check_can_open_request(True, None, 0) is MESSAGING_OFF


def test_messaging_off_wins_over_not_accepting() -> None:
    assert check_can_open_request(True, PractitionerAvailability(False, False, 5), 0) is (
        MESSAGING_OFF
    )


def test_not_accepting_new_requests_is_refused() -> None:
    closed_door = PractitionerAvailability(True, False, 5)
    assert check_can_open_request(True, closed_door, 0) is NOT_ACCEPTING


def test_open_request_limit_is_reached_at_the_maximum_not_before() -> None:
    three = PractitionerAvailability(True, True, 3)
    assert check_can_open_request(True, three, 2) is None
    assert check_can_open_request(True, three, 3) is TOO_MANY_OPEN
    assert check_can_open_request(True, three, 4) is TOO_MANY_OPEN


def test_refusal_codes_and_statuses_are_stable() -> None:
    assert (NOT_CONSULTED.code, NOT_CONSULTED.status) == ("not_consulted", 403)
    assert (MESSAGING_OFF.code, MESSAGING_OFF.status) == ("messaging_off", 409)
    assert (NOT_ACCEPTING.code, NOT_ACCEPTING.status) == ("not_accepting", 409)
    assert (TOO_MANY_OPEN.code, TOO_MANY_OPEN.status) == ("too_many_open_requests", 429)


def test_every_refusal_has_a_readable_message() -> None:
    for refusal in (NOT_CONSULTED, MESSAGING_OFF, NOT_ACCEPTING, TOO_MANY_OPEN):
        assert len(refusal.message) > 20
