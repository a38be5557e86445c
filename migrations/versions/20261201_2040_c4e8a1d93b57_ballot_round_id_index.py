"""ballot (round_id, id) index

The round page's latest ballots (`WHERE round_id = ? ORDER BY id DESC LIMIT 20`, rounds/ballots.py ballot_history)
and the pending paper/proxy ballots read one round's ballots in id order. Without this index PostgreSQL walks the
primary key backwards through every round's ballots (80 ms at 188,888 ballots; issue 19, the tally page).

Revision ID: c4e8a1d93b57
Revises: c4e8f1a20d57
Create Date: 2026-12-01 20:40:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'c4e8a1d93b57'
down_revision = 'c4e8f1a20d57'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('ballot', schema=None) as batch_op:
        batch_op.create_index('ix_ballot_round_id_id', ['round_id', 'id'], unique=False)


def downgrade():
    with op.batch_alter_table('ballot', schema=None) as batch_op:
        batch_op.drop_index('ix_ballot_round_id_id')
