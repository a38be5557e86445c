"""The register: summaries (the denominators of every vote), search, edits, roster import and export.

Services flush but never commit; every change is appended to the estate's audit chain in the same
transaction. Time is an argument (`now`), the actor is a string from audit.services.actor_for_user.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from residents_app.audit.services import record
from residents_app.db import hundredths_to_decimal, json_value
from residents_app.errors import Conflict, NotFound, ValidationFailed
from residents_app.extensions import db
from residents_app.registry import headcount, importer
from residents_app.registry.models import (
    UNIT_KINDS,
    Building,
    Estate,
    Owner,
    Ownership,
    StreetOffice,
    Unit,
)


@dataclass(frozen=True)
class Totals:
    unit_count: int = 0
    household_count: int = 0  # one unit is one household
    owner_count: int = 0  # individuals (自然人): distinct owners, one person owning several units counts once
    title_area_m2: Decimal = Decimal("0.00")
    hardship_count: int = 0
    voting_person_count: int = 0  # the voting head-count (表决人数), registry.headcount


@dataclass(frozen=True)
class BuildingSummary:
    building_id: int
    name: str
    totals: Totals
    residential_count: int
    commercial_count: int


@dataclass(frozen=True)
class RegisterSummary:
    """Exact register totals of an estate, or of named buildings of it (a round's scope).

    residential/commercial split the totals by unit kind; their owner counts need not add up to
    owner_count, as one person may own a flat and a shop.
    """

    estate_id: int
    building_ids: tuple[int, ...] | None
    unit_count: int
    household_count: int
    owner_count: int
    title_area_m2: Decimal
    hardship_count: int
    voting_person_count: int
    residential: Totals
    commercial: Totals
    buildings: tuple[BuildingSummary, ...]


def _area_sum(column) -> sa.ColumnElement:
    # Sum the stored hundredths as plain integers (exact on both databases).
    return sa.func.coalesce(sa.func.sum(sa.type_coerce(column, sa.BigInteger)), 0)


def building_names_of(estate_id_column, dialect: str) -> sa.ScalarSelect:
    """A column for a query that holds an estate: its buildings' [id, name] pairs as one JSON array (a page that
    shows an estate and its building names gets ONE row, not a row per building that repeats the estate's and
    everything else's columns)."""
    if dialect == "postgresql":
        pairs = sa.func.json_agg(sa.func.json_build_array(Building.id, Building.name))
    else:
        pairs = sa.func.json_group_array(sa.func.json_array(Building.id, Building.name))
    return sa.select(pairs).where(Building.estate_id == estate_id_column).scalar_subquery()


def building_names(value) -> dict[int, str]:
    """{building id: name} from a building_names_of column (JSON decoded by psycopg; text on SQLite)."""
    return {int(b): name for b, name in json_value(value) or ()}


def register_summary(estate_id: int, building_ids=None) -> RegisterSummary:
    """Units, households, owners as persons and total title area of the estate or of its buildings."""
    buildings_q = sa.select(Building.id, Building.name).where(Building.estate_id == estate_id).order_by(Building.name)
    if building_ids is not None:
        building_ids = tuple(sorted({int(b) for b in building_ids}))
        buildings_q = buildings_q.where(Building.id.in_(building_ids))
    buildings = db.session.execute(buildings_q).all()
    if building_ids is not None and len(buildings) != len(building_ids):
        unknown = sorted(set(building_ids) - {b.id for b in buildings})
        raise ValidationFailed("所选楼栋不属于该小区", code="unknown_building",
                               errors={"building_ids": f"楼栋 {unknown} 不属于该小区"})

    scope = [Unit.estate_id == estate_id]
    if building_ids is not None:
        scope.append(Unit.building_id.in_(building_ids))

    per_building_kind = db.session.execute(
        sa.select(Unit.building_id, Unit.kind, sa.func.count(Unit.id), _area_sum(Unit.title_area_m2),
                  sa.func.count(Unit.id).filter(Unit.is_hardship.is_(True)))
        .where(*scope).group_by(Unit.building_id, Unit.kind)).all()
    owners_q = sa.select(sa.func.count(sa.distinct(Ownership.owner_id))).join(Unit, Unit.id == Ownership.unit_id)
    owners_total = db.session.execute(owners_q.where(*scope)).scalar_one()
    owners_by_kind = {k: n for n, k in db.session.execute(
        owners_q.add_columns(Unit.kind).where(*scope).group_by(Unit.kind)).all()}
    owners_by_building = {b: n for n, b in db.session.execute(
        owners_q.add_columns(Unit.building_id).where(*scope).group_by(Unit.building_id)).all()}

    kind_acc = {k: [0, 0, 0] for k in UNIT_KINDS}  # units, hundredths, hardship
    building_acc: dict[int, dict] = {b.id: {"units": 0, "area": 0, "hardship": 0, "residential": 0,
                                            "commercial": 0} for b in buildings}
    for building_id, kind, count, area, hardship in per_building_kind:
        acc = kind_acc[kind]
        acc[0] += count
        acc[1] += int(area)
        acc[2] += hardship
        b = building_acc[building_id]
        b["units"] += count
        b["area"] += int(area)
        b["hardship"] += hardship
        b[kind] += count

    def totals(units, area, hardship, owners, heads) -> Totals:
        return Totals(unit_count=units, household_count=units, owner_count=owners,
                      title_area_m2=hundredths_to_decimal(area), hardship_count=hardship, voting_person_count=heads)

    heads = headcount.voting_head_counts(estate_id, building_ids)
    by_kind = {k: totals(*kind_acc[k], owners_by_kind.get(k, 0), heads.by_kind.get(k, 0)) for k in UNIT_KINDS}
    unit_count = sum(a[0] for a in kind_acc.values())
    return RegisterSummary(
        estate_id=estate_id,
        building_ids=building_ids,
        unit_count=unit_count,
        household_count=unit_count,
        owner_count=owners_total,
        title_area_m2=hundredths_to_decimal(sum(a[1] for a in kind_acc.values())),
        hardship_count=sum(a[2] for a in kind_acc.values()),
        voting_person_count=heads.total,
        residential=by_kind["residential"],
        commercial=by_kind["commercial"],
        buildings=tuple(
            BuildingSummary(building_id=b.id, name=b.name,
                            totals=totals(building_acc[b.id]["units"], building_acc[b.id]["area"],
                                          building_acc[b.id]["hardship"], owners_by_building.get(b.id, 0),
                                          heads.by_building.get(b.id, 0)),
                            residential_count=building_acc[b.id]["residential"],
                            commercial_count=building_acc[b.id]["commercial"])
            for b in buildings),
    )


def create_street_office(code: str, name: str, district: str = "") -> StreetOffice:
    code, name = code.strip(), name.strip()
    errors = {}
    if not code or len(code) > 40:
        errors["code"] = "街道代码不能为空，最多 40 个字符"
    if not name or len(name) > 100:
        errors["name"] = "街道名称不能为空，最多 100 个字"
    if code and db.session.execute(sa.select(StreetOffice.id).where(StreetOffice.code == code)).first():
        errors["code"] = f"街道代码 {code} 已存在"
    if errors:
        raise ValidationFailed("街道信息有误", errors=errors)
    office = StreetOffice(code=code, name=name, district=district.strip())
    db.session.add(office)
    db.session.flush()
    return office


def create_estate(code: str, name: str, street_code: str, address: str = "", *,
                  actor: str = "system", now: datetime) -> Estate:
    code, name = code.strip(), name.strip()
    errors = {}
    if not code or len(code) > 40:
        errors["code"] = "小区代码不能为空，最多 40 个字符"
    if not name or len(name) > 100:
        errors["name"] = "小区名称不能为空，最多 100 个字"
    if code and db.session.execute(sa.select(Estate.id).where(Estate.code == code)).first():
        errors["code"] = f"小区代码 {code} 已存在"
    office = db.session.execute(
        sa.select(StreetOffice).where(StreetOffice.code == street_code.strip())).scalar_one_or_none()
    if office is None:
        errors["street"] = f"找不到街道代码 {street_code}"
    if errors:
        raise ValidationFailed("小区信息有误", errors=errors)
    estate = Estate(code=code, name=name, address=address.strip(), street_office_id=office.id, created_at=now)
    db.session.add(estate)
    db.session.flush()
    record("register.estate_created", chain=estate.id, actor=actor, now=now, subject_type="estate",
           subject_id=estate.id, data={"code": code, "name": name, "street_office": office.code})
    return estate


def estate_by_code(code: str) -> Estate:
    estate = db.session.execute(sa.select(Estate).where(Estate.code == code)).scalar_one_or_none()
    if estate is None:
        raise NotFound(f"找不到小区代码 {code}")
    return estate


@dataclass(frozen=True)
class UnitPage:
    items: list[Unit]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_units(estate_id: int, q: str = "", *, building_id: int | None = None, page: int = 1,
                 per_page: int = 50) -> UnitPage:
    """Units of an estate matching a building, a unit number ("3幢-402" or "402"), an owner's name or phone."""
    page, per_page = max(1, page), min(max(1, per_page), 500)
    where = [Unit.estate_id == estate_id]
    if building_id is not None:
        where.append(Unit.building_id == building_id)
    q = (q or "").strip()
    if q:
        owner_match = sa.select(Ownership.unit_id).join(Owner, Owner.id == Ownership.owner_id).where(
            sa.or_(Owner.name.ilike(_like(q), escape="\\"), Owner.phone.like(_like(q), escape="\\")))
        conditions = [Unit.number.ilike(_like(q), escape="\\"), Building.name.ilike(_like(q), escape="\\"),
                      Unit.id.in_(owner_match)]
        if "-" in q:
            bname, _, number = q.partition("-")
            conditions.append(sa.and_(Building.name == bname.strip(), Unit.number == number.strip()))
        where.append(sa.or_(*conditions))
    base = sa.select(Unit).join(Building, Building.id == Unit.building_id).where(*where)
    total = db.session.execute(sa.select(sa.func.count()).select_from(base.subquery())).scalar_one()
    items = db.session.execute(
        base.options(selectinload(Unit.building), selectinload(Unit.ownerships).selectinload(Ownership.owner))
        .order_by(Building.name, Unit.number).offset((page - 1) * per_page).limit(per_page)).scalars().all()
    return UnitPage(items=list(items), total=total, page=page, per_page=per_page)


def get_unit(estate_id: int, unit_id: int) -> Unit:
    unit = db.session.get(Unit, unit_id)
    if unit is None or unit.estate_id != estate_id:
        raise NotFound("找不到该房号")
    return unit


def _unit_state(unit: Unit) -> dict:
    return {"title_area_m2": str(unit.title_area_m2), "kind": unit.kind, "is_hardship": unit.is_hardship}


def update_unit(estate_id: int, unit_id: int, *, actor: str, now: datetime, title_area_m2=None,
                kind: str | None = None, is_hardship: bool | None = None) -> Unit:
    """Change a unit's title area, kind or hardship flag; returns the unit. No change, no audit entry."""
    unit = get_unit(estate_id, unit_id)
    errors = {}
    before = _unit_state(unit)
    if title_area_m2 is not None:
        try:
            unit.title_area_m2 = importer.parse_area(title_area_m2)
        except ValueError as exc:
            errors["title_area_m2"] = str(exc)
    if kind is not None:
        if kind not in UNIT_KINDS:
            errors["kind"] = "类型必须是 住宅 或 商铺"
        else:
            unit.kind = kind
    if is_hardship is not None:
        unit.is_hardship = bool(is_hardship)
    if errors:
        raise ValidationFailed("房屋信息有误", errors=errors)
    after = _unit_state(unit)
    changed = {k: {"before": before[k], "after": after[k]} for k in before if before[k] != after[k]}
    if changed:
        db.session.flush()
        record("register.change", chain=estate_id, actor=actor, now=now, subject_type="unit", subject_id=unit.id,
               data={"action": "unit_updated", "unit": unit.label, "changes": changed})
    return unit


def _owner_fields(name: str, phone: str, id_last4: str | None) -> tuple[str, str, str | None]:
    errors = {}
    clean = {}
    for key, fn in (("name", lambda v: importer._name_field(v, "业主姓名", 60)),
                    ("phone", importer.parse_phone), ("id_last4", importer.parse_id_last4)):
        try:
            clean[key] = fn({"name": name, "phone": phone, "id_last4": id_last4}[key])
        except ValueError as exc:
            errors[key] = str(exc)
    if errors:
        raise ValidationFailed("业主信息有误", errors=errors)
    return clean["name"], clean["phone"], clean["id_last4"]


def add_owner(estate_id: int, unit_id: int, *, name: str, phone: str, id_last4: str | None = None,
              actor: str, now: datetime) -> Owner:
    """Add a (co-)owner to a unit. A phone already known in the estate is the same person."""
    unit = get_unit(estate_id, unit_id)
    name, phone, id_last4 = _owner_fields(name, phone, id_last4)
    owner = db.session.execute(
        sa.select(Owner).where(Owner.estate_id == estate_id, Owner.phone == phone)).scalar_one_or_none()
    if owner is not None and owner.name != name:
        raise ValidationFailed("该手机号已登记为另一位业主", code="phone_taken",
                               errors={"phone": f"手机号 {phone} 已登记为「{owner.name}」，同一手机号只能对应一位业主"})
    created = owner is None
    if created:
        owner = Owner(estate_id=estate_id, name=name, phone=phone, id_last4=id_last4)
        db.session.add(owner)
        db.session.flush()
    elif any(o.owner_id == owner.id for o in unit.ownerships):
        raise Conflict(f"{owner.name} 已是 {unit.label} 的业主", code="already_owner")
    elif id_last4 and not owner.id_last4:
        owner.id_last4 = id_last4
    unit.ownerships.append(Ownership(unit_id=unit.id, owner_id=owner.id))
    db.session.flush()
    record("register.change", chain=estate_id, actor=actor, now=now, subject_type="unit", subject_id=unit.id,
           data={"action": "owner_added", "unit": unit.label, "owner_id": owner.id, "owner_name": owner.name,
                 "owner_phone": owner.masked_phone, "new_person": created,
                 "before": {"owners": sorted(o.id for o in unit.owners if o.id != owner.id)},
                 "after": {"owners": sorted(o.id for o in unit.owners)}})
    return owner


def remove_owner(estate_id: int, unit_id: int, owner_id: int, *, actor: str, now: datetime) -> None:
    """Remove a co-owner from a unit. The last owner cannot be removed (a household needs an owner)."""
    unit = get_unit(estate_id, unit_id)
    link = next((o for o in unit.ownerships if o.owner_id == owner_id), None)
    if link is None:
        raise NotFound("该业主不是此房号的业主")
    if len(unit.ownerships) == 1:
        raise Conflict("每户至少保留一名业主：请先添加新业主，再移除原业主", code="last_owner")
    owner = link.owner
    before = sorted(o.owner_id for o in unit.ownerships)
    unit.ownerships.remove(link)
    db.session.flush()
    record("register.change", chain=estate_id, actor=actor, now=now, subject_type="unit", subject_id=unit.id,
           data={"action": "owner_removed", "unit": unit.label, "owner_id": owner.id, "owner_name": owner.name,
                 "owner_phone": owner.masked_phone, "before": {"owners": before},
                 "after": {"owners": sorted(o.owner_id for o in unit.ownerships)}})


def get_owner(estate_id: int, owner_id: int) -> Owner:
    owner = db.session.get(Owner, owner_id)
    if owner is None or owner.estate_id != estate_id:
        raise NotFound("找不到该业主")
    return owner


def update_owner(estate_id: int, owner_id: int, *, name: str, phone: str, id_last4: str | None,
                 actor: str, now: datetime) -> Owner:
    """Correct an owner's name, phone or ID digits (for every unit they own)."""
    owner = get_owner(estate_id, owner_id)
    name, phone, id_last4 = _owner_fields(name, phone, id_last4)
    if phone != owner.phone and db.session.execute(
            sa.select(Owner.id).where(Owner.estate_id == estate_id, Owner.phone == phone)).first():
        raise ValidationFailed("该手机号已登记为另一位业主", code="phone_taken",
                               errors={"phone": f"手机号 {phone} 已登记为另一位业主"})
    before = {"name": owner.name, "phone": owner.masked_phone, "id_last4": owner.id_last4}
    owner.name, owner.phone, owner.id_last4 = name, phone, id_last4
    after = {"name": owner.name, "phone": owner.masked_phone, "id_last4": owner.id_last4}
    if before != after:
        db.session.flush()
        record("register.change", chain=estate_id, actor=actor, now=now, subject_type="owner", subject_id=owner.id,
               data={"action": "owner_updated", "before": before, "after": after})
    return owner


def may_reveal_phone(user, estate) -> bool:
    """Only the estate's own committee calls its owners: not the administrator, never a street office."""
    return bool(user.is_authenticated and user.role == "committee" and user.estate_id == estate.id)


def reveal_phone(estate_id: int, unit_id: int, owner_id: int, *, actor: str, now: datetime) -> str:
    """The full phone number of an owner of a unit, for a committee member who has to call; logged (who, which)."""
    unit = get_unit(estate_id, unit_id)
    owner = next((o for o in unit.owners if o.id == owner_id), None)
    if owner is None:
        raise NotFound("找不到该业主")
    record("register.phone_revealed", chain=estate_id, actor=actor, now=now, subject_type="owner",
           subject_id=owner.id, data={"unit_id": unit.id, "unit": unit.label, "owner_id": owner.id,
                                      "owner": owner.name, "phone": owner.masked_phone})
    return owner.phone
