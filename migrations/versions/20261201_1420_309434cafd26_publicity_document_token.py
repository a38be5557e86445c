"""publicity document token

Public URLs of publicity documents use a random token instead of the sequential id (issue 14, finding 5): the
column is added, every existing document gets its own token, then it becomes NOT NULL and unique. Nothing
references publicity_document, so SQLite's batch copy of the table cascades nowhere.

Revision ID: 309434cafd26
Revises: b7e4d19a2c53
Create Date: 2026-12-01 14:20:00.000000

"""
import secrets

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '309434cafd26'
down_revision = 'b7e4d19a2c53'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('publicity_document', schema=None) as batch_op:
        batch_op.add_column(sa.Column('token', sa.String(length=64), nullable=True))
    # Backfill: one random token per existing document (as models.new_document_token).
    bind = op.get_bind()
    documents = sa.table('publicity_document', sa.column('id', sa.Integer), sa.column('token', sa.String))
    ids = bind.execute(sa.select(documents.c.id).where(documents.c.token.is_(None))).scalars().all()
    for document_id in ids:
        bind.execute(documents.update().where(documents.c.id == document_id)
                     .values(token=secrets.token_urlsafe(24)))
    with op.batch_alter_table('publicity_document', schema=None) as batch_op:
        batch_op.alter_column('token', existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint(batch_op.f('uq_publicity_document_token'), ['token'])


def downgrade():
    with op.batch_alter_table('publicity_document', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_publicity_document_token'), type_='unique')
        batch_op.drop_column('token')
