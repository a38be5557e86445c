"""Two estates in two districts, a resident of estate A, and one row of every table for estate B.

The rows of estate B are built generically from the metadata (one per table, foreign keys pointing
at B's rows), so that the authorisation matrix covers tables and routes added later without edits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from residents_app.auth.resident import SESSION_KEY, hash_token, new_token
from residents_app.registry.models import Owner, Unit, UnitLink

# Rows the factory builds; everything else is seeded generically.
BUILT = ("street_office", "estate", "building", "unit", "owner", "ownership", "app_user")
# Tables that belong to no estate (system-wide); never seeded.
SYSTEM = ("audit_event", "alembic_version")
_IN_LIST = re.compile(r"\(?\s*(\w+)\s+in\s*\(([^)]*)\)", re.IGNORECASE)


@dataclass
class World:
    estate_a: object
    estate_b: object
    office_a: object
    office_b: object
    committee_a: object
    committee_b: object
    street_a: object
    resident_unit: object
    resident_owner: object
    resident_link: object
    ids: dict[str, list[int]] = field(default_factory=dict)  # table -> ids of B's rows
    unseeded: dict[str, str] = field(default_factory=dict)  # table -> why it could not be seeded
    markers: list[str] = field(default_factory=list)  # strings that only B's data contains


def _check_choices(table: sa.Table) -> dict[str, str]:
    """First allowed literal for columns constrained by CHECK (col in ('a', 'b'))."""
    choices: dict[str, str] = {}
    for constraint in table.constraints:
        if isinstance(constraint, sa.CheckConstraint):
            for m in _IN_LIST.finditer(str(constraint.sqltext)):
                literals = re.findall(r"'([^']*)'", m.group(2))
                if literals:
                    choices.setdefault(m.group(1), literals[0])
    return choices


def _value_for(column: sa.Column, n: int, choices: dict[str, str], now: datetime):
    if column.name in choices:
        return choices[column.name]
    t = column.type
    if isinstance(t, sa.Enum) and t.enums:
        return t.enums[0]
    python_type = None
    try:
        python_type = t.python_type
    except NotImplementedError:
        impl = getattr(t, "impl", None)
        try:
            python_type = impl.python_type if impl is not None else None
        except (NotImplementedError, AttributeError):
            python_type = None
    type_name = type(t).__name__
    if type_name == "Hundredths":
        return Decimal("10.00")
    if type_name == "UTCDateTime" or python_type is datetime:
        return now + timedelta(minutes=n)
    if python_type is date:
        return date(2026, 9, 1) + timedelta(days=n)
    if python_type is bool:
        return False
    if python_type is int:
        return 1
    if python_type is Decimal:
        return Decimal("1.00")
    if python_type in (dict,):
        return {}
    if python_type in (list,):
        return []
    if python_type is bytes:
        return b"x"
    if isinstance(t, sa.JSON):
        return {}
    length = getattr(t, "length", None) or 40
    return ("乙x" + str(n))[:length]


def seed_estate_rows(session, estate_b, office_b, user_b, now) -> tuple[dict[str, list[int]], dict[str, str]]:
    from residents_app.extensions import db

    ids: dict[str, list[int]] = {
        "street_office": [office_b.id],
        "estate": [estate_b.id],
        "app_user": [user_b.id],
    }
    ids["building"] = [b.id for b in estate_b.buildings]
    units = session.execute(sa.select(Unit.id).where(Unit.estate_id == estate_b.id).order_by(Unit.id)).scalars()
    ids["unit"] = list(units)
    owners = session.execute(sa.select(Owner.id).where(Owner.estate_id == estate_b.id).order_by(Owner.id)).scalars()
    ids["owner"] = list(owners)
    unseeded: dict[str, str] = {}
    for table in db.metadata.sorted_tables:
        if table.name in BUILT or table.name in SYSTEM:
            continue
        fks = [c for c in table.columns if c.foreign_keys]
        if not fks:
            unseeded[table.name] = "no foreign key: not owned by an estate"
            continue
        values = {}
        choices = _check_choices(table)
        missing = None
        for n, column in enumerate(table.columns):
            if column.foreign_keys:
                target = next(iter(column.foreign_keys)).column.table.name
                if ids.get(target):
                    values[column.name] = ids[target][0]
                elif not column.nullable:
                    missing = f"needs a row of {target}"
                    break
                continue
            if column.primary_key and column.autoincrement in (True, "auto") and isinstance(column.type, sa.Integer):
                continue
            if column.nullable or column.default is not None or column.server_default is not None:
                continue
            values[column.name] = _value_for(column, n, choices, now)
        if missing:
            unseeded[table.name] = missing
            continue
        try:
            with session.begin_nested():
                result = session.execute(table.insert().values(**values))
            pk = result.inserted_primary_key
            if pk and len(pk) == 1 and isinstance(pk[0], int):
                ids.setdefault(table.name, []).append(pk[0])
            else:
                ids.setdefault(table.name, [])
        except sa.exc.SQLAlchemyError as exc:
            unseeded[table.name] = type(exc).__name__ + ": " + str(exc.orig if hasattr(exc, "orig") else exc)[:120]
    return ids, unseeded


@pytest.fixture
def world(db, factory, now) -> World:
    office_a = factory.street_office(name="甲街道")
    office_b = factory.street_office(name="乙街道标记")
    estate_a = factory.estate(office=office_a, name="甲小区", buildings={"1幢": [("101", "88.50"), ("102", "70.00")]})
    estate_b = factory.estate(office=office_b, name="乙小区标记",
                              buildings={"9幢": [("9901", "99.10"), ("9902", "99.20")]})
    committee_b = factory.user("committee", estate=estate_b)
    ids, unseeded = seed_estate_rows(db.session, estate_b, office_b, committee_b, now)
    resident_unit = db.session.execute(
        sa.select(Unit).where(Unit.estate_id == estate_a.id).order_by(Unit.id)).scalars().first()
    resident_owner = resident_unit.owners[0]
    link = UnitLink(unit_id=resident_unit.id, token_hash=hash_token(new_token()))
    db.session.add(link)
    db.session.flush()
    owners_b = db.session.execute(sa.select(Owner).where(Owner.estate_id == estate_b.id)).scalars().all()
    for i, owner in enumerate(owners_b, start=1):
        owner.name = f"乙业主标记{i}"
    db.session.flush()
    markers = [estate_b.name, office_b.name] + [o.name for o in owners_b] + [o.phone for o in owners_b]
    world = World(
        estate_a=estate_a, estate_b=estate_b, office_a=office_a, office_b=office_b,
        committee_a=factory.user("committee", estate=estate_a),
        committee_b=committee_b,
        street_a=factory.user("street", office=office_a),
        resident_unit=resident_unit, resident_owner=resident_owner, resident_link=link,
        ids=ids, unseeded=unseeded, markers=markers,
    )
    # Commit (to the test's savepoint; the db fixture still rolls everything back): a refused
    # request rolls the app's session back, which would otherwise take the seeded rows with it.
    db.session.commit()
    return world


def sign_in_resident(client, world: World) -> None:
    with client.session_transaction() as sess:
        sess[SESSION_KEY] = {"unit_id": world.resident_unit.id, "owner_id": world.resident_owner.id,
                             "link_id": world.resident_link.id}


@pytest.fixture
def utc_now():
    return datetime(2026, 9, 1, 2, 0, tzinfo=UTC)
