"""May this patient open a new request with this practitioner?"""

from __future__ import annotations

from dataclasses import dataclass

from server.rules.refusal import Refusal
from server.translatable import N_


@dataclass(frozen=True)
class PractitionerAvailability:
    messaging_enabled: bool
    accepting_requests: bool
    max_open_requests_per_patient: int


NOT_CONSULTED = Refusal(
    "not_consulted",
    N_("You can only write to a practitioner you have already consulted."),
    403,
)
MESSAGING_OFF = Refusal(
    "messaging_off",
    N_("This practitioner does not offer messaging."),
)
NOT_ACCEPTING = Refusal(
    "not_accepting",
    N_("This practitioner is not accepting new requests at the moment."),
)
TOO_MANY_OPEN = Refusal(
    "too_many_open_requests",
    N_(
        "You already have the maximum number of open requests with this practitioner. "
        "Please wait for an answer or close one of them."
    ),
    429,
)


def check_can_open_request(
    has_consulted: bool,
    availability: PractitionerAvailability | None,
    open_requests_with_practitioner: int,
) -> Refusal | None:
    """Return why the patient may not open a request now, or None when they may.

    The order matters: a patient who never consulted is told so even if messaging is off, so
    that the message never reveals settings of practitioners they have no link with.
    """
    if not has_consulted:
        return NOT_CONSULTED
    if availability is None or not availability.messaging_enabled:
        return MESSAGING_OFF
    if not availability.accepting_requests:
        return NOT_ACCEPTING
    if open_requests_with_practitioner >= availability.max_open_requests_per_patient:
        return TOO_MANY_OPEN
    return None
