"""money as estates really pay (issue 15)

Plan items outside the subsidy (funding_mode, fixed_subsidy_fen); funding sources; the dedicated account,
its ledger and imported bank statements; settlement dues; monthly finance reports; the match rule of a street
office (contribution_rule.kind, match_ratio_pct, match_limit_fen); publicity.subject_type gains 'finance_month'
(widened in place like 7c2d91a4b3e0: SQLite cannot alter a CHECK, and rebuilding `publicity` would
cascade-delete its objections and documents).

Revision ID: a15c0ffee015
Revises: 309434cafd26
Create Date: 2026-12-01 14:30:00.000000

"""
import sqlalchemy as sa
from alembic import op

import residents_app.db  # noqa: F401  (custom column types)


NAME = "ck_publicity_subject_known"
OLD = "subject_type in ('round_result', 'plan_version', 'hardship_list', 'round_roll')"
NEW = "subject_type in ('round_result', 'plan_version', 'hardship_list', 'round_roll', 'finance_month')"


def _swap(old: str, new: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.drop_constraint(op.f(NAME), "publicity", type_="check")
        op.create_check_constraint(op.f(NAME), "publicity", new)
        return
    table_sql = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'publicity'").scalar_one()
    if table_sql.count(old) != 1:
        raise RuntimeError(f"publicity: expected the check {old!r} once in its table definition")
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar_one()
    bind.exec_driver_sql("PRAGMA writable_schema = ON")
    bind.exec_driver_sql("UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = 'publicity'",
                         (table_sql.replace(old, new),))
    bind.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    bind.exec_driver_sql("PRAGMA writable_schema = OFF")
    problems = bind.exec_driver_sql("PRAGMA integrity_check").scalars().all()
    if problems != ["ok"]:
        raise RuntimeError(f"publicity: integrity check after the schema change: {problems}")


# revision identifiers, used by Alembic.
revision = 'a15c0ffee015'
down_revision = '309434cafd26'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('plan_item', schema=None) as batch_op:
        batch_op.add_column(sa.Column('funding_mode', sa.String(length=20), server_default='subsidised',
                                      nullable=False))
        batch_op.add_column(sa.Column('fixed_subsidy_fen', sa.BigInteger(), server_default='0', nullable=False))
    op.create_table('bank_statement_line',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('estate_id', sa.Integer(), nullable=False),
    sa.Column('import_id', sa.String(length=64), nullable=False),
    sa.Column('line_no', sa.Integer(), nullable=False),
    sa.Column('booked_on', sa.Date(), nullable=False),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False),
    sa.Column('counterparty', sa.String(length=100), nullable=False),
    sa.Column('memo', sa.String(length=200), nullable=False),
    sa.Column('imported_at', residents_app.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['estate_id'], ['estate.id'], name=op.f('fk_bank_statement_line_estate_id_estate')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bank_statement_line'))
    )
    with op.batch_alter_table('bank_statement_line', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bank_statement_line_estate_id'), ['estate_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_bank_statement_line_import_id'), ['import_id'], unique=False)

    op.create_table('funding_account',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('estate_id', sa.Integer(), nullable=False),
    sa.Column('bank_name', sa.String(length=100), nullable=False),
    sa.Column('account_name', sa.String(length=100), nullable=False),
    sa.Column('account_number', sa.String(length=40), nullable=False),
    sa.Column('opened_on', sa.Date(), nullable=True),
    sa.Column('updated_at', residents_app.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['estate_id'], ['estate.id'], name=op.f('fk_funding_account_estate_id_estate')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_funding_account')),
    sa.UniqueConstraint('estate_id', name=op.f('uq_funding_account_estate_id'))
    )
    op.create_table('finance_report',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('estate_id', sa.Integer(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('month', sa.Integer(), nullable=False),
    sa.Column('reminded_at', residents_app.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('income_fen', sa.BigInteger(), nullable=False),
    sa.Column('spending_fen', sa.BigInteger(), nullable=False),
    sa.Column('lines', sa.JSON(), nullable=False),
    sa.Column('publicity_id', sa.Integer(), nullable=True),
    sa.Column('posted_at', residents_app.db.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint('month >= 1 and month <= 12', name=op.f('ck_finance_report_month_range')),
    sa.ForeignKeyConstraint(['estate_id'], ['estate.id'], name=op.f('fk_finance_report_estate_id_estate')),
    sa.ForeignKeyConstraint(['publicity_id'], ['publicity.id'], name=op.f('fk_finance_report_publicity_id_publicity')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_finance_report')),
    sa.UniqueConstraint('estate_id', 'year', 'month', name=op.f('uq_finance_report_estate_id_year_month'))
    )
    with op.batch_alter_table('finance_report', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_finance_report_estate_id'), ['estate_id'], unique=False)

    op.create_table('funding_source',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('estate_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False),
    sa.Column('provider', sa.String(length=100), nullable=False),
    sa.Column('description', sa.String(length=200), nullable=False),
    sa.Column('item_names', sa.JSON(), nullable=False),
    sa.Column('decision_round_id', sa.Integer(), nullable=True),
    sa.Column('decision_note', sa.Text(), nullable=False),
    sa.Column('received_on', sa.Date(), nullable=True),
    sa.Column('evidence_filename', sa.String(length=200), nullable=False),
    sa.Column('evidence_content_type', sa.String(length=60), nullable=False),
    sa.Column('evidence_sha256', sa.String(length=64), nullable=False),
    sa.Column('evidence_data', sa.LargeBinary(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', residents_app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('withdrawn_at', residents_app.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('withdrawn_reason', sa.String(length=200), nullable=False),
    sa.CheckConstraint('amount_fen > 0', name=op.f('ck_funding_source_amount_positive')),
    sa.ForeignKeyConstraint(['created_by_id'], ['app_user.id'], name=op.f('fk_funding_source_created_by_id_app_user')),
    sa.ForeignKeyConstraint(['decision_round_id'], ['round.id'], name=op.f('fk_funding_source_decision_round_id_round')),
    sa.ForeignKeyConstraint(['estate_id'], ['estate.id'], name=op.f('fk_funding_source_estate_id_estate')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_funding_source'))
    )
    with op.batch_alter_table('funding_source', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_funding_source_estate_id'), ['estate_id'], unique=False)

    op.create_table('account_entry',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('estate_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False),
    sa.Column('booked_on', sa.Date(), nullable=False),
    sa.Column('counterparty', sa.String(length=100), nullable=False),
    sa.Column('memo', sa.String(length=200), nullable=False),
    sa.Column('reference', sa.String(length=100), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=True),
    sa.Column('payment_id', sa.Integer(), nullable=True),
    sa.Column('source_id', sa.Integer(), nullable=True),
    sa.Column('reverses_id', sa.Integer(), nullable=True),
    sa.Column('entered_by_id', sa.Integer(), nullable=True),
    sa.Column('entered_at', residents_app.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount_fen <> 0', name=op.f('ck_account_entry_amount_nonzero')),
    sa.ForeignKeyConstraint(['entered_by_id'], ['app_user.id'], name=op.f('fk_account_entry_entered_by_id_app_user')),
    sa.ForeignKeyConstraint(['estate_id'], ['estate.id'], name=op.f('fk_account_entry_estate_id_estate')),
    sa.ForeignKeyConstraint(['payment_id'], ['payment.id'], name=op.f('fk_account_entry_payment_id_payment')),
    sa.ForeignKeyConstraint(['reverses_id'], ['account_entry.id'], name=op.f('fk_account_entry_reverses_id_account_entry')),
    sa.ForeignKeyConstraint(['source_id'], ['funding_source.id'], name=op.f('fk_account_entry_source_id_funding_source')),
    sa.ForeignKeyConstraint(['unit_id'], ['unit.id'], name=op.f('fk_account_entry_unit_id_unit')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_account_entry')),
    sa.UniqueConstraint('payment_id', name=op.f('uq_account_entry_payment_id')),
    sa.UniqueConstraint('reverses_id', name=op.f('uq_account_entry_reverses_id'))
    )
    with op.batch_alter_table('account_entry', schema=None) as batch_op:
        batch_op.create_index('ix_account_entry_estate_booked', ['estate_id', 'booked_on'], unique=False)

    op.create_table('settlement_due',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('settlement_id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False),
    sa.Column('created_at', residents_app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('closed_at', residents_app.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('closed_by_id', sa.Integer(), nullable=True),
    sa.Column('payment_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("kind in ('refund', 'top_up')", name=op.f('ck_settlement_due_kind_known')),
    sa.CheckConstraint('amount_fen > 0', name=op.f('ck_settlement_due_amount_positive')),
    sa.ForeignKeyConstraint(['closed_by_id'], ['app_user.id'], name=op.f('fk_settlement_due_closed_by_id_app_user')),
    sa.ForeignKeyConstraint(['payment_id'], ['payment.id'], name=op.f('fk_settlement_due_payment_id_payment')),
    sa.ForeignKeyConstraint(['settlement_id'], ['settlement.id'], name=op.f('fk_settlement_due_settlement_id_settlement')),
    sa.ForeignKeyConstraint(['unit_id'], ['unit.id'], name=op.f('fk_settlement_due_unit_id_unit')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_settlement_due')),
    sa.UniqueConstraint('settlement_id', 'unit_id', name=op.f('uq_settlement_due_settlement_id_unit_id'))
    )
    with op.batch_alter_table('settlement_due', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_settlement_due_settlement_id'), ['settlement_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_settlement_due_unit_id'), ['unit_id'], unique=False)

    with op.batch_alter_table('contribution_rule', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=20), server_default='category', nullable=False))
        batch_op.add_column(sa.Column('match_ratio_pct', sa.Integer(), server_default='100', nullable=False))
        batch_op.add_column(sa.Column('match_limit_fen', sa.BigInteger(), server_default='0', nullable=False))
    _swap(OLD, NEW)


def downgrade():
    bind = op.get_bind()
    rows = bind.exec_driver_sql("SELECT count(*) FROM publicity WHERE subject_type = 'finance_month'").scalar_one()
    if rows:
        raise RuntimeError(f"{rows} finance publicity periods exist; remove them before downgrading")
    _swap(NEW, OLD)
    with op.batch_alter_table('contribution_rule', schema=None) as batch_op:
        batch_op.drop_column('match_limit_fen')
        batch_op.drop_column('match_ratio_pct')
        batch_op.drop_column('kind')

    with op.batch_alter_table('settlement_due', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_settlement_due_unit_id'))
        batch_op.drop_index(batch_op.f('ix_settlement_due_settlement_id'))

    op.drop_table('settlement_due')
    with op.batch_alter_table('account_entry', schema=None) as batch_op:
        batch_op.drop_index('ix_account_entry_estate_booked')

    op.drop_table('account_entry')
    with op.batch_alter_table('funding_source', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_funding_source_estate_id'))

    op.drop_table('funding_source')
    with op.batch_alter_table('finance_report', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_finance_report_estate_id'))

    op.drop_table('finance_report')
    op.drop_table('funding_account')
    with op.batch_alter_table('bank_statement_line', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bank_statement_line_import_id'))
        batch_op.drop_index(batch_op.f('ix_bank_statement_line_estate_id'))

    op.drop_table('bank_statement_line')
    with op.batch_alter_table('plan_item', schema=None) as batch_op:
        batch_op.drop_column('fixed_subsidy_fen')
        batch_op.drop_column('funding_mode')
