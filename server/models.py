"""Tortoise models: the database is the record of everything Colloque knows.

Column comments (`#:`) and model docstrings become SQL comments: Tortoise's SQLite migration
runner splits statements on semicolons, so they must not contain any."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model

from server.encrypted_fields import EncryptedTextField


class Role(StrEnum):
    PATIENT = "patient"
    PRACTITIONER = "practitioner"
    SECRETARY = "secretary"
    ADMIN = "admin"


class Category(StrEnum):
    QUESTION = "question"
    RENEWAL = "renewal"
    ADMIN = "admin"
    RESULTS = "results"
    OTHER = "other"


class ThreadStatus(StrEnum):
    PENDING = "pending"
    OPEN = "open"
    DECLINED = "declined"
    CLOSED = "closed"


class MessageKind(StrEnum):
    PATIENT = "patient"
    STAFF = "staff"
    SYSTEM = "system"


class Practice(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=200)
    #: Hides message bodies from secretaries, who still see who wrote, when, and the category.
    mask_content_for_secretaries = fields.BooleanField(default=False)
    #: Staff must log in with a second factor (TOTP), as the ANS PGSSI-S asks of health software.
    require_staff_second_factor = fields.BooleanField(default=True)
    #: Patients of this practice must too. On by default, a practice may turn it off.
    require_patient_second_factor = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "practice"


class User(Model):
    id = fields.IntField(primary_key=True)
    email = fields.CharField(max_length=254, unique=True)
    password_hash = fields.CharField(max_length=200)
    role = fields.CharEnumField(Role, max_length=16)
    display_name = fields.CharField(max_length=120)
    #: Staff belong to one practice, patients to none (they reach practitioners through
    #: care relationships).
    practice: fields.ForeignKeyNullableRelation[Practice] = fields.ForeignKeyField(
        "models.Practice", related_name="members", null=True, on_delete=fields.RESTRICT
    )
    locale = fields.CharField(max_length=5, default="fr")
    is_active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    #: TOTP shared secret, encrypted at rest like message content, null until enrolled.
    totp_secret = EncryptedTextField(null=True)
    #: Set once the user proved their authenticator works: only then is the factor required.
    totp_enabled_at = fields.DatetimeField(null=True)
    #: Last TOTP time step accepted, so that one code cannot be replayed within its window.
    totp_last_step = fields.BigIntField(default=0)
    #: Set when the account was closed and its identity anonymised (GDPR).
    closed_at = fields.DatetimeField(null=True)

    class Meta:
        table = "user"


class RecoveryCode(Model):
    """One-time codes that stand in for the authenticator app when it is lost."""

    id = fields.IntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="recovery_codes", on_delete=fields.CASCADE
    )
    #: Hash of the code, never the code itself.
    code_hash = fields.CharField(max_length=200)
    used_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "recovery_code"


class PasswordReset(Model):
    """A single-use, expiring password reset link sent by email."""

    id = fields.IntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="password_resets", on_delete=fields.CASCADE
    )
    #: SHA-256 of the token in the link: a database dump yields no usable link.
    token_hash = fields.CharField(max_length=64, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)

    class Meta:
        table = "password_reset"


class LoginThrottle(Model):
    """Recent failed logins per account and per address, for growing delays between attempts."""

    id = fields.IntField(primary_key=True)
    #: "account:" or "address:" then a keyed hash of the email or IP address.
    key = fields.CharField(max_length=100, unique=True)
    failures = fields.IntField(default=0)
    last_failure_at = fields.DatetimeField()

    class Meta:
        table = "login_throttle"


class MessagingSettings(Model):
    """A practitioner's own choices about patient messaging."""

    id = fields.IntField(primary_key=True)
    practitioner: fields.OneToOneRelation[User] = fields.OneToOneField(
        "models.User", related_name="messaging_settings", on_delete=fields.CASCADE
    )
    messaging_enabled = fields.BooleanField(default=False)
    accepting_requests = fields.BooleanField(default=True)
    away_message = fields.TextField(default="")
    #: What the patient is promised before writing, in working days.
    response_days = fields.SmallIntField(default=3)
    max_open_requests_per_patient = fields.SmallIntField(default=5)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "messaging_settings"


class CareRelationship(Model):
    """A patient has consulted a practitioner: the only ground on which they may write."""

    id = fields.IntField(primary_key=True)
    patient: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="care_as_patient", on_delete=fields.CASCADE
    )
    practitioner: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="care_as_practitioner", on_delete=fields.CASCADE
    )
    first_consultation = fields.DateField()
    last_consultation = fields.DateField()

    class Meta:
        table = "care_relationship"
        unique_together = (("patient", "practitioner"),)


class Thread(Model):
    """A request from a patient to a practitioner, and the conversation that follows it."""

    id = fields.IntField(primary_key=True)
    practice: fields.ForeignKeyRelation[Practice] = fields.ForeignKeyField(
        "models.Practice", related_name="threads", on_delete=fields.RESTRICT
    )
    patient: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="threads_as_patient", on_delete=fields.RESTRICT
    )
    practitioner: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="threads_as_practitioner", on_delete=fields.RESTRICT
    )
    assignee: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="threads_assigned", null=True, on_delete=fields.SET_NULL
    )
    category = fields.CharEnumField(Category, max_length=16)
    #: Encrypted at rest, like message bodies, hence text rather than a bounded column.
    subject = EncryptedTextField()
    status = fields.CharEnumField(ThreadStatus, max_length=16, default=ThreadStatus.PENDING)
    decline_reason = EncryptedTextField(default="")
    #: Set when triage flags one of the patient's messages: the thread goes first in the inbox
    #: and the queue. Categories accumulate over the thread's flagged messages.
    emergency = fields.BooleanField(default=False)
    emergency_categories: list[str] = fields.JSONField(default=list)  # type: ignore[assignment]
    #: Highest message sequence number in the thread, bumped under a row lock to number messages.
    last_seq = fields.IntField(default=0)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)
    last_message_at = fields.DatetimeField()
    closed_at = fields.DatetimeField(null=True)

    class Meta:
        table = "thread"
        indexes = (
            # Secretary queue: a practice's threads by status, oldest waiting first.
            Index(fields=("practice_id", "status", "last_message_at")),
            # Practitioner inbox: their threads by status, newest activity first.
            Index(fields=("practitioner_id", "status", "last_message_at")),
            # Patient home: their threads, newest first.
            Index(fields=("patient_id", "last_message_at")),
        )


class Message(Model):
    id = fields.IntField(primary_key=True)
    thread: fields.ForeignKeyRelation[Thread] = fields.ForeignKeyField(
        "models.Thread", related_name="messages", on_delete=fields.CASCADE
    )
    #: Position in the thread, from 1, without gaps: what read state and catch-up count in.
    seq = fields.IntField()
    author: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="messages", null=True, on_delete=fields.SET_NULL
    )
    kind = fields.CharEnumField(MessageKind, max_length=16)
    body = EncryptedTextField()
    created_at = fields.DatetimeField(auto_now_add=True)
    #: When triage assessed this patient message, null until then: a patient message still null
    #: is a triage job not done yet, whatever happened to the queue that carried it.
    triaged_at = fields.DatetimeField(null=True)
    emergency = fields.BooleanField(default=False)
    emergency_categories: list[str] = fields.JSONField(default=list)  # type: ignore[assignment]

    class Meta:
        table = "message"
        unique_together = (("thread", "seq"),)
        indexes = (
            # Per-patient quotas count a patient's recent messages.
            Index(fields=("author_id", "created_at")),
            # Workers find the patient messages triage has not assessed yet.
            Index(fields=("kind", "triaged_at")),
        )


class ReadState(Model):
    """How far a user has read a thread: unread counts derive from it and the thread's last_seq."""

    id = fields.IntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="read_states", on_delete=fields.CASCADE
    )
    thread: fields.ForeignKeyRelation[Thread] = fields.ForeignKeyField(
        "models.Thread", related_name="read_states", on_delete=fields.CASCADE
    )
    last_read_seq = fields.IntField(default=0)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "read_state"
        unique_together = (("user", "thread"),)


class AuditEvent(Model):
    """Who read or changed which thread, and when. Never any message content."""

    id = fields.BigIntField(primary_key=True)
    actor_id = fields.IntField(null=True)
    action = fields.CharField(max_length=40)
    thread_id = fields.IntField(null=True)
    #: The practice whose administrators may export this line, when there is one.
    practice_id = fields.IntField(null=True)
    #: Pseudonymous id of the patient concerned (a keyed hash, not the account id).
    subject = fields.CharField(max_length=64, default="")
    #: What was acted on, such as "thread:12" or "account:3".
    object = fields.CharField(max_length=64, default="")
    #: "ok", or "denied" for a refused authorization or a failed login.
    outcome = fields.CharField(max_length=16, default="ok")
    #: Non-content facts only (new status, assignee id, category...).
    detail = fields.JSONField(default=dict)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "audit_event"
        indexes = (
            Index(fields=("thread_id", "created_at")),
            Index(fields=("actor_id", "created_at")),
            Index(fields=("practice_id", "created_at")),
            Index(fields=("created_at",)),
        )


class Session(Model):
    """A login, kept on the server so that it can be revoked. The cookie holds only its key."""

    id = fields.IntField(primary_key=True)
    #: SHA-256 of the random key in the cookie: a database dump does not yield usable cookies.
    key_hash = fields.CharField(max_length=64, unique=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="sessions", on_delete=fields.CASCADE
    )
    created_at = fields.DatetimeField(auto_now_add=True)
    last_seen_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()

    class Meta:
        table = "session"


class StreamEvent(Model):
    """One change, in the order it was committed: what live streams deliver and replay.

    It holds references (message id, new status), never content: fragments are rendered from
    the current rows when delivered.
    """

    id = fields.BigIntField(primary_key=True)
    kind = fields.CharField(max_length=40)
    thread_id = fields.IntField(null=True)
    practice_id = fields.IntField(null=True)
    #: Also for every secretary and administrator of the practice, present or future.
    to_practice_staff = fields.BooleanField(default=False)
    data = fields.JSONField(default=dict)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "stream_event"
        indexes = (Index(fields=("practice_id", "id")), Index(fields=("created_at",)))


class PendingEvent(Model):
    """An event committed with its change, waiting for its number in the log (PostgreSQL).

    Numbers are drawn right after the change commits, by one statement that holds the ordering
    lock only while the database runs it: no transaction keeps that lock across a round trip to
    a busy application process, and ids still commit in increasing order.
    """

    id = fields.BigIntField(primary_key=True)
    kind = fields.CharField(max_length=40)
    thread_id = fields.IntField(null=True)
    practice_id = fields.IntField(null=True)
    to_practice_staff = fields.BooleanField(default=False)
    data = fields.JSONField(default=dict)
    #: Ids of the users the event names.
    recipients = fields.JSONField(default=list)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "pending_event"


class StreamRecipient(Model):
    """A user named by an event: the index a reconnecting client replays from."""

    id = fields.BigIntField(primary_key=True)
    event_id = fields.BigIntField()
    user_id = fields.IntField()

    class Meta:
        table = "stream_recipient"
        unique_together = (("user_id", "event_id"),)
        indexes = (Index(fields=("event_id",)),)
