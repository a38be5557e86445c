"""acceptance participants linked to the project's parties; overdue rectification reminders

An acceptance participant may be one of the construction parties (its `party` account limited to this project
signs online); an acceptance's rectification item may name the party that owns it; both kinds of rectification
items remember when their owner was reminded that they are overdue (issue 16).

Revision ID: f16a2b3c4d5e
Revises: e19b3c5d7f42
Create Date: 2026-12-01 17:10:00.000000

"""
from alembic import op
import sqlalchemy as sa

import residents_app.db


# revision identifiers, used by Alembic.
revision = 'f16a2b3c4d5e'
down_revision = 'e19b3c5d7f42'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('acceptance_participant', schema=None) as batch_op:
        batch_op.add_column(sa.Column('party_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_acceptance_participant_party_id_construction_party'),
                                    'construction_party', ['party_id'], ['id'])
    with op.batch_alter_table('acceptance_issue', schema=None) as batch_op:
        batch_op.add_column(sa.Column('owner_party_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('reminded_at', residents_app.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_acceptance_issue_owner_party_id_construction_party'),
                                    'construction_party', ['owner_party_id'], ['id'])
    with op.batch_alter_table('rectification_item', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reminded_at', residents_app.db.UTCDateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('rectification_item', schema=None) as batch_op:
        batch_op.drop_column('reminded_at')
    with op.batch_alter_table('acceptance_issue', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_acceptance_issue_owner_party_id_construction_party'),
                                 type_='foreignkey')
        batch_op.drop_column('reminded_at')
        batch_op.drop_column('owner_party_id')
    with op.batch_alter_table('acceptance_participant', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_acceptance_participant_party_id_construction_party'),
                                 type_='foreignkey')
        batch_op.drop_column('party_id')
