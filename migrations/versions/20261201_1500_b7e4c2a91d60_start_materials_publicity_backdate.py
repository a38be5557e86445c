"""start materials (⑤ other uploads) and the reason of a backdated publicity

start_material holds the committee's uploads for the start application; publicity.backdate_reason keeps why a
notice was entered after the day it was posted (issue 13: no backdating, flagged on the verification desk), in
its own table publicity_backdate so that the publicity table itself is left as it is.

Revision ID: b7e4c2a91d60
Revises: a15c0ffee015
Create Date: 2026-12-01 15:00:00.000000

"""
from alembic import op
import sqlalchemy as sa

import residents_app.db  # noqa: F401  (custom column types)


# revision identifiers, used by Alembic.
revision = 'b7e4c2a91d60'
down_revision = 'a15c0ffee015'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('start_material',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('estate_id', sa.Integer(), nullable=False),
    sa.Column('plan_version_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('content_type', sa.String(length=60), nullable=False),
    sa.Column('size_bytes', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('uploaded_by_id', sa.Integer(), nullable=True),
    sa.Column('uploaded_at', residents_app.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['estate_id'], ['estate.id'], name=op.f('fk_start_material_estate_id_estate')),
    sa.ForeignKeyConstraint(['plan_version_id'], ['plan_version.id'], name=op.f('fk_start_material_plan_version_id_plan_version')),
    sa.ForeignKeyConstraint(['uploaded_by_id'], ['app_user.id'], name=op.f('fk_start_material_uploaded_by_id_app_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_start_material'))
    )
    with op.batch_alter_table('start_material', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_start_material_estate_id'), ['estate_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_start_material_plan_version_id'), ['plan_version_id'], unique=False)

    op.create_table('publicity_backdate',
    sa.Column('publicity_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.ForeignKeyConstraint(['publicity_id'], ['publicity.id'], name=op.f('fk_publicity_backdate_publicity_id_publicity'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('publicity_id', name=op.f('pk_publicity_backdate'))
    )


def downgrade():
    op.drop_table('publicity_backdate')
    with op.batch_alter_table('start_material', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_start_material_plan_version_id'))
        batch_op.drop_index(batch_op.f('ix_start_material_estate_id'))

    op.drop_table('start_material')
