"""bureau role

A city or district housing bureau (区住建局, issue 19 item 3): a read-only account over every street office of
one district (app_user.district matches street_office.district).

Revision ID: b7d2c9e4a1f3
Revises: f16a2b3c4d5e
Create Date: 2026-12-01 17:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b7d2c9e4a1f3'
down_revision = 'f16a2b3c4d5e'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('app_user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('district', sa.String(length=100), server_default='', nullable=False))
        batch_op.drop_constraint(op.f('ck_app_user_role_known'), type_='check')
        batch_op.create_check_constraint(op.f('ck_app_user_role_known'),
                                         "role in ('admin', 'street', 'committee', 'party', 'bureau')")


def downgrade():
    op.execute("DELETE FROM app_user WHERE role = 'bureau'")
    with op.batch_alter_table('app_user', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_app_user_role_known'), type_='check')
        batch_op.create_check_constraint(op.f('ck_app_user_role_known'),
                                         "role in ('admin', 'street', 'committee', 'party')")
        batch_op.drop_column('district')
