"""session version and account lock

Issue 14 (security review), findings 3 and 7: app_user.session_version ends every session of an account (logout,
new password, deactivation: a copied session cookie stops working); login_failure counts failed sign-ins per
username, to lock the account after repeated failures.

Plain ADD COLUMN / DROP COLUMN (SQLite >= 3.35 has both): no batch copy of app_user, which other tables reference.

Revision ID: f5384e9654b3
Revises: 2fe07a520d3d
Create Date: 2026-12-01 14:09:24.325709

"""
from alembic import op
import sqlalchemy as sa

import residents_app.db  # noqa: F401  (custom column types)


# revision identifiers, used by Alembic.
revision = 'f5384e9654b3'
down_revision = '2fe07a520d3d'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('login_failure',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=60), nullable=False),
    sa.Column('at', residents_app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('remote_addr', sa.String(length=64), nullable=False),
    sa.Column('cleared_at', residents_app.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_failure'))
    )
    op.create_index(op.f('ix_login_failure_username'), 'login_failure', ['username'], unique=False)
    op.add_column('app_user', sa.Column('session_version', sa.Integer(), server_default='0', nullable=False))


def downgrade():
    op.drop_column('app_user', 'session_version')
    op.drop_index(op.f('ix_login_failure_username'), table_name='login_failure')
    op.drop_table('login_failure')
