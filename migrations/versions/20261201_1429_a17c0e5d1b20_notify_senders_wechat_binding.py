"""notify senders wechat binding

The outbox gains what the senders need: a hold time (quiet hours, backoff, daily cap), the provider's error code,
a short title, the state 'skipped' (nobody to reach), one row per recipient (outbox_delivery), owners' opt-outs;
WeChat openids bound to owners and units.

outbox_message is altered first, while no table references it (SQLite rebuilds it to change the check).

Revision ID: a17c0e5d1b20
Revises: c4a7e1b20f16
Create Date: 2026-12-01 14:29:38.928927

"""
from alembic import op
import sqlalchemy as sa

import residents_app.db  # noqa: F401  (custom column types)


# revision identifiers, used by Alembic.
revision = 'a17c0e5d1b20'
down_revision = 'c4a7e1b20f16'
branch_labels = None
depends_on = None


STATE_CHECK = "ck_outbox_message_state_known"
OLD_STATES = "state in ('pending', 'sent', 'failed')"
NEW_STATES = "state in ('pending', 'sent', 'failed', 'skipped')"


def upgrade():
    with op.batch_alter_table('outbox_message', schema=None, recreate='always') as batch_op:
        batch_op.add_column(sa.Column('title', sa.String(length=60), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('error_code', sa.String(length=80), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('next_attempt_at', residents_app.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.drop_constraint(op.f(STATE_CHECK), type_='check')
        batch_op.create_check_constraint(op.f(STATE_CHECK), NEW_STATES)
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.alter_column('title', server_default=None)
        batch_op.alter_column('error_code', server_default=None)

    op.create_table('notify_opt_out',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=20), nullable=False),
    sa.Column('source', sa.String(length=40), nullable=False),
    sa.Column('created_at', residents_app.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("channel in ('sms', 'wechat', 'all')", name=op.f('ck_notify_opt_out_channel_known')),
    sa.ForeignKeyConstraint(['owner_id'], ['owner.id'], name=op.f('fk_notify_opt_out_owner_id_owner'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notify_opt_out')),
    sa.UniqueConstraint('owner_id', 'channel', name=op.f('uq_notify_opt_out_owner_id_channel'))
    )
    with op.batch_alter_table('notify_opt_out', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notify_opt_out_owner_id'), ['owner_id'], unique=False)

    op.create_table('wechat_binding',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('openid', sa.String(length=64), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('created_at', residents_app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_login_at', residents_app.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['owner_id'], ['owner.id'], name=op.f('fk_wechat_binding_owner_id_owner'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['unit_id'], ['unit.id'], name=op.f('fk_wechat_binding_unit_id_unit'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_wechat_binding')),
    sa.UniqueConstraint('openid', 'unit_id', name=op.f('uq_wechat_binding_openid_unit_id'))
    )
    with op.batch_alter_table('wechat_binding', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_wechat_binding_openid'), ['openid'], unique=False)
        batch_op.create_index(batch_op.f('ix_wechat_binding_owner_id'), ['owner_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_wechat_binding_unit_id'), ['unit_id'], unique=False)

    op.create_table('outbox_delivery',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=20), nullable=False),
    sa.Column('recipient', sa.String(length=64), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=True),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('provider_ref', sa.String(length=80), nullable=False),
    sa.Column('error_code', sa.String(length=80), nullable=False),
    sa.Column('at', residents_app.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("state in ('sent', 'failed', 'retry')", name=op.f('ck_outbox_delivery_state_known')),
    sa.ForeignKeyConstraint(['message_id'], ['outbox_message.id'], name=op.f('fk_outbox_delivery_message_id_outbox_message'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['owner_id'], ['owner.id'], name=op.f('fk_outbox_delivery_owner_id_owner'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_delivery')),
    sa.UniqueConstraint('message_id', 'channel', 'recipient', name=op.f('uq_outbox_delivery_message_id_channel_recipient'))
    )
    with op.batch_alter_table('outbox_delivery', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_delivery_message_id'), ['message_id'], unique=False)

    # ### end Alembic commands ###


def downgrade():
    # ### commands auto generated by Alembic - please adjust! ###
    with op.batch_alter_table('outbox_delivery', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_delivery_message_id'))

    op.drop_table('outbox_delivery')
    with op.batch_alter_table('wechat_binding', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_wechat_binding_unit_id'))
        batch_op.drop_index(batch_op.f('ix_wechat_binding_owner_id'))
        batch_op.drop_index(batch_op.f('ix_wechat_binding_openid'))

    op.drop_table('wechat_binding')
    with op.batch_alter_table('notify_opt_out', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notify_opt_out_owner_id'))

    op.drop_table('notify_opt_out')
    bind = op.get_bind()
    skipped = bind.exec_driver_sql("SELECT count(*) FROM outbox_message WHERE state = 'skipped'").scalar_one()
    if skipped:
        raise RuntimeError(f"{skipped} outbox messages are 'skipped'; remove them before downgrading")
    with op.batch_alter_table('outbox_message', schema=None, recreate='always') as batch_op:
        batch_op.drop_constraint(op.f(STATE_CHECK), type_='check')
        batch_op.create_check_constraint(op.f(STATE_CHECK), OLD_STATES)
        batch_op.drop_column('next_attempt_at')
        batch_op.drop_column('error_code')
        batch_op.drop_column('title')
    # ### end Alembic commands ###
