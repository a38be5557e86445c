"""round counters

Stored counters per round, building and choice (issue 19 item 1): `round_count` (units and area in hundredths;
choice '' is the frozen roll) and `current_ballot.previous_choice` (what the upsert replaced, so the counters
move in the cast's own statement). Existing rounds are backfilled from their roll and counted ballots, exactly
as `flask rounds recount --rebuild` would.

Revision ID: c19a7d3e5b10
Revises: 1aec4f6be9c1
Create Date: 2026-12-01 15:20:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c19a7d3e5b10'
down_revision = '1aec4f6be9c1'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'round_count',
        sa.Column('round_id', sa.Integer(), nullable=False),
        sa.Column('building_id', sa.Integer(), nullable=False),
        sa.Column('choice', sa.String(length=20), nullable=False),
        sa.Column('slot', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('units', sa.Integer(), nullable=False),
        sa.Column('area_m2', sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(['building_id'], ['building.id'], name=op.f('fk_round_count_building_id_building')),
        sa.ForeignKeyConstraint(['round_id'], ['round.id'], name=op.f('fk_round_count_round_id_round')),
        sa.PrimaryKeyConstraint('round_id', 'building_id', 'choice', 'slot', name=op.f('pk_round_count')),
    )
    with op.batch_alter_table('current_ballot', schema=None) as batch_op:
        batch_op.add_column(sa.Column('previous_choice', sa.String(length=20), nullable=True))
    op.execute(
        "INSERT INTO round_count (round_id, building_id, choice, slot, units, area_m2) "
        "SELECT e.round_id, e.building_id, '', 0, COUNT(*), SUM(e.area_m2) FROM roll_entry e "
        "GROUP BY e.round_id, e.building_id")
    op.execute(
        "INSERT INTO round_count (round_id, building_id, choice, slot, units, area_m2) "
        "SELECT e.round_id, e.building_id, c.choice, 0, COUNT(*), SUM(e.area_m2) FROM roll_entry e "
        "JOIN current_ballot c ON c.round_id = e.round_id AND c.unit_id = e.unit_id "
        "GROUP BY e.round_id, e.building_id, c.choice")


def downgrade():
    with op.batch_alter_table('current_ballot', schema=None) as batch_op:
        batch_op.drop_column('previous_choice')
    op.drop_table('round_count')
