from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0003_triage')]

    initial = False

    operations = [
        ops.CreateModel(
            name='LoginThrottle',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('key', fields.CharField(unique=True, description='"account:" or "address:" then a keyed hash of the email or IP address.', max_length=100)),
                ('failures', fields.IntField(default=0)),
                ('last_failure_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'login_throttle', 'app': 'models', 'pk_attr': 'id', 'table_description': 'Recent failed logins per account and per address, for growing delays between attempts.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PasswordReset',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='password_resets', on_delete=OnDelete.CASCADE)),
                ('token_hash', fields.CharField(unique=True, description='SHA-256 of the token in the link: a database dump yields no usable link.', max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'password_reset', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A single-use, expiring password reset link sent by email.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='RecoveryCode',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='recovery_codes', on_delete=OnDelete.CASCADE)),
                ('code_hash', fields.CharField(description='Hash of the code, never the code itself.', max_length=200)),
                ('used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'recovery_code', 'app': 'models', 'pk_attr': 'id', 'table_description': 'One-time codes that stand in for the authenticator app when it is lost.'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='AuditEvent',
            name='object',
            field=fields.CharField(default='', description='What was acted on, such as "thread:12" or "account:3".', max_length=64),
        ),
        ops.AddField(
            model_name='AuditEvent',
            name='outcome',
            field=fields.CharField(default='ok', description='"ok", or "denied" for a refused authorization or a failed login.', max_length=16),
        ),
        ops.AddField(
            model_name='AuditEvent',
            name='practice_id',
            field=fields.IntField(null=True, description='The practice whose administrators may export this line, when there is one.'),
        ),
        ops.AddField(
            model_name='AuditEvent',
            name='subject',
            field=fields.CharField(default='', description='Pseudonymous id of the patient concerned (a keyed hash, not the account id).', max_length=64),
        ),
        ops.AddIndex(
            model_name='AuditEvent',
            index=Index(fields=['practice_id', 'created_at']),
        ),
        ops.AddIndex(
            model_name='AuditEvent',
            index=Index(fields=['created_at']),
        ),
        ops.AddField(
            model_name='Practice',
            name='require_patient_second_factor',
            field=fields.BooleanField(default=True, description='Patients of this practice must too. On by default, a practice may turn it off.'),
        ),
        ops.AddField(
            model_name='Practice',
            name='require_staff_second_factor',
            field=fields.BooleanField(default=True, description='Staff must log in with a second factor (TOTP), as the ANS PGSSI-S asks of health software.'),
        ),
        ops.AlterField(
            model_name='Thread',
            name='subject',
            field=fields.TextField(description='Encrypted at rest, like message bodies, hence text rather than a bounded column.', unique=False),
        ),
        ops.AddField(
            model_name='User',
            name='closed_at',
            field=fields.DatetimeField(null=True, description='Set when the account was closed and its identity anonymised (GDPR).', auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='User',
            name='totp_enabled_at',
            field=fields.DatetimeField(null=True, description='Set once the user proved their authenticator works: only then is the factor required.', auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='User',
            name='totp_last_step',
            field=fields.BigIntField(default=0, description='Last TOTP time step accepted, so that one code cannot be replayed within its window.'),
        ),
        ops.AddField(
            model_name='User',
            name='totp_secret',
            field=fields.TextField(null=True, description='TOTP shared secret, encrypted at rest like message content, null until enrolled.', unique=False),
        ),
    ]
