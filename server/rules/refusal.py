"""A refusal: why an action is not allowed, in words a person can read."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Refusal:
    """`code` is stable for programs and tests, `message` is the (translatable) English msgid."""

    code: str
    message: str
    #: HTTP status a route answers with when it refuses for this reason.
    status: int = 409


class Refused(Exception):
    """Raised by a domain action that will not do what was asked; nothing was written."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.code)
        self.refusal = refusal
