"""Outgoing email, development edition: each email is written as one file in an outbox folder.

Open the files with any mail reader (they are RFC 5322 messages) or a text editor. A production
deployment plugs an SMTP relay in here, behind the same `send`; until then nothing leaves the
machine.

Settings, read once from the environment (see the README's table):
- `COLLOQUE_OUTBOX_DIR`: the folder (default `var/outbox/` in the checkout).
- `COLLOQUE_PUBLIC_URL`: the address links in emails start with, e.g. `https://colloque.example`.
  Without it links use the address the request came to, which a forged Host header could change:
  set it in production.
"""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from functools import cache
from pathlib import Path

import anyio.to_thread

from server.settings import ROOT

log = logging.getLogger("colloque.outbox")

SENDER = "Colloque <ne-pas-repondre@colloque.invalid>"


@dataclass(frozen=True)
class Email:
    to: str
    subject: str
    body: str


@dataclass(frozen=True)
class MailSettings:
    outbox_dir: Path
    public_url: str | None


@cache
def mail_settings() -> MailSettings:
    public_url = os.environ.get("COLLOQUE_PUBLIC_URL", "").strip().rstrip("/")
    return MailSettings(
        outbox_dir=Path(os.environ.get("COLLOQUE_OUTBOX_DIR") or ROOT / "var" / "outbox"),
        public_url=public_url or None,
    )


def link(path: str, request_base_url: str) -> str:
    """An absolute link to `path` for an email."""
    base = mail_settings().public_url or request_base_url.rstrip("/")
    return f"{base}{path}"


def _write(folder: Path, email: Email, now: datetime) -> Path:
    message = EmailMessage()
    message["From"] = SENDER
    message["To"] = email.to
    message["Subject"] = email.subject
    message["Date"] = format_datetime(now)
    # 8bit rather than quoted-printable: links stay whole and clickable in the raw file.
    message.set_content(email.body, cte="8bit")
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{now:%Y%m%dT%H%M%S%f}-{secrets.token_hex(4)}.eml"
    path = folder / name
    # Emails carry one-time links: readable by this account only, and never half-written.
    partial = folder / f".{name}.tmp"
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(message.as_bytes())
    partial.replace(path)
    return path


async def send(email: Email) -> Path:
    """Deliver `email` (here: write it to the outbox) and return where it went."""
    path = await anyio.to_thread.run_sync(
        _write, mail_settings().outbox_dir, email, datetime.now(UTC)
    )
    # The file name only: the body holds a one-time link, which must not reach the logs.
    log.info("email written to the outbox: %s", path.name)
    return path
