from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0002_stream_events')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Message',
            name='emergency',
            field=fields.BooleanField(default=False),
        ),
        ops.AddField(
            model_name='Message',
            name='emergency_categories',
            field=fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads),
        ),
        ops.AddField(
            model_name='Message',
            name='triaged_at',
            field=fields.DatetimeField(null=True, description='When triage assessed this patient message, null until then: a patient message still null', auto_now=False, auto_now_add=False),
        ),
        ops.AddIndex(
            model_name='Message',
            index=Index(fields=['kind', 'triaged_at']),
        ),
        ops.AlterField(
            model_name='Thread',
            name='emergency',
            field=fields.BooleanField(default=False, description="Set when triage flags one of the patient's messages: the thread goes first in the inbox"),
        ),
        ops.AddField(
            model_name='Thread',
            name='emergency_categories',
            field=fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads),
        ),
    ]
