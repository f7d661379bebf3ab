from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='StreamEvent',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('kind', fields.CharField(max_length=40)),
                ('thread_id', fields.IntField(null=True)),
                ('practice_id', fields.IntField(null=True)),
                ('to_practice_staff', fields.BooleanField(default=False, description='Also for every secretary and administrator of the practice, present or future.')),
                ('data', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'stream_event', 'app': 'models', 'indexes': [Index(fields=['practice_id', 'id']), Index(fields=['created_at'])], 'pk_attr': 'id', 'table_description': 'One change, in the order it was committed: what live streams deliver and replay.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='StreamRecipient',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('event_id', fields.BigIntField()),
                ('user_id', fields.IntField()),
            ],
            options={'table': 'stream_recipient', 'app': 'models', 'unique_together': (('user_id', 'event_id'),), 'indexes': [Index(fields=['event_id'])], 'pk_attr': 'id', 'table_description': 'A user named by an event: the index a reconnecting client replays from.'},
            bases=['Model'],
        ),
    ]
