"""estate funding summary

Per-estate funding summary rows read by the district view (issue 19): refreshed by the commit that changes a
payment, a hardship treatment, a plan version, a unit or a contribution rule (funding/summary.py). Existing estates
get their row at their next such change; until then the district view computes them live.

Revision ID: d19e2f4a6c21
Revises: c19a7d3e5b10
Create Date: 2026-12-01 15:30:00.000000

"""
from alembic import op
import sqlalchemy as sa

import residents_app.db


# revision identifiers, used by Alembic.
revision = 'd19e2f4a6c21'
down_revision = 'c19a7d3e5b10'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'estate_funding',
        sa.Column('estate_id', sa.Integer(), nullable=False),
        sa.Column('plan_version_id', sa.Integer(), nullable=True),
        sa.Column('owed_fen', sa.BigInteger(), nullable=False),
        sa.Column('counted_fen', sa.BigInteger(), nullable=False),
        sa.Column('paid_fen', sa.BigInteger(), nullable=False),
        sa.Column('owing_units', sa.Integer(), nullable=False),
        sa.Column('refreshed_at', residents_app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['estate_id'], ['estate.id'], name=op.f('fk_estate_funding_estate_id_estate')),
        sa.ForeignKeyConstraint(['plan_version_id'], ['plan_version.id'],
                                name=op.f('fk_estate_funding_plan_version_id_plan_version')),
        sa.PrimaryKeyConstraint('estate_id', name=op.f('pk_estate_funding')),
    )


def downgrade():
    op.drop_table('estate_funding')
