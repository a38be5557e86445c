"""construction after the start: parties, rectification items, changes, progress, complaints, supervisors

The project's parties (and the role "party" for their accounts limited to one project), rectification items
shared with the joint acceptance, change requests, progress reports, complaints and questions, resident
supervisors and their inspections, the photos of all of them, and each project's construction settings (issue 16).

Revision ID: 1aec4f6be9c1
Revises: b17d4a2c6e31
Create Date: 2026-12-01 15:07:20.273467

"""
from alembic import op
import sqlalchemy as sa

import residents_app.db  # noqa: F401  (custom column types)


# revision identifiers, used by Alembic.
revision = '1aec4f6be9c1'
down_revision = 'b17d4a2c6e31'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('app_user', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_app_user_role_known'), type_='check')
        batch_op.create_check_constraint(op.f('ck_app_user_role_known'), "role in ('admin', 'street', 'committee', 'party')")

    op.create_table('construction_photo',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('estate_id', sa.Integer(), nullable=False),
    sa.Column('subject_type', sa.String(length=12), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('content_type', sa.String(length=30), nullable=False),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('height', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', residents_app.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("subject_type in ('progress', 'complaint', 'inspection')", name=op.f('ck_construction_photo_subject_known')),
    sa.ForeignKeyConstraint(['estate_id'], ['estate.id'], name=op.f('fk_construction_photo_estate_id_estate')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_construction_photo'))
    )
    with op.batch_alter_table('construction_photo', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_construction_photo_estate_id'), ['estate_id'], unique=False)
        batch_op.create_index('ix_construction_photo_subject', ['subject_type', 'subject_id'], unique=False)

    op.create_table('change_request',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('estate_id', sa.Integer(), nullable=False),
    sa.Column('start_application_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('cost_effect', sa.JSON(), nullable=False),
    sa.Column('moves_residents', sa.Boolean(), nullable=False),
    sa.Column('explanation_filename', sa.String(length=200), nullable=False),
    sa.Column('explanation_type', sa.String(length=60), nullable=False),
    sa.Column('explanation_sha256', sa.String(length=64), nullable=False),
    sa.Column('explanation', sa.LargeBinary(), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('submitted_at', residents_app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('submitted_by_id', sa.Integer(), nullable=True),
    sa.Column('committee_approved_at', residents_app.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('committee_approved_by_id', sa.Integer(), nullable=True),
    sa.Column('street_approved_at', residents_app.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('street_approved_by_id', sa.Integer(), nullable=True),
    sa.Column('decided_at', residents_app.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('decision_note', sa.Text(), nullable=False),
    sa.Column('new_plan_version_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("state in ('submitted', 'refused', 'approved', 'replanned')", name=op.f('ck_change_request_state_known')),
    sa.ForeignKeyConstraint(['committee_approved_by_id'], ['app_user.id'], name=op.f('fk_change_request_committee_approved_by_id_app_user')),
    sa.ForeignKeyConstraint(['estate_id'], ['estate.id'], name=op.f('fk_change_request_estate_id_estate')),
    sa.ForeignKeyConstraint(['new_plan_version_id'], ['plan_version.id'], name=op.f('fk_change_request_new_plan_version_id_plan_version')),
    sa.ForeignKeyConstraint(['start_application_id'], ['start_application.id'], name=op.f('fk_change_request_start_application_id_start_application')),
    sa.ForeignKeyConstraint(['street_approved_by_id'], ['app_user.id'], name=op.f('fk_change_request_street_approved_by_id_app_user')),
    sa.ForeignKeyConstraint(['submitted_by_id'], ['app_user.id'], name=op.f('fk_change_request_submitted_by_id_app_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_change_request')),
    sa.UniqueConstraint('start_application_id', 'number', name='uq_change_request_number')
    )
    with op.batch_alter_table('change_request', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_change_request_estate_id'), ['estate_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_change_request_start_application_id'), ['start_application_id'], unique=False)

    op.create_table('complaint',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('estate_id', sa.Integer(), nullable=False),
    sa.Column('start_application_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=30), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('filed_at', residents_app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('reply', sa.Text(), nullable=False),
    sa.Column('replied_at', residents_app.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('replied_by_id', sa.Integer(), nullable=True),
    sa.Column('flagged_at', residents_app.db.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("kind in ('complaint', 'question')", name=op.f('ck_complaint_kind_known')),
    sa.CheckConstraint("state in ('open', 'answered')", name=op.f('ck_complaint_state_known')),
    sa.ForeignKeyConstraint(['estate_id'], ['estate.id'], name=op.f('fk_complaint_estate_id_estate')),
    sa.ForeignKeyConstraint(['owner_id'], ['owner.id'], name=op.f('fk_complaint_owner_id_owner')),
    sa.ForeignKeyConstraint(['replied_by_id'], ['app_user.id'], name=op.f('fk_complaint_replied_by_id_app_user')),
    sa.ForeignKeyConstraint(['start_application_id'], ['start_application.id'], name=op.f('fk_complaint_start_application_id_start_application')),
    sa.ForeignKeyConstraint(['unit_id'], ['unit.id'], name=op.f('fk_complaint_unit_id_unit')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_complaint')),
    sa.UniqueConstraint('estate_id', 'number', name='uq_complaint_number')
    )
    with op.batch_alter_table('complaint', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_complaint_estate_id'), ['estate_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_complaint_start_application_id'), ['start_application_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_complaint_unit_id'), ['unit_id'], unique=False)

    op.create_table('construction_party',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('estate_id', sa.Integer(), nullable=False),
    sa.Column('start_application_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('contact_name', sa.String(length=60), nullable=False),
    sa.Column('contact_phone', sa.String(length=30), nullable=False),
    sa.Column('is_site_contact', sa.Boolean(), nullable=False),
    sa.Column('sign_mode', sa.String(length=10), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('created_at', residents_app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("kind in ('builder', 'designer', 'contractor', 'supervisor', 'utility', 'community', 'street', 'committee')", name=op.f('ck_construction_party_kind_known')),
    sa.CheckConstraint("sign_mode in ('account', 'paper')", name=op.f('ck_construction_party_sign_mode_known')),
    sa.ForeignKeyConstraint(['created_by_id'], ['app_user.id'], name=op.f('fk_construction_party_created_by_id_app_user')),
    sa.ForeignKeyConstraint(['estate_id'], ['estate.id'], name=op.f('fk_construction_party_estate_id_estate')),
    sa.ForeignKeyConstraint(['start_application_id'], ['start_application.id'], name=op.f('fk_construction_party_start_application_id_start_application')),
    sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], name=op.f('fk_construction_party_user_id_app_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_construction_party')),
    sa.UniqueConstraint('user_id', name=op.f('uq_construction_party_user_id'))
    )
    with op.batch_alter_table('construction_party', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_construction_party_estate_id'), ['estate_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_construction_party_start_application_id'), ['start_application_id'], unique=False)

    op.create_table('construction_setup',
    sa.Column('start_application_id', sa.Integer(), nullable=False),
    sa.Column('estate_id', sa.Integer(), nullable=False),
    sa.Column('report_interval_days', sa.Integer(), nullable=False),
    sa.Column('complaint_answer_working_days', sa.Integer(), nullable=False),
    sa.Column('reminded_for', sa.Date(), nullable=True),
    sa.ForeignKeyConstraint(['estate_id'], ['estate.id'], name=op.f('fk_construction_setup_estate_id_estate')),
    sa.ForeignKeyConstraint(['start_application_id'], ['start_application.id'], name=op.f('fk_construction_setup_start_application_id_start_application')),
    sa.PrimaryKeyConstraint('start_application_id', name=op.f('pk_construction_setup'))
    )
    with op.batch_alter_table('construction_setup', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_construction_setup_estate_id'), ['estate_id'], unique=False)

    op.create_table('progress_report',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('estate_id', sa.Integer(), nullable=False),
    sa.Column('start_application_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('percent_done', sa.Integer(), nullable=False),
    sa.Column('posted_at', residents_app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('posted_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['estate_id'], ['estate.id'], name=op.f('fk_progress_report_estate_id_estate')),
    sa.ForeignKeyConstraint(['posted_by_id'], ['app_user.id'], name=op.f('fk_progress_report_posted_by_id_app_user')),
    sa.ForeignKeyConstraint(['start_application_id'], ['start_application.id'], name=op.f('fk_progress_report_start_application_id_start_application')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_progress_report'))
    )
    with op.batch_alter_table('progress_report', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_progress_report_estate_id'), ['estate_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_progress_report_start_application_id'), ['start_application_id'], unique=False)

    op.create_table('resident_supervisor',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('estate_id', sa.Integer(), nullable=False),
    sa.Column('start_application_id', sa.Integer(), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('appointed_at', residents_app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('appointed_by_id', sa.Integer(), nullable=True),
    sa.Column('ended_at', residents_app.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['appointed_by_id'], ['app_user.id'], name=op.f('fk_resident_supervisor_appointed_by_id_app_user')),
    sa.ForeignKeyConstraint(['estate_id'], ['estate.id'], name=op.f('fk_resident_supervisor_estate_id_estate')),
    sa.ForeignKeyConstraint(['owner_id'], ['owner.id'], name=op.f('fk_resident_supervisor_owner_id_owner')),
    sa.ForeignKeyConstraint(['start_application_id'], ['start_application.id'], name=op.f('fk_resident_supervisor_start_application_id_start_application')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_resident_supervisor'))
    )
    with op.batch_alter_table('resident_supervisor', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_resident_supervisor_estate_id'), ['estate_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_resident_supervisor_start_application_id'), ['start_application_id'], unique=False)

    op.create_table('rectification_item',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('estate_id', sa.Integer(), nullable=False),
    sa.Column('start_application_id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('source_id', sa.Integer(), nullable=True),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('owner_party_id', sa.Integer(), nullable=True),
    sa.Column('due_on', sa.Date(), nullable=True),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('created_at', residents_app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('closed_at', residents_app.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('closed_by_id', sa.Integer(), nullable=True),
    sa.Column('closing_note', sa.Text(), nullable=False),
    sa.CheckConstraint("source in ('inspection', 'acceptance', 'complaint', 'other')", name=op.f('ck_rectification_item_source_known')),
    sa.CheckConstraint("state in ('open', 'closed')", name=op.f('ck_rectification_item_state_known')),
    sa.ForeignKeyConstraint(['closed_by_id'], ['app_user.id'], name=op.f('fk_rectification_item_closed_by_id_app_user')),
    sa.ForeignKeyConstraint(['created_by_id'], ['app_user.id'], name=op.f('fk_rectification_item_created_by_id_app_user')),
    sa.ForeignKeyConstraint(['estate_id'], ['estate.id'], name=op.f('fk_rectification_item_estate_id_estate')),
    sa.ForeignKeyConstraint(['owner_party_id'], ['construction_party.id'], name=op.f('fk_rectification_item_owner_party_id_construction_party')),
    sa.ForeignKeyConstraint(['start_application_id'], ['start_application.id'], name=op.f('fk_rectification_item_start_application_id_start_application')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rectification_item'))
    )
    with op.batch_alter_table('rectification_item', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rectification_item_estate_id'), ['estate_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_rectification_item_start_application_id'), ['start_application_id'], unique=False)

    op.create_table('inspection',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('estate_id', sa.Integer(), nullable=False),
    sa.Column('start_application_id', sa.Integer(), nullable=False),
    sa.Column('supervisor_id', sa.Integer(), nullable=False),
    sa.Column('inspected_on', sa.Date(), nullable=False),
    sa.Column('place', sa.String(length=200), nullable=False),
    sa.Column('finding', sa.Text(), nullable=False),
    sa.Column('has_problem', sa.Boolean(), nullable=False),
    sa.Column('recorded_at', residents_app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('rectification_item_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['estate_id'], ['estate.id'], name=op.f('fk_inspection_estate_id_estate')),
    sa.ForeignKeyConstraint(['rectification_item_id'], ['rectification_item.id'], name=op.f('fk_inspection_rectification_item_id_rectification_item')),
    sa.ForeignKeyConstraint(['start_application_id'], ['start_application.id'], name=op.f('fk_inspection_start_application_id_start_application')),
    sa.ForeignKeyConstraint(['supervisor_id'], ['resident_supervisor.id'], name=op.f('fk_inspection_supervisor_id_resident_supervisor')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inspection'))
    )
    with op.batch_alter_table('inspection', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inspection_estate_id'), ['estate_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_inspection_start_application_id'), ['start_application_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_inspection_supervisor_id'), ['supervisor_id'], unique=False)



def downgrade():
    with op.batch_alter_table('inspection', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inspection_supervisor_id'))
        batch_op.drop_index(batch_op.f('ix_inspection_start_application_id'))
        batch_op.drop_index(batch_op.f('ix_inspection_estate_id'))

    op.drop_table('inspection')
    with op.batch_alter_table('rectification_item', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rectification_item_start_application_id'))
        batch_op.drop_index(batch_op.f('ix_rectification_item_estate_id'))

    op.drop_table('rectification_item')
    with op.batch_alter_table('resident_supervisor', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_resident_supervisor_start_application_id'))
        batch_op.drop_index(batch_op.f('ix_resident_supervisor_estate_id'))

    op.drop_table('resident_supervisor')
    with op.batch_alter_table('progress_report', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_progress_report_start_application_id'))
        batch_op.drop_index(batch_op.f('ix_progress_report_estate_id'))

    op.drop_table('progress_report')
    with op.batch_alter_table('construction_setup', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_construction_setup_estate_id'))

    op.drop_table('construction_setup')
    with op.batch_alter_table('construction_party', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_construction_party_start_application_id'))
        batch_op.drop_index(batch_op.f('ix_construction_party_estate_id'))

    op.drop_table('construction_party')
    with op.batch_alter_table('complaint', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_complaint_unit_id'))
        batch_op.drop_index(batch_op.f('ix_complaint_start_application_id'))
        batch_op.drop_index(batch_op.f('ix_complaint_estate_id'))

    op.drop_table('complaint')
    with op.batch_alter_table('change_request', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_change_request_start_application_id'))
        batch_op.drop_index(batch_op.f('ix_change_request_estate_id'))

    op.drop_table('change_request')
    with op.batch_alter_table('construction_photo', schema=None) as batch_op:
        batch_op.drop_index('ix_construction_photo_subject')
        batch_op.drop_index(batch_op.f('ix_construction_photo_estate_id'))

    op.drop_table('construction_photo')
    with op.batch_alter_table('app_user', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_app_user_role_known'), type_='check')
        batch_op.create_check_constraint(op.f('ck_app_user_role_known'), "role in ('admin', 'street', 'committee')")
