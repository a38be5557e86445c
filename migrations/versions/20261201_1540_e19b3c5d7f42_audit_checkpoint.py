"""audit checkpoint

The last point up to which each chain was verified in full (issue 19 item 4): the verification desk walks from
there instead of from genesis on every view. Written by a street office's sign-off.

Revision ID: e19b3c5d7f42
Revises: d19e2f4a6c21
Create Date: 2026-12-01 15:40:00.000000

"""
from alembic import op
import sqlalchemy as sa

import residents_app.db


# revision identifiers, used by Alembic.
revision = 'e19b3c5d7f42'
down_revision = 'd19e2f4a6c21'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'audit_checkpoint',
        sa.Column('chain', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('hash', sa.String(length=64), nullable=False),
        sa.Column('verified_at', residents_app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('verified_by', sa.String(length=120), nullable=False),
        sa.PrimaryKeyConstraint('chain', name=op.f('pk_audit_checkpoint')),
    )


def downgrade():
    op.drop_table('audit_checkpoint')
