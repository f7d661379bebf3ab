"""server.rules.access: who may see a thread and read its messages. Pure."""

from __future__ import annotations

import pytest

from server.models import Role
from server.rules.access import (
    ThreadParties,
    Viewer,
    can_read_content,
    can_see_thread,
    is_staff,
)

PRACTICE, OTHER_PRACTICE = 1, 2
PATIENT, OTHER_PATIENT = 10, 11
DOCTOR, COLLEAGUE, FOREIGN_DOCTOR = 20, 21, 22
SECRETARY, FOREIGN_SECRETARY, ADMIN = 30, 31, 32

THREAD = ThreadParties(patient_id=PATIENT, practitioner_id=DOCTOR, practice_id=PRACTICE)
ASSIGNED = ThreadParties(
    patient_id=PATIENT, practitioner_id=DOCTOR, practice_id=PRACTICE, assignee_id=COLLEAGUE
)

VIEWERS = {
    "patient": Viewer(PATIENT, Role.PATIENT, None),
    "other patient": Viewer(OTHER_PATIENT, Role.PATIENT, None),
    "doctor": Viewer(DOCTOR, Role.PRACTITIONER, PRACTICE),
    "colleague": Viewer(COLLEAGUE, Role.PRACTITIONER, PRACTICE),
    "foreign doctor": Viewer(FOREIGN_DOCTOR, Role.PRACTITIONER, OTHER_PRACTICE),
    "secretary": Viewer(SECRETARY, Role.SECRETARY, PRACTICE),
    "foreign secretary": Viewer(FOREIGN_SECRETARY, Role.SECRETARY, OTHER_PRACTICE),
    "admin": Viewer(ADMIN, Role.ADMIN, PRACTICE),
    "staff without practice": Viewer(99, Role.SECRETARY, None),
    # A patient whose id happens to equal the practitioner's must not pass as them.
    "patient with doctor's id": Viewer(DOCTOR, Role.PATIENT, None),
}

SEES_THREAD = {
    "patient": True,
    "other patient": False,
    "doctor": True,
    "colleague": False,
    "foreign doctor": False,
    "secretary": True,
    "foreign secretary": False,
    "admin": True,
    "staff without practice": False,
    "patient with doctor's id": False,
}

SEES_ASSIGNED = {**SEES_THREAD, "colleague": True}


@pytest.mark.parametrize("name", list(VIEWERS))
def test_who_sees_a_thread(name: str) -> None:
    assert can_see_thread(VIEWERS[name], THREAD) is SEES_THREAD[name]


@pytest.mark.parametrize("name", list(VIEWERS))
def test_who_sees_a_thread_assigned_to_a_colleague(name: str) -> None:
    assert can_see_thread(VIEWERS[name], ASSIGNED) is SEES_ASSIGNED[name]


def test_a_patient_in_the_assignee_slot_gains_nothing() -> None:
    # assignee_id only opens a thread to practitioners, never to patients.
    parties = ThreadParties(PATIENT, DOCTOR, PRACTICE, assignee_id=OTHER_PATIENT)
    assert not can_see_thread(VIEWERS["other patient"], parties)


@pytest.mark.parametrize("name", list(VIEWERS))
def test_content_is_readable_by_whoever_sees_the_thread_when_not_masked(name: str) -> None:
    assert can_read_content(VIEWERS[name], THREAD, False) is SEES_THREAD[name]


def test_masking_hides_content_from_secretaries_and_admins_only() -> None:
    assert not can_read_content(VIEWERS["secretary"], THREAD, True)
    assert not can_read_content(VIEWERS["admin"], THREAD, True)
    assert can_read_content(VIEWERS["doctor"], THREAD, True)
    assert can_read_content(VIEWERS["patient"], THREAD, True)


def test_masking_never_opens_a_thread_to_outsiders() -> None:
    assert not can_read_content(VIEWERS["other patient"], THREAD, True)
    assert not can_read_content(VIEWERS["foreign secretary"], THREAD, False)


def test_staff_roles() -> None:
    assert not is_staff(Role.PATIENT)
    assert is_staff(Role.PRACTITIONER)
    assert is_staff(Role.SECRETARY)
    assert is_staff(Role.ADMIN)
