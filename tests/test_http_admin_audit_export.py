"""A practice administrator downloads the practice's audit trail as CSV, and only they do."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import httpx
import pytest
from audit_support import add_line_at
from core_support import (
    ADMIN,
    ALICE,
    CHLOE,
    MARTIN,
    PETIT,
    SECRETARIAT,
    SUBJECT_FLU,
    SUBJECT_RENEWAL,
    ClientFactory,
    login,
    thread_by_subject,
    user,
)

from server.actions import audit
from server.models import AuditEvent, Practice, Role, User
from server.rules.audit_export import HEADER, safe_cell
from server.views.admin import _BATCH

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("db")]

TODAY = datetime.now(UTC).date().isoformat()


def _rows(answer: httpx.Response) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(answer.text)))


async def _some_activity(new_client: ClientFactory) -> None:
    """Reads in both practices: Dr Martin's (Lilas) and Dr Petit's (another practice)."""
    for email, subject in ((MARTIN, SUBJECT_RENEWAL), (PETIT, SUBJECT_FLU), (CHLOE, SUBJECT_FLU)):
        visitor = await new_client()
        await login(visitor, email)
        thread = await thread_by_subject(subject)
        assert (await visitor.get(f"/threads/{thread.id}")).status_code == 200


async def test_the_admin_page_links_to_the_export(client: httpx.AsyncClient) -> None:
    await login(client, ADMIN)
    page = await client.get("/admin")
    assert page.status_code == 200
    assert "Cabinet médical des Lilas" in page.text
    assert 'href="/admin/audit.csv?from=' in page.text
    assert 'action="/admin/audit.csv"' in page.text


async def test_the_export_is_the_practices_trail_in_csv(
    new_client: ClientFactory, client: httpx.AsyncClient
) -> None:
    await _some_activity(new_client)
    await login(client, ADMIN)
    answer = await client.get("/admin/audit.csv", params={"from": TODAY, "to": TODAY})
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert answer.headers["content-disposition"] == (
        f'attachment; filename="audit-{TODAY}-{TODAY}.csv"'
    )
    assert answer.text.splitlines()[0] == ",".join(HEADER)
    rows = _rows(answer)
    lilas = (await Practice.get(name="Cabinet médical des Lilas")).id
    expected = await AuditEvent.filter(practice_id=lilas).count()
    # Every line of the practice up to the request, the export's own line included.
    assert len(rows) == expected
    renewal = await thread_by_subject(SUBJECT_RENEWAL)
    martin, alice = await user(MARTIN), await user(ALICE)
    read = next(row for row in rows if row["action"] == "thread.read")
    assert read["actor_id"] == str(martin.id)
    assert read["object"] == f"thread:{renewal.id}"
    assert read["thread_id"] == str(renewal.id)
    assert read["subject"] == audit.pseudonym(alice.id)
    assert read["outcome"] == "ok"
    assert read["time_utc"].startswith(TODAY) and read["time_utc"].endswith("+00:00")
    # Nothing from the other practice, no content, no email.
    flu = await thread_by_subject(SUBJECT_FLU)
    assert all(row["thread_id"] != str(flu.id) for row in rows)
    for secret in (SUBJECT_RENEWAL, "mon traitement", "@demo.colloque.test", "colloque-demo"):
        assert secret not in answer.text


async def test_the_export_is_itself_audited(client: httpx.AsyncClient) -> None:
    await login(client, ADMIN)
    answer = await client.get("/admin/audit.csv", params={"from": "2026-01-01", "to": TODAY})
    assert answer.status_code == 200
    admin = await user(ADMIN)
    line = await AuditEvent.get(action="audit.exported")
    assert (line.actor_id, line.practice_id) == (admin.id, admin.practice_id)
    assert line.detail == {"from": "2026-01-01", "to": TODAY}
    assert "audit.exported" in answer.text


async def test_cells_that_a_spreadsheet_would_run_are_disarmed(client: httpx.AsyncClient) -> None:
    admin = await user(ADMIN)
    for formula in ('=HYPERLINK("http://evil")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"):
        await AuditEvent.create(
            actor_id=None, action="test", practice_id=admin.practice_id, object=formula
        )
    await login(client, ADMIN)
    rows = _rows(await client.get("/admin/audit.csv"))
    objects = [row["object"] for row in rows if row["action"] == "test"]
    assert objects == ['\'=HYPERLINK("http://evil")', "'+1+1", "'-2+3", "'@SUM(A1)", "'\tx", "'\rx"]
    assert safe_cell("thread:12") == "thread:12"
    assert safe_cell("") == ""


async def test_days_are_utc_and_both_included(client: httpx.AsyncClient) -> None:
    admin = await user(ADMIN)
    for moment, action in (
        ("2026-03-01T23:59:59", "before"),
        ("2026-03-02T00:00:00", "first"),
        ("2026-03-04T23:59:59", "last"),
        ("2026-03-05T00:00:00", "after"),
    ):
        when = datetime.fromisoformat(f"{moment}+00:00")
        await add_line_at(action, when, admin.practice_id)
    await login(client, ADMIN)
    answer = await client.get("/admin/audit.csv", params={"from": "2026-03-02", "to": "2026-03-04"})
    assert [row["action"] for row in _rows(answer)] == ["first", "last"]
    assert _rows(answer)[0]["time_utc"] == "2026-03-02T00:00:00.000+00:00"


async def test_a_long_trail_streams_whole(client: httpx.AsyncClient) -> None:
    admin = await user(ADMIN)
    count = _BATCH * 2 + 7
    await AuditEvent.bulk_create(
        [
            AuditEvent(actor_id=n, action="bulk", practice_id=admin.practice_id)
            for n in range(count)
        ],
        batch_size=500,
    )
    await login(client, ADMIN)
    rows = _rows(await client.get("/admin/audit.csv"))
    bulk = [row for row in rows if row["action"] == "bulk"]
    assert [int(row["actor_id"]) for row in bulk] == list(range(count))


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ({"from": "01/02/2026"}, "YYYY-MM-DD"),
        ({"to": "2026-02-30"}, "YYYY-MM-DD"),
        ({"from": "2026-02-03", "to": "2026-02-01"}, "start date"),
    ],
)
async def test_bad_dates_get_a_reason(
    client: httpx.AsyncClient, query: dict[str, str], reason: str
) -> None:
    await User.filter(email=ADMIN).update(locale="en")
    await login(client, ADMIN)
    answer = await client.get("/admin/audit.csv", params=query)
    assert answer.status_code == 400
    assert reason in answer.text
    assert not await AuditEvent.filter(action="audit.exported").exists()


@pytest.mark.parametrize("email", [ALICE, MARTIN, SECRETARIAT])
async def test_nobody_else_gets_the_trail(client: httpx.AsyncClient, email: str) -> None:
    await login(client, email)
    assert (await client.get("/admin")).status_code == 404
    assert (await client.get("/admin/audit.csv")).status_code == 404


async def test_a_visitor_is_sent_to_log_in(client: httpx.AsyncClient) -> None:
    answer = await client.get("/admin/audit.csv")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login"


async def test_an_administrator_sees_only_their_own_practice(client: httpx.AsyncClient) -> None:
    other = await Practice.get(name="Maison de santé du Port")
    petit = await user(PETIT)
    await User.create(
        email="admin@autre.colloque.test",
        password_hash=petit.password_hash,
        role=Role.ADMIN,
        display_name="Administration du Port",
        practice=other,
    )
    lilas = await Practice.get(name="Cabinet médical des Lilas")
    await AuditEvent.create(actor_id=None, action="lilas-only", practice_id=lilas.id)
    await login(client, "admin@autre.colloque.test")
    answer = await client.get("/admin/audit.csv")
    assert answer.status_code == 200
    assert "lilas-only" not in answer.text
    assert "Maison de santé du Port" in (await client.get("/admin")).text
