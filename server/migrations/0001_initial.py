from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from server.models import Category, MessageKind, Role, ThreadStatus
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name='AuditEvent',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('actor_id', fields.IntField(null=True)),
                ('action', fields.CharField(max_length=40)),
                ('thread_id', fields.IntField(null=True)),
                ('detail', fields.JSONField(default=dict, description='Non-content facts only (new status, assignee id, category...).', encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'audit_event', 'app': 'models', 'indexes': [Index(fields=['thread_id', 'created_at']), Index(fields=['actor_id', 'created_at'])], 'pk_attr': 'id', 'table_description': 'Who read or changed which thread, and when. Never any message content.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Practice',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('name', fields.CharField(max_length=200)),
                ('mask_content_for_secretaries', fields.BooleanField(default=False, description='Hides message bodies from secretaries, who still see who wrote, when, and the category.')),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'practice', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='User',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('email', fields.CharField(unique=True, max_length=254)),
                ('password_hash', fields.CharField(max_length=200)),
                ('role', fields.CharEnumField(description='PATIENT: patient\nPRACTITIONER: practitioner\nSECRETARY: secretary\nADMIN: admin', enum_type=Role, max_length=16)),
                ('display_name', fields.CharField(max_length=120)),
                ('practice', fields.ForeignKeyField('models.Practice', source_field='practice_id', null=True, description='Staff belong to one practice, patients to none (they reach practitioners through', db_constraint=True, to_field='id', related_name='members', on_delete=OnDelete.RESTRICT)),
                ('locale', fields.CharField(default='fr', max_length=5)),
                ('is_active', fields.BooleanField(default=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'user', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='CareRelationship',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('patient', fields.ForeignKeyField('models.User', source_field='patient_id', db_constraint=True, to_field='id', related_name='care_as_patient', on_delete=OnDelete.CASCADE)),
                ('practitioner', fields.ForeignKeyField('models.User', source_field='practitioner_id', db_constraint=True, to_field='id', related_name='care_as_practitioner', on_delete=OnDelete.CASCADE)),
                ('first_consultation', fields.DateField()),
                ('last_consultation', fields.DateField()),
            ],
            options={'table': 'care_relationship', 'app': 'models', 'unique_together': (('patient', 'practitioner'),), 'pk_attr': 'id', 'table_description': 'A patient has consulted a practitioner: the only ground on which they may write.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='MessagingSettings',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('practitioner', fields.OneToOneField('models.User', source_field='practitioner_id', db_constraint=True, to_field='id', related_name='messaging_settings', on_delete=OnDelete.CASCADE)),
                ('messaging_enabled', fields.BooleanField(default=False)),
                ('accepting_requests', fields.BooleanField(default=True)),
                ('away_message', fields.TextField(default='', unique=False)),
                ('response_days', fields.SmallIntField(default=3, description='What the patient is promised before writing, in working days.')),
                ('max_open_requests_per_patient', fields.SmallIntField(default=5)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'messaging_settings', 'app': 'models', 'pk_attr': 'id', 'table_description': "A practitioner's own choices about patient messaging."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Session',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('key_hash', fields.CharField(unique=True, description='SHA-256 of the random key in the cookie: a database dump does not yield usable cookies.', max_length=64)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='sessions', on_delete=OnDelete.CASCADE)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('last_seen_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'session', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A login, kept on the server so that it can be revoked. The cookie holds only its key.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Thread',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('practice', fields.ForeignKeyField('models.Practice', source_field='practice_id', db_constraint=True, to_field='id', related_name='threads', on_delete=OnDelete.RESTRICT)),
                ('patient', fields.ForeignKeyField('models.User', source_field='patient_id', db_constraint=True, to_field='id', related_name='threads_as_patient', on_delete=OnDelete.RESTRICT)),
                ('practitioner', fields.ForeignKeyField('models.User', source_field='practitioner_id', db_constraint=True, to_field='id', related_name='threads_as_practitioner', on_delete=OnDelete.RESTRICT)),
                ('assignee', fields.ForeignKeyField('models.User', source_field='assignee_id', null=True, db_constraint=True, to_field='id', related_name='threads_assigned', on_delete=OnDelete.SET_NULL)),
                ('category', fields.CharEnumField(description='QUESTION: question\nRENEWAL: renewal\nADMIN: admin\nRESULTS: results\nOTHER: other', enum_type=Category, max_length=16)),
                ('subject', fields.CharField(max_length=200)),
                ('status', fields.CharEnumField(default=ThreadStatus.PENDING, description='PENDING: pending\nOPEN: open\nDECLINED: declined\nCLOSED: closed', enum_type=ThreadStatus, max_length=16)),
                ('decline_reason', fields.TextField(default='', unique=False)),
                ('emergency', fields.BooleanField(default=False)),
                ('last_seq', fields.IntField(default=0, description='Highest message sequence number in the thread, bumped under a row lock to number messages.')),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ('last_message_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('closed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'thread', 'app': 'models', 'indexes': [Index(fields=['practice_id', 'status', 'last_message_at']), Index(fields=['practitioner_id', 'status', 'last_message_at']), Index(fields=['patient_id', 'last_message_at'])], 'pk_attr': 'id', 'table_description': 'A request from a patient to a practitioner, and the conversation that follows it.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Message',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('thread', fields.ForeignKeyField('models.Thread', source_field='thread_id', db_constraint=True, to_field='id', related_name='messages', on_delete=OnDelete.CASCADE)),
                ('seq', fields.IntField(description='Position in the thread, from 1, without gaps: what read state and catch-up count in.')),
                ('author', fields.ForeignKeyField('models.User', source_field='author_id', null=True, db_constraint=True, to_field='id', related_name='messages', on_delete=OnDelete.SET_NULL)),
                ('kind', fields.CharEnumField(description='PATIENT: patient\nSTAFF: staff\nSYSTEM: system', enum_type=MessageKind, max_length=16)),
                ('body', fields.TextField(unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'message', 'app': 'models', 'unique_together': (('thread', 'seq'),), 'indexes': [Index(fields=['author_id', 'created_at'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ReadState',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='read_states', on_delete=OnDelete.CASCADE)),
                ('thread', fields.ForeignKeyField('models.Thread', source_field='thread_id', db_constraint=True, to_field='id', related_name='read_states', on_delete=OnDelete.CASCADE)),
                ('last_read_seq', fields.IntField(default=0)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'read_state', 'app': 'models', 'unique_together': (('user', 'thread'),), 'pk_attr': 'id', 'table_description': "How far a user has read a thread: unread counts derive from it and the thread's last_seq."},
            bases=['Model'],
        ),
    ]
