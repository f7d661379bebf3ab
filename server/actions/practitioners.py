"""A practitioner's messaging settings."""

from __future__ import annotations

from server.actions import audit
from server.models import MessagingSettings, User
from server.rules import validation
from server.rules.refusal import Refused


async def settings_for(practitioner: User) -> MessagingSettings:
    settings, _ = await MessagingSettings.get_or_create(practitioner_id=practitioner.id)
    return settings


async def update_settings(
    practitioner: User,
    *,
    messaging_enabled: bool,
    accepting_requests: bool,
    away_message: str,
    response_days: int | None,
    max_open_requests_per_patient: int | None,
) -> MessagingSettings:
    if response_days is None or max_open_requests_per_patient is None:
        raise Refused(validation.BAD_NUMBER)
    if len(away_message) > validation.MAX_AWAY_MESSAGE_CHARS:
        raise Refused(validation.REASON_TOO_LONG)
    settings = await settings_for(practitioner)
    settings.messaging_enabled = messaging_enabled
    settings.accepting_requests = accepting_requests
    settings.away_message = away_message
    settings.response_days = response_days
    settings.max_open_requests_per_patient = max_open_requests_per_patient
    await settings.save()
    await audit.record(
        practitioner.id,
        "settings.updated",
        detail={"messaging_enabled": messaging_enabled, "accepting_requests": accepting_requests},
    )
    return settings
