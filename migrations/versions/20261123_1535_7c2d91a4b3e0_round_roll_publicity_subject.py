"""round roll as a publicity subject

The frozen roll of a round is published for objections (DOMAIN): publicity.subject_type gains 'round_roll'.

SQLite cannot alter a CHECK constraint, and rebuilding `publicity` the usual way (copy, drop, rename) would,
under `foreign_keys=ON`, cascade-delete its objections and documents (ON DELETE CASCADE). SQLite's documented
procedure for a constraint change that leaves stored rows valid is used instead: rewrite the table's SQL in
sqlite_schema with writable_schema and bump schema_version (https://sqlite.org/lang_altertable.html, "Making
Other Kinds Of Table Schema Changes"). Every existing row satisfies the widened check.

Revision ID: 7c2d91a4b3e0
Revises: 5fd1e8ca68ce
Create Date: 2026-11-23 15:35:00.000000

"""
from alembic import op

import residents_app.db  # noqa: F401  (custom column types)


# revision identifiers, used by Alembic.
revision = '7c2d91a4b3e0'
down_revision = '5fd1e8ca68ce'
branch_labels = None
depends_on = None

NAME = "ck_publicity_subject_known"
OLD = "subject_type in ('round_result', 'plan_version', 'hardship_list')"
NEW = "subject_type in ('round_result', 'plan_version', 'hardship_list', 'round_roll')"


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


def upgrade():
    _swap(OLD, NEW)


def downgrade():
    bind = op.get_bind()
    rows = bind.exec_driver_sql("SELECT count(*) FROM publicity WHERE subject_type = 'round_roll'").scalar_one()
    if rows:
        raise RuntimeError(f"{rows} publicity periods of frozen rolls exist; remove them before downgrading")
    _swap(NEW, OLD)
