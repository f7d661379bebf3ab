from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0006_audit_append_only')]

    initial = False

    operations = [
        ops.CreateModel(
            name='PendingEvent',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('kind', fields.CharField(max_length=40)),
                ('thread_id', fields.IntField(null=True)),
                ('practice_id', fields.IntField(null=True)),
                ('to_practice_staff', fields.BooleanField(default=False)),
                ('data', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('recipients', fields.JSONField(default=list, description='Ids of the users the event names.', encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'pending_event', 'app': 'models', 'pk_attr': 'id', 'table_description': 'An event committed with its change, waiting for its number in the log (PostgreSQL).'},
            bases=['Model'],
        ),
    ]
