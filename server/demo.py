"""The demo practice and accounts of the contract (`colloque demo`), created idempotently."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from tortoise.transactions import in_transaction

from server.models import (
    CareRelationship,
    Category,
    Message,
    MessageKind,
    MessagingSettings,
    Practice,
    ReadState,
    Role,
    Thread,
    ThreadStatus,
    User,
)
from server.passwords import hash_password

DEMO_PASSWORD = "colloque-demo"  # noqa: S105 - published in the README on purpose
LILAS = "Cabinet médical des Lilas"
AUTRE = "Maison de santé du Port"

ACCOUNTS = (
    # email, role, display name, practice, messaging on
    ("dr.martin@demo.colloque.test", Role.PRACTITIONER, "Dr Claire Martin", LILAS, True),
    ("dr.bernard@demo.colloque.test", Role.PRACTITIONER, "Dr Paul Bernard", LILAS, False),
    ("secretariat@demo.colloque.test", Role.SECRETARY, "Secrétariat des Lilas", LILAS, None),
    # Exports the practice's audit trail (/admin).
    ("admin@demo.colloque.test", Role.ADMIN, "Administration des Lilas", LILAS, None),
    ("alice@demo.colloque.test", Role.PATIENT, "Alice Durand", None, None),
    ("bob@demo.colloque.test", Role.PATIENT, "Bob Lefèvre", None, None),
    ("dr.petit@autre.colloque.test", Role.PRACTITIONER, "Dr Sophie Petit", AUTRE, True),
    ("chloe@autre.colloque.test", Role.PATIENT, "Chloé Moreau", None, None),
)
CARE = (
    ("alice@demo.colloque.test", "dr.martin@demo.colloque.test"),
    ("alice@demo.colloque.test", "dr.bernard@demo.colloque.test"),
    ("bob@demo.colloque.test", "dr.bernard@demo.colloque.test"),
    ("chloe@autre.colloque.test", "dr.petit@autre.colloque.test"),
)
# (patient, practitioner, category, subject, status, days ago, [(author, body), ...])
EXAMPLE_THREADS = (
    (
        "alice@demo.colloque.test",
        "dr.martin@demo.colloque.test",
        Category.RENEWAL,
        "Renouvellement de mon traitement pour la tension",
        ThreadStatus.OPEN,
        3,
        (
            (
                "alice@demo.colloque.test",
                "Bonjour docteur, mon traitement se termine la semaine prochaine. "
                "Pourriez-vous me le renouveler ? Ma tension est stable (12/8).",
            ),
            (
                "dr.martin@demo.colloque.test",
                "Bonjour, c'est noté : l'ordonnance sera disponible à l'accueil jeudi.",
            ),
        ),
    ),
    (
        "alice@demo.colloque.test",
        "dr.martin@demo.colloque.test",
        Category.ADMIN,
        "Certificat pour la piscine",
        ThreadStatus.PENDING,
        2,
        (
            (
                "alice@demo.colloque.test",
                "Bonjour, j'aurais besoin d'un certificat de non contre-indication à la natation.",
            ),
        ),
    ),
    (
        "bob@demo.colloque.test",
        "dr.bernard@demo.colloque.test",
        Category.RESULTS,
        "Résultats de prise de sang",
        ThreadStatus.CLOSED,
        20,
        (
            ("bob@demo.colloque.test", "Bonjour, avez-vous reçu mes résultats d'analyse ?"),
            ("dr.bernard@demo.colloque.test", "Oui, tout est normal. Bonne journée."),
        ),
    ),
    (
        "chloe@autre.colloque.test",
        "dr.petit@autre.colloque.test",
        Category.QUESTION,
        "Vaccin contre la grippe",
        ThreadStatus.OPEN,
        5,
        (
            (
                "chloe@autre.colloque.test",
                "Bonjour, puis-je faire le vaccin contre la grippe enceinte ?",
            ),
            (
                "dr.petit@autre.colloque.test",
                "Oui, il est recommandé pendant la grossesse. Parlons-en à votre prochaine visite.",
            ),
        ),
    ),
)


async def _practice(name: str) -> Practice:
    """A demo practice: its accounts log in with the published password alone, so that anyone
    can try Colloque (and outside checks can drive it). Real practices require a second factor
    by default."""
    practice, _ = await Practice.get_or_create(
        name=name,
        defaults={"require_staff_second_factor": False, "require_patient_second_factor": False},
    )
    return practice


async def _accounts(password_hash: str) -> dict[str, User]:
    users: dict[str, User] = {}
    for email, role, name, practice_name, messaging in ACCOUNTS:
        practice = await _practice(practice_name) if practice_name else None
        user, _ = await User.get_or_create(
            email=email,
            defaults={
                "password_hash": password_hash,
                "role": role,
                "display_name": name,
                "practice": practice,
            },
        )
        users[email] = user
        if messaging is not None:
            await MessagingSettings.get_or_create(
                practitioner=user,
                defaults={
                    "messaging_enabled": messaging,
                    "accepting_requests": True,
                    "response_days": 2 if messaging else 3,
                },
            )
    return users


async def _care(users: dict[str, User]) -> None:
    today = date.today()
    for patient, practitioner in CARE:
        await CareRelationship.get_or_create(
            patient=users[patient],
            practitioner=users[practitioner],
            defaults={
                "first_consultation": today - timedelta(days=900),
                "last_consultation": today - timedelta(days=40),
            },
        )


async def _example_threads(users: dict[str, User]) -> int:
    """Create the example conversations once; they are dated in the past so that they count in
    no patient's daily quota."""
    if await Thread.filter(patient__email__in=[t[0] for t in EXAMPLE_THREADS]).exists():
        return 0
    for patient, practitioner, category, subject, status, days_ago, messages in EXAMPLE_THREADS:
        when = datetime.now(UTC) - timedelta(days=days_ago)
        async with in_transaction() as connection:
            thread = await Thread.create(
                practice_id=users[practitioner].practice_id,
                patient=users[patient],
                practitioner=users[practitioner],
                category=category,
                subject=subject,
                status=status,
                last_seq=len(messages),
                last_message_at=when,
                closed_at=when if status is ThreadStatus.CLOSED else None,
                using_db=connection,
            )
            for seq, (author, body) in enumerate(messages, start=1):
                kind = MessageKind.PATIENT if author == patient else MessageKind.STAFF
                message = await Message.create(
                    thread=thread,
                    seq=seq,
                    author=users[author],
                    kind=kind,
                    body=body,
                    using_db=connection,
                )
                await Message.filter(id=message.id).using_db(connection).update(created_at=when)
            await Thread.filter(id=thread.id).using_db(connection).update(created_at=when)
            await ReadState.create(
                user=users[patient], thread=thread, last_read_seq=len(messages), using_db=connection
            )
    return len(EXAMPLE_THREADS)


async def _load_test_patients(count: int, password_hash: str, martin: User) -> int:
    """patient-0001 … patient-N, each having consulted Dr Martin; one shared hash keeps a run
    for thousands of patients within seconds."""
    emails = [f"patient-{n:04d}@demo.colloque.test" for n in range(1, count + 1)]
    existing = set(await User.filter(email__in=emails).values_list("email", flat=True))
    await User.bulk_create(
        [
            User(
                email=email,
                password_hash=password_hash,
                role=Role.PATIENT,
                display_name=f"Patient {email[8:12]}",
            )
            for email in emails
            if email not in existing
        ],
        batch_size=500,
    )
    ids = await User.filter(email__in=emails).values_list("id", flat=True)
    linked = set(
        await CareRelationship.filter(practitioner=martin, patient_id__in=ids).values_list(
            "patient_id", flat=True
        )
    )
    today = date.today()
    await CareRelationship.bulk_create(
        [
            CareRelationship(
                patient_id=patient_id,
                practitioner=martin,
                first_consultation=today - timedelta(days=365),
                last_consultation=today - timedelta(days=30),
            )
            for patient_id in ids
            if patient_id not in linked
        ],
        batch_size=500,
    )
    return len(emails) - len(existing)


async def create_demo(patients: int = 0) -> str:
    password_hash = await hash_password(DEMO_PASSWORD)
    users = await _accounts(password_hash)
    await _care(users)
    threads = await _example_threads(users)
    created = await _load_test_patients(
        patients, password_hash, users["dr.martin@demo.colloque.test"]
    )
    return (
        f"demo ready: {len(users)} accounts (password {DEMO_PASSWORD!r}), "
        f"{threads} new example threads, {created} new load-test patients"
    )
