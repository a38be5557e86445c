"""owed detail

The rest of what compute_plan gives, kept with the owed amounts (issue 19, funding/owed.py): each unit's detail
(its share of each item, offsets, match, hardship, place in the estate's order) in unit_owed.detail, and each
version's figures (the items' split, the cap, the totals) in plan_owed. Back-fills the versions in force as the
unit_owed migration does (rows without detail are read live until then).

Revision ID: c4e8f1a20d57
Revises: a19c7e0d2b36
Create Date: 2026-12-01 20:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c4e8f1a20d57'
down_revision = 'a19c7e0d2b36'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('unit_owed', schema=None) as batch_op:
        batch_op.add_column(sa.Column('detail', sa.JSON(), nullable=True))
    op.create_table(
        'plan_owed',
        sa.Column('plan_version_id', sa.Integer(), nullable=False),
        sa.Column('figures', sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(['plan_version_id'], ['plan_version.id'],
                                name=op.f('fk_plan_owed_plan_version_id_plan_version'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('plan_version_id', name=op.f('pk_plan_owed')),
    )
    _backfill()


def _backfill():
    from residents_app.funding import owed

    owed.backfill_migration(op.get_bind())


def downgrade():
    op.drop_table('plan_owed')
    with op.batch_alter_table('unit_owed', schema=None) as batch_op:
        batch_op.drop_column('detail')
