"""money as estates really pay (issue 15)

Plan items outside the subsidy (funding_mode, fixed_subsidy_fen).

Revision ID: a15c0ffee015
Revises: 7c2d91a4b3e0
Create Date: 2026-12-01 14:30:00.000000

"""
import sqlalchemy as sa
from alembic import op

import residents_app.db  # noqa: F401  (custom column types)


# revision identifiers, used by Alembic.
revision = 'a15c0ffee015'
down_revision = '7c2d91a4b3e0'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('plan_item', schema=None) as batch_op:
        batch_op.add_column(sa.Column('funding_mode', sa.String(length=20), server_default='subsidised',
                                      nullable=False))
        batch_op.add_column(sa.Column('fixed_subsidy_fen', sa.BigInteger(), server_default='0', nullable=False))


def downgrade():
    with op.batch_alter_table('plan_item', schema=None) as batch_op:
        batch_op.drop_column('fixed_subsidy_fen')
        batch_op.drop_column('funding_mode')
