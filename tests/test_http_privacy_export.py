"""A patient downloads everything Colloque holds about them, readable, and nobody else's data."""

from __future__ import annotations

import io
import json
import zipfile
from html.parser import HTMLParser

import httpx
import pytest
from core_support import (
    ALICE,
    BOB,
    CHLOE,
    MARTIN,
    SECRETARIAT,
    SUBJECT_CERTIFICATE,
    SUBJECT_FLU,
    SUBJECT_RENEWAL,
    SUBJECT_RESULTS,
    login,
    thread_by_subject,
    user,
)

from server.actions import messages
from server.models import AuditEvent

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("db")]

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)> & "quotes"'


class _Tags(HTMLParser):
    """The elements and attributes a browser would build from a document."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()
        self.attributes: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.names.add(tag)
        self.attributes.update(name for name, _ in attrs)


async def _download(client: httpx.AsyncClient) -> tuple[httpx.Response, dict, str]:
    token = await login(client, ALICE)
    page = await client.get("/account/export")
    assert page.status_code == 200
    assert 'action="/account/export"' in page.text
    answer = await client.post("/account/export", data={"csrf_token": token})
    assert answer.status_code == 200, answer.text
    with zipfile.ZipFile(io.BytesIO(answer.content)) as bundle:
        assert sorted(bundle.namelist()) == ["data.json", "index.html"]
        data = json.loads(bundle.read("data.json"))
        html = bundle.read("index.html").decode()
    return answer, data, html


async def test_the_download_is_a_zip_attachment(client: httpx.AsyncClient) -> None:
    answer, _, _ = await _download(client)
    assert answer.headers["content-type"] == "application/zip"
    disposition = answer.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="colloque-export-')
    assert disposition.endswith('.zip"')
    assert answer.headers["cache-control"] == "no-store"


async def test_data_json_holds_the_profile_care_threads_messages_and_reads(
    client: httpx.AsyncClient,
) -> None:
    _, data, _ = await _download(client)
    alice = await user(ALICE)
    assert data["profile"]["email"] == ALICE
    assert data["profile"]["display_name"] == "Alice Durand"
    assert data["profile"]["id"] == alice.id
    assert {care["practitioner"] for care in data["care_relationships"]} == {
        "Dr Claire Martin",
        "Dr Paul Bernard",
    }
    subjects = {thread["subject"] for thread in data["threads"]}
    assert subjects == {SUBJECT_RENEWAL, SUBJECT_CERTIFICATE}
    renewal = next(t for t in data["threads"] if t["subject"] == SUBJECT_RENEWAL)
    # Decrypted text, in order, with who wrote it.
    assert [m["seq"] for m in renewal["messages"]] == [1, 2]
    assert "mon traitement se termine" in renewal["messages"][0]["body"]
    assert renewal["messages"][0]["written_by_you"] is True
    assert renewal["messages"][1]["author"] == "Dr Claire Martin"
    assert "ordonnance" in renewal["messages"][1]["body"]
    thread_ids = {thread["id"] for thread in data["threads"]}
    assert {read["thread_id"] for read in data["read_states"]} <= thread_ids
    assert data["read_states"]


async def test_nobody_elses_data_is_in_it(client: httpx.AsyncClient) -> None:
    answer, _, _ = await _download(client)
    with zipfile.ZipFile(io.BytesIO(answer.content)) as bundle:
        everything = "".join(bundle.read(name).decode() for name in bundle.namelist())
    for other in (BOB, CHLOE, "Bob Lefèvre", "Chloé Moreau", SUBJECT_RESULTS, SUBJECT_FLU):
        assert other not in everything
    assert MARTIN not in everything  # staff emails are not the patient's data either


async def test_index_html_is_readable_escaped_and_runs_nothing(client: httpx.AsyncClient) -> None:
    alice = await user(ALICE)
    await messages.post_message(alice, await thread_by_subject(SUBJECT_RENEWAL), HOSTILE)
    _, data, html = await _download(client)
    assert any(
        message["body"] == HOSTILE for thread in data["threads"] for message in thread["messages"]
    )
    assert "&lt;script&gt;" in html
    tags = _Tags()
    tags.feed(html)
    assert not {"script", "img", "iframe", "link", "object"} & tags.names
    # Nothing to fetch, nowhere to go, no handler to run.
    assert not {"src", "href", "onerror"} & tags.attributes
    assert "default-src 'none'" in html
    assert SUBJECT_RENEWAL in html
    assert "mon traitement se termine" in html


async def test_the_export_is_audited_without_content(client: httpx.AsyncClient) -> None:
    await _download(client)
    alice = await user(ALICE)
    line = await AuditEvent.get(action="account.exported")
    assert (line.actor_id, line.object, line.outcome) == (alice.id, f"account:{alice.id}", "ok")


async def test_the_download_needs_the_csrf_token(client: httpx.AsyncClient) -> None:
    await login(client, ALICE)
    answer = await client.post("/account/export")
    assert answer.status_code == 403
    assert not await AuditEvent.filter(action="account.exported").exists()


@pytest.mark.parametrize("email", [MARTIN, SECRETARIAT])
async def test_staff_have_no_patient_export(client: httpx.AsyncClient, email: str) -> None:
    token = await login(client, email)
    assert (await client.get("/account/export")).status_code == 404
    assert (await client.post("/account/export", data={"csrf_token": token})).status_code == 404


async def test_a_visitor_is_sent_to_log_in(client: httpx.AsyncClient) -> None:
    answer = await client.get("/account/export")
    assert (answer.status_code, answer.headers["location"]) == (303, "/login")
