"""No health data in any log line: a canary goes through every path that takes text.

Every logger is captured at DEBUG, as if an operator had turned debugging on for everything:
what people write (subjects, messages, reasons, away replies, drafts), what they type to log in
or reset a password, must not appear in a single record. A second test runs the real
`colloque serve` (access log, workers and all) and reads everything it printed.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import anyio.to_thread
import httpx
import pytest
from core_support import (
    ALICE,
    MARTIN,
    PASSWORD,
    SUBJECT_CERTIFICATE,
    ClientFactory,
    anonymous_token,
    csrf_from,
    login,
    thread_by_subject,
    user,
)
from service_support import ROOT, create_demo_data, free_port, stop_process

from server import outbox
from server.models import Message, MessageKind
from workers.triage.detector import CATEGORIES
from workers.triage.worker import assess_message

pytestmark = pytest.mark.anyio

CANARY = "Canari-7Q2XK"
# Wording the triage detector flags, so that the emergency paths run too.
EMERGENCY = "douleur dans la poitrine, le bras engourdi"


def _canary(label: str) -> str:
    return f"{CANARY}-{label}"


def _leaks(records: list[logging.LogRecord]) -> list[str]:
    leaks = []
    for record in records:
        text = " ".join(
            (record.getMessage(), repr(record.args), record.exc_text or "", record.name)
        )
        if CANARY.lower() in text.lower():
            leaks.append(f"{record.name}: {record.getMessage()[:200]}")
    return leaks


async def _staff_paths(client: httpx.AsyncClient) -> None:
    token = await login(client, MARTIN)
    settings = await client.post(
        "/settings",
        data={
            "csrf_token": token,
            "messaging_enabled": "on",
            "accepting_requests": "on",
            "away_message": _canary("away"),
            "response_days": "2",
            "max_open_requests_per_patient": "5",
        },
    )
    assert settings.status_code == 303
    certificate = await thread_by_subject(SUBJECT_CERTIFICATE)
    declined = await client.post(
        f"/threads/{certificate.id}/decline",
        data={"csrf_token": token, "reason": _canary("reason")},
    )
    assert declined.status_code == 303


async def _patient_paths(client: httpx.AsyncClient) -> int:
    token = await login(client, ALICE)
    martin = await user(MARTIN)
    opened = await client.post(
        "/threads",
        data={
            "csrf_token": token,
            "practitioner_id": str(martin.id),
            "category": "question",
            "subject": _canary("subject"),
            "body": f"{_canary('body')} {EMERGENCY}",
        },
    )
    assert opened.status_code == 303, opened.text
    thread_id = int(opened.headers["location"].rsplit("/", 1)[1])
    posted = await client.post(
        f"/threads/{thread_id}/messages",
        data={"csrf_token": token, "body": f"{_canary('message')} {EMERGENCY}"},
    )
    assert posted.status_code == 303
    for draft in (_canary("draft"), f"{_canary('draft')} {EMERGENCY}"):
        preview = await client.post("/triage/preview", data={"csrf_token": token, "body": draft})
        assert preview.status_code == 200
    refused = await client.post(
        "/account/close", data={"csrf_token": token, "password": _canary("closing")}
    )
    assert refused.status_code == 403
    return thread_id


def _emails(folder: Path) -> list[str]:
    return [path.read_text() for path in folder.glob("*.eml")]


async def _login_and_reset_paths(client: httpx.AsyncClient, outbox_dir: Path) -> None:
    token = await anonymous_token(client)
    failed = await client.post(
        "/login",
        data={
            "email": f"{_canary('email')}@example.test",
            "password": _canary("password"),
            "csrf_token": token,
        },
    )
    assert failed.status_code == 401
    wrong = await client.post(
        "/login", data={"email": ALICE, "password": _canary("password"), "csrf_token": token}
    )
    assert wrong.status_code == 401
    for email in (f"{_canary('reset')}@example.test", ALICE):
        asked = await client.post("/password/forgot", data={"email": email, "csrf_token": token})
        assert asked.status_code == 200
    sent = await anyio.to_thread.run_sync(_emails, outbox_dir)
    (reset_path,) = {m.group(0) for text in sent for m in re.finditer(r"/password/reset/\S+", text)}
    page = await client.get(reset_path)
    assert page.status_code == 200
    new_password = f"{_canary('new-password')} cheval agrafe"
    changed = await client.post(
        reset_path,
        data={
            "csrf_token": csrf_from(page.text),
            "password": new_password,
            "password_confirmation": new_password,
        },
    )
    assert changed.status_code in (200, 303), changed.text


@pytest.mark.usefixtures("db")
async def test_no_log_record_carries_what_people_type(
    new_client: ClientFactory,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("COLLOQUE_OUTBOX_DIR", str(tmp_path))
    outbox.mail_settings.cache_clear()
    caplog.set_level(logging.DEBUG)
    try:
        await _staff_paths(await new_client())
        await _patient_paths(await new_client())
        # What the worker does with those messages: triage, flags, alerts.
        for message_id in await Message.filter(
            kind=MessageKind.PATIENT, triaged_at__isnull=True
        ).values_list("id", flat=True):
            await assess_message(message_id)
        assert await Message.filter(emergency=True).exists()
        await _login_and_reset_paths(await new_client(), tmp_path)
    finally:
        outbox.mail_settings.cache_clear()
    assert len(caplog.records) > 0
    assert _leaks(caplog.records) == []


def _serve(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "server.cli", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _wait_until_up(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, "colloque serve exited"
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    pytest.fail("colloque serve did not start")


def test_the_running_service_logs_no_text_people_typed(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite://{tmp_path / 'serve.sqlite3'}",
        "COLLOQUE_OUTBOX_DIR": str(tmp_path / "outbox"),
        "COLLOQUE_ENV": "development",
    }
    env.pop("REDIS_URL", None)
    create_demo_data(env)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = _serve(env, port)
    try:
        _wait_until_up(base, process)
        with httpx.Client(base_url=base) as browser:
            token = csrf_from(browser.get("/login").text)
            wrong = browser.post(
                "/login",
                data={
                    "email": f"{_canary('email')}@x.test",
                    "password": CANARY,
                    "csrf_token": token,
                },
            )
            assert wrong.status_code == 401
            answer = browser.post(
                "/login", data={"email": ALICE, "password": PASSWORD, "csrf_token": token}
            )
            assert answer.status_code == 303
            token = csrf_from(browser.get("/").text)
            home = browser.get("/").text
            martin_id = re.search(r'data-practitioner-id="(\d+)"', home)
            assert martin_id is not None
            opened = browser.post(
                "/threads",
                data={
                    "csrf_token": token,
                    "practitioner_id": martin_id.group(1),
                    "category": "question",
                    "subject": _canary("subject"),
                    "body": f"{_canary('body')} {EMERGENCY}",
                },
            )
            assert opened.status_code == 303, opened.text
            thread = opened.headers["location"]
            posted = browser.post(
                f"{thread}/messages", data={"csrf_token": token, "body": _canary("message")}
            )
            assert posted.status_code == 303
            browser.post("/triage/preview", data={"csrf_token": token, "body": _canary("draft")})
            # Time for the in-process worker to triage the messages (it sweeps every 2 s).
            time.sleep(3)
    finally:
        stop_process(process)
    assert process.stdout is not None
    with process.stdout:
        printed = process.stdout.read().decode(errors="replace")
    assert "POST /threads" in printed  # the access log was on
    assert "flagged as an emergency" in printed  # and the worker did its part
    assert CANARY.lower() not in printed.lower()
    # Nor what triage concluded about the patient.
    assert not [name for name in CATEGORIES if re.search(rf"\b{name}\b", printed)]
