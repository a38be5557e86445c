"""identity failures per client

Issue 14 (security review), finding 1: wrong identity answers on a unit's link are counted per link and client
(client_key: SHA-256 of address, User-Agent and device cookie), and the committee can clear them (cleared_at).
Rows written before count for the address only (client_key '').

Plain ADD COLUMN / DROP COLUMN (SQLite >= 3.35 has both): no batch copy.

Revision ID: 2fe07a520d3d
Revises: 7c2d91a4b3e0
Create Date: 2026-12-01 14:05:00.000000

"""
from alembic import op
import sqlalchemy as sa

import residents_app.db  # noqa: F401  (custom column types)


# revision identifiers, used by Alembic.
revision = '2fe07a520d3d'
down_revision = '7c2d91a4b3e0'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('identity_failure', sa.Column('client_key', sa.String(length=64), server_default='',
                                                nullable=False))
    op.add_column('identity_failure', sa.Column('cleared_at', residents_app.db.UTCDateTime(timezone=True),
                                                nullable=True))


def downgrade():
    op.drop_column('identity_failure', 'cleared_at')
    op.drop_column('identity_failure', 'client_key')
