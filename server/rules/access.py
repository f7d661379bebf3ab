"""Who may see a thread. Anyone else is told it does not exist (404), whatever they ask."""

from __future__ import annotations

from dataclasses import dataclass

from server.models import Role


@dataclass(frozen=True)
class Viewer:
    user_id: int
    role: Role
    practice_id: int | None


@dataclass(frozen=True)
class ThreadParties:
    patient_id: int
    practitioner_id: int
    practice_id: int
    assignee_id: int | None = None


def can_see_thread(viewer: Viewer, thread: ThreadParties) -> bool:
    """A patient sees their own threads, a practitioner the ones addressed or assigned to them, a
    secretary or practice administrator every thread of their practice.

    Practitioners of the same practice do not see each other's threads: medical secrecy is
    between a patient and the practitioner they chose.
    """
    if viewer.role is Role.PATIENT:
        return viewer.user_id == thread.patient_id
    if viewer.role is Role.PRACTITIONER:
        return viewer.user_id in (thread.practitioner_id, thread.assignee_id)
    return viewer.practice_id is not None and viewer.practice_id == thread.practice_id


def can_read_content(viewer: Viewer, thread: ThreadParties, masked_for_secretaries: bool) -> bool:
    """Non-medical staff (secretaries, practice administrators) may be kept from message bodies
    by a practice setting."""
    if not can_see_thread(viewer, thread):
        return False
    return not (viewer.role in (Role.SECRETARY, Role.ADMIN) and masked_for_secretaries)


def is_staff(role: Role) -> bool:
    return role in (Role.PRACTITIONER, Role.SECRETARY, Role.ADMIN)
