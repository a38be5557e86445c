"""round matter item

A general question names the Civil Code art. 278 para. 1 item (1-9) it decides; that item's rule applies
(other kinds take their item from the kind).

Revision ID: b7e4d19a2c53
Revises: f5384e9654b3
Create Date: 2026-12-01 14:30:00.000000

"""
import sqlalchemy as sa
from alembic import op

import residents_app.db  # noqa: F401  (custom column types)


# revision identifiers, used by Alembic.
revision = 'b7e4d19a2c53'
down_revision = 'f5384e9654b3'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('round', schema=None) as batch_op:
        batch_op.add_column(sa.Column('matter_item', sa.Integer(), nullable=True))


def downgrade():
    with op.batch_alter_table('round', schema=None) as batch_op:
        batch_op.drop_column('matter_item')
