"""unit owed

Owed amounts per unit saved when a plan version is published (issue 19, funding/owed.py): one row per published
version and unit (share, hardship cover, funding-source offsets, owed). Back-fills the versions in force with
funding.services.compute_plan, run on the migration's own connection (so it sees this transaction's schema).

Revision ID: a19c7e0d2b36
Revises: b7d2c9e4a1f3
Create Date: 2026-12-01 18:10:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'a19c7e0d2b36'
down_revision = 'b7d2c9e4a1f3'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'unit_owed',
        sa.Column('plan_version_id', sa.Integer(), nullable=False),
        sa.Column('unit_id', sa.Integer(), nullable=False),
        sa.Column('share_fen', sa.BigInteger(), nullable=False),
        sa.Column('covered_fen', sa.BigInteger(), nullable=False),
        sa.Column('offset_fen', sa.BigInteger(), nullable=False),
        sa.Column('owed_fen', sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(['plan_version_id'], ['plan_version.id'],
                                name=op.f('fk_unit_owed_plan_version_id_plan_version'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['unit_id'], ['unit.id'], name=op.f('fk_unit_owed_unit_id_unit'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('plan_version_id', 'unit_id', name=op.f('pk_unit_owed')),
    )
    op.create_index(op.f('ix_unit_owed_unit_id'), 'unit_owed', ['unit_id'], unique=False)
    _backfill()


def _backfill():
    from residents_app.funding import owed

    owed.backfill_migration(op.get_bind())


def downgrade():
    op.drop_index(op.f('ix_unit_owed_unit_id'), table_name='unit_owed')
    op.drop_table('unit_owed')
