"""person counters

Stored person counters of person-counted rounds (issue 19 item 1, rounds/person_counters.py):
`roll_entry.person_unit_id` (the person a unit counts under, frozen with the roll: the smallest unit id among the
units with the identical owner set, an ownerless unit its own), `round_person` (per person: units, voted,
agreeing) and `round_person_count` (per round and slot: persons, participated, agree, potential). Opened and
closed person-counted rounds are back-filled from their roll's owner sets and counted ballots, exactly as
`flask rounds recount --rebuild` would (core.thresholds.persons, on the migration's own connection).

Revision ID: d4e8a7c2f915
Revises: c4e8a1d93b57
Create Date: 2026-12-01 18:30:00.000000

"""
import json

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd4e8a7c2f915'
down_revision = 'c4e8a1d93b57'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('roll_entry', schema=None) as batch_op:
        batch_op.add_column(sa.Column('person_unit_id', sa.Integer(), nullable=True))
    op.create_table(
        'round_person',
        sa.Column('round_id', sa.Integer(), nullable=False),
        sa.Column('person_unit_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('units', sa.Integer(), nullable=False),
        sa.Column('voted', sa.Integer(), nullable=False),
        sa.Column('agreeing', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['round_id'], ['round.id'], name=op.f('fk_round_person_round_id_round')),
        sa.PrimaryKeyConstraint('round_id', 'person_unit_id', name=op.f('pk_round_person')),
    )
    op.create_table(
        'round_person_count',
        sa.Column('round_id', sa.Integer(), nullable=False),
        sa.Column('slot', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('persons', sa.Integer(), nullable=False),
        sa.Column('participated', sa.Integer(), nullable=False),
        sa.Column('agree', sa.Integer(), nullable=False),
        sa.Column('potential', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['round_id'], ['round.id'], name=op.f('fk_round_person_count_round_id_round')),
        sa.PrimaryKeyConstraint('round_id', 'slot', name=op.f('pk_round_person_count')),
    )
    _backfill()


def _owner_ids(value):
    if isinstance(value, str):
        value = json.loads(value)
    return tuple(value or ())


def _backfill():
    """core.thresholds.persons over each opened person-counted round's roll (the same grouping, inlined: a
    migration does not import the app)."""
    conn = op.get_bind()
    round_ids = [r for (r,) in conn.execute(sa.text(
        "SELECT id FROM round WHERE counting_mode = 'person' AND status <> 'draft' ORDER BY id"))]
    for round_id in round_ids:
        rows = conn.execute(sa.text(
            "SELECT e.unit_id, e.owner_ids, c.choice FROM roll_entry e LEFT JOIN current_ballot c "
            "ON c.round_id = e.round_id AND c.unit_id = e.unit_id WHERE e.round_id = :r"), {"r": round_id}).all()
        groups = {}
        for unit_id, owner_ids, choice in rows:
            owners = _owner_ids(owner_ids)
            key = frozenset(owners) if owners else ("unit", unit_id)
            groups.setdefault(key, []).append((unit_id, choice))
        keys, persons = [], []
        participated = agree = potential = 0
        for units in groups.values():
            person = min(u for u, _ in units)
            keys.extend({"r": round_id, "u": u, "k": person} for u, _ in units)
            voted = sum(1 for _, c in units if c is not None)
            agreeing = sum(1 for _, c in units if c == 'agree')
            persons.append({"r": round_id, "k": person, "n": len(units), "v": voted, "a": agreeing})
            participated += voted > 0
            agree += agreeing == len(units)
            potential += voted == agreeing
        if keys:
            conn.execute(sa.text("UPDATE roll_entry SET person_unit_id = :k WHERE round_id = :r AND unit_id = :u"),
                         keys)
            conn.execute(sa.text("INSERT INTO round_person (round_id, person_unit_id, units, voted, agreeing) "
                                 "VALUES (:r, :k, :n, :v, :a)"), persons)
        conn.execute(sa.text(
            "INSERT INTO round_person_count (round_id, slot, persons, participated, agree, potential) "
            "VALUES (:r, 0, :n, :p, :a, :q)"),
            {"r": round_id, "n": len(groups), "p": participated, "a": agree, "q": potential})


def downgrade():
    op.drop_table('round_person_count')
    op.drop_table('round_person')
    with op.batch_alter_table('roll_entry', schema=None) as batch_op:
        batch_op.drop_column('person_unit_id')
