"""The committee's roster (花名册): import from CSV/XLSX (preview, then apply in one transaction) and export.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa

from residents_app.audit.services import record
from residents_app.db import hundredths_to_decimal
from residents_app.errors import ValidationFailed
from residents_app.exports import appended_row
from residents_app.extensions import db
from residents_app.formatting import mask_phone
from residents_app.registry import importer
from residents_app.registry.models import (
    UNIT_KIND_LABELS,
    Building,
    Estate,
    Owner,
    Ownership,
    Unit,
)

CHUNK = 500  # rows per IN (...) list, well below every driver's parameter limit


@dataclass
class ImportPlan:
    """What importing a roster file changes. Units missing from the file are reported, never deleted."""

    file_sha256: str = ""
    unit_count_in_file: int = 0
    owner_rows_in_file: int = 0
    buildings_added: list[str] = field(default_factory=list)
    units_added: list[str] = field(default_factory=list)
    units_changed: list[dict] = field(default_factory=list)
    owners_added: list[str] = field(default_factory=list)  # masked phones of new persons
    owners_changed: list[dict] = field(default_factory=list)
    ownerships_added: list[str] = field(default_factory=list)  # "1幢-101 张三"
    ownerships_removed: list[str] = field(default_factory=list)
    units_missing: list[str] = field(default_factory=list)
    applied: bool = False

    @property
    def has_changes(self) -> bool:
        return bool(self.buildings_added or self.units_added or self.units_changed or self.owners_added
                    or self.owners_changed or self.ownerships_added or self.ownerships_removed)

    def counts(self) -> dict[str, int]:
        return {
            "unit_count_in_file": self.unit_count_in_file,
            "owner_rows_in_file": self.owner_rows_in_file,
            "buildings_added": len(self.buildings_added),
            "units_added": len(self.units_added),
            "units_changed": len(self.units_changed),
            "owners_added": len(self.owners_added),
            "owners_changed": len(self.owners_changed),
            "ownerships_added": len(self.ownerships_added),
            "ownerships_removed": len(self.ownerships_removed),
            "units_missing": len(self.units_missing),
        }

    def as_dict(self) -> dict:
        return {"counts": self.counts(), "applied": self.applied, "has_changes": self.has_changes,
                "file_sha256": self.file_sha256, "buildings_added": self.buildings_added,
                "units_added": self.units_added, "units_changed": self.units_changed,
                "owners_changed": self.owners_changed, "ownerships_added": self.ownerships_added,
                "ownerships_removed": self.ownerships_removed, "units_missing": self.units_missing}


class RosterRejected(ValidationFailed):
    code = "roster_rejected"

    def __init__(self, parsed_errors: list[importer.RowError]):
        super().__init__(f"名册有 {len(parsed_errors)} 处错误，未导入任何数据",
                         errors={"rows": [e.as_dict() for e in parsed_errors]})
        self.row_errors = parsed_errors


def _masked(phone: str) -> str:
    return mask_phone(phone)


@dataclass
class _Existing:
    buildings: dict[str, int]
    units: dict[tuple[int, str], tuple[int, int, str, bool]]  # (building_id, number) -> id, hundredths, kind, hardship
    owners: dict[str, tuple[int, str, str | None]]  # phone -> id, name, id_last4
    ownerships: dict[int, set[int]]  # unit_id -> owner ids


def _load_existing(estate_id: int) -> _Existing:
    # Core rows on the session's connection: no ORM row processing for tens of thousands of tuples.
    conn = db.session.connection()
    buildings = dict(conn.execute(
        sa.select(Building.name, Building.id).where(Building.estate_id == estate_id)).all())
    units = {(b, n): (i, int(a), k, h) for i, b, n, a, k, h in conn.execute(
        sa.select(Unit.id, Unit.building_id, Unit.number, sa.type_coerce(Unit.title_area_m2, sa.BigInteger),
                  Unit.kind, Unit.is_hardship).where(Unit.estate_id == estate_id)).all()}
    owners = {p: (i, n, d) for i, p, n, d in conn.execute(
        sa.select(Owner.id, Owner.phone, Owner.name, Owner.id_last4).where(Owner.estate_id == estate_id)).all()}
    ownerships: dict[int, set[int]] = {}
    for unit_id, owner_id in conn.execute(
            sa.select(Ownership.unit_id, Ownership.owner_id).join(Unit, Unit.id == Ownership.unit_id)
            .where(Unit.estate_id == estate_id)).all():
        ownerships.setdefault(unit_id, set()).add(owner_id)
    return _Existing(buildings, units, owners, ownerships)


def _resolve_masked_phones(parsed: importer.ParsedRoster, ex: _Existing) -> None:
    """The export masks phones (138****0102); re-importing it must change nothing. A masked phone stands for the
    one registered owner of that unit whose number it matches; anything else needs the full number."""
    if not any(importer.is_masked_phone(r.owner_phone) for r in parsed.rows):
        return
    phone_of = {oid: phone for phone, (oid, _n, _d) in ex.owners.items()}
    errors: list[importer.RowError] = []
    rows: list[importer.RosterRow] = []
    seen_in_unit: dict[tuple[str, str, str], int] = {}
    name_of: dict[str, importer.RosterRow] = {}
    for r in parsed.rows:
        label = f"{r.building}-{r.unit}"
        if importer.is_masked_phone(r.owner_phone):
            building_id = ex.buildings.get(r.building)
            unit = ex.units.get((building_id, r.unit)) if building_id is not None else None
            owners = ex.ownerships.get(unit[0], set()) if unit else set()
            matches = sorted(p for p in (phone_of[o] for o in owners) if _masked(p) == r.owner_phone)
            if len(matches) != 1:
                errors.append(importer.RowError(
                    r.row, "手机号", f"{label} 的手机号 {r.owner_phone} 已打码，且不能对应到本户唯一一位已登记业主："
                                    f"请填写完整手机号"))
                continue
            r = replace(r, owner_phone=matches[0])
        where = (r.building, r.unit, r.owner_phone)
        if where in seen_in_unit:
            errors.append(importer.RowError(r.row, "手机号", f"{label} 的业主（手机号 {_masked(r.owner_phone)}）"
                                                           f"与第 {seen_in_unit[where]} 行重复"))
            continue
        seen_in_unit[where] = r.row
        other = name_of.setdefault(r.owner_phone, r)
        if other.owner_name != r.owner_name:
            errors.append(importer.RowError(r.row, "业主姓名", f"手机号 {_masked(r.owner_phone)} 在第 {other.row} 行"
                                                             f"登记为「{other.owner_name}」，同一手机号只能对应一位业主"))
            continue
        rows.append(r)
    if errors:
        raise RosterRejected(sorted(errors, key=lambda e: e.row))
    parsed.rows = rows


def _lock_estate_register(estate_id: int) -> None:
    """Serialise writers of one estate's register (PostgreSQL); SQLite's BEGIN IMMEDIATE already does."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(sa.text("SELECT pg_advisory_xact_lock(7303, :estate)"), {"estate": estate_id})


def _hundredths(area: Decimal) -> int:
    return int(area * 100)


def _group_units(parsed: importer.ParsedRoster) -> dict[tuple[str, str], list[importer.RosterRow]]:
    units: dict[tuple[str, str], list[importer.RosterRow]] = {}
    for r in parsed.rows:
        units.setdefault((r.building, r.unit), []).append(r)
    return units


def import_roster(estate: Estate, filename: str, data: bytes, *, actor: str, now: datetime,
                  dry_run: bool = False) -> ImportPlan:
    """Parse, validate and (unless dry_run) apply a roster file in the caller's transaction.

    Raises RosterRejected (every bad row) and writes nothing if any row is bad.
    """
    parsed = importer.parse_roster(filename, data)
    if not parsed.ok:
        raise RosterRejected(parsed.errors)
    return apply_roster(estate, parsed, actor=actor, now=now, dry_run=dry_run,
                        file_sha256=hashlib.sha256(data).hexdigest())


def apply_roster(estate: Estate, parsed: importer.ParsedRoster, *, actor: str, now: datetime,
                 dry_run: bool = False, file_sha256: str = "") -> ImportPlan:
    """Diff the parsed roster against the register and apply it with bulk statements (no per-row queries).

    Units in the file are set to the file's values and owner list. Optional columns absent from the
    file (类型, 困难户, 身份证后四位) keep the register's values. Units absent from the file are kept
    and listed in units_missing.
    """
    if not parsed.ok:
        raise RosterRejected(parsed.errors)
    estate_id = estate.id
    if not dry_run:
        _lock_estate_register(estate_id)  # two imports of one estate must not plan on the same snapshot
    ex = _load_existing(estate_id)
    _resolve_masked_phones(parsed, ex)
    grouped = _group_units(parsed)
    plan = ImportPlan(file_sha256=file_sha256, unit_count_in_file=len(grouped), owner_rows_in_file=len(parsed.rows))
    has_kind, has_hardship = "kind" in parsed.columns, "hardship" in parsed.columns
    has_id = "id_last4" in parsed.columns

    # persons (by phone)
    people: dict[str, importer.RosterRow] = {}
    id_last4: dict[str, str | None] = {}
    for r in parsed.rows:
        people.setdefault(r.owner_phone, r)
        if r.id_last4 and not id_last4.get(r.owner_phone):
            id_last4[r.owner_phone] = r.id_last4
    new_owners, changed_owners = [], []
    for phone, r in people.items():
        digits = id_last4.get(phone)
        if phone not in ex.owners:
            new_owners.append({"estate_id": estate_id, "name": r.owner_name, "phone": phone, "id_last4": digits})
            plan.owners_added.append(_masked(phone))
            continue
        owner_id, name, old_digits = ex.owners[phone]
        new_digits = digits if (has_id and digits) else old_digits
        if name != r.owner_name or new_digits != old_digits:
            changed_owners.append({"id": owner_id, "name": r.owner_name, "id_last4": new_digits})
            plan.owners_changed.append({"phone": _masked(phone), "before": {"name": name, "id_last4": old_digits},
                                        "after": {"name": r.owner_name, "id_last4": new_digits}})

    new_buildings = sorted({b for b, _ in grouped} - set(ex.buildings))
    plan.buildings_added = new_buildings
    new_units, changed_units = [], []
    wanted_owners: dict[tuple[str, str], list[str]] = {}
    seen_unit_ids: set[int] = set()
    for (bname, number), rows in grouped.items():
        first = rows[0]
        label = f"{bname}-{number}"
        wanted_owners[(bname, number)] = [r.owner_phone for r in rows]
        building_id = ex.buildings.get(bname)
        existing = ex.units.get((building_id, number)) if building_id is not None else None
        if existing is None:
            new_units.append({"building": bname, "number": number, "title_area_m2": first.title_area_m2,
                              "kind": first.kind, "is_hardship": first.is_hardship})
            plan.units_added.append(label)
            continue
        unit_id, hundredths, kind, hardship = existing
        seen_unit_ids.add(unit_id)
        after = {"title_area_m2": _hundredths(first.title_area_m2),
                 "kind": first.kind if has_kind else kind,
                 "is_hardship": first.is_hardship if has_hardship else hardship}
        before = {"title_area_m2": hundredths, "kind": kind, "is_hardship": hardship}
        if after != before:
            changed_units.append({"id": unit_id, "title_area_m2": first.title_area_m2, "kind": after["kind"],
                                  "is_hardship": after["is_hardship"]})
            plan.units_changed.append({
                "unit": label,
                "before": {**before, "title_area_m2": str(hundredths_to_decimal(hundredths))},
                "after": {**after, "title_area_m2": str(first.title_area_m2)}})

    id_to_label = {}
    if ex.units:
        names = {v: k for k, v in ex.buildings.items()}
        id_to_label = {uid: f"{names[b]}-{n}" for (b, n), (uid, *_rest) in ex.units.items()}
    plan.units_missing = sorted(label for uid, label in id_to_label.items() if uid not in seen_unit_ids)

    # ownerships of existing units: compare phones
    phone_of = {oid: phone for phone, (oid, _n, _d) in ex.owners.items()}
    name_of = {phone: r.owner_name for phone, r in people.items()}
    removed_pairs = []
    for (bname, number), phones in wanted_owners.items():
        building_id = ex.buildings.get(bname)
        existing = ex.units.get((building_id, number)) if building_id is not None else None
        label = f"{bname}-{number}"
        current = {phone_of[o] for o in ex.ownerships.get(existing[0], set())} if existing else set()
        for phone in phones:
            if phone not in current:
                plan.ownerships_added.append(f"{label} {name_of[phone]}")
        for phone in sorted(current - set(phones)):
            owner_id, name, _d = ex.owners[phone]
            removed_pairs.append((existing[0], owner_id))
            plan.ownerships_removed.append(f"{label} {name}")

    if dry_run or not plan.has_changes:
        return plan

    # ---- write, in bulk: Core executemany on the session's connection (same transaction) ----
    db.session.flush()
    conn = db.session.connection()
    if new_buildings:
        conn.execute(sa.insert(Building.__table__), [{"estate_id": estate_id, "name": n} for n in new_buildings])
        ex.buildings = dict(conn.execute(
            sa.select(Building.name, Building.id).where(Building.estate_id == estate_id)).all())
    if new_units:
        conn.execute(sa.insert(Unit.__table__), [
            {"estate_id": estate_id, "building_id": ex.buildings[u["building"]], "number": u["number"],
             "title_area_m2": u["title_area_m2"], "kind": u["kind"], "is_hardship": u["is_hardship"]}
            for u in new_units])
    unit_table, owner_table = Unit.__table__, Owner.__table__
    if changed_units:
        conn.execute(sa.update(unit_table).where(unit_table.c.id == sa.bindparam("b_id")).values(
            title_area_m2=sa.bindparam("b_area"), kind=sa.bindparam("b_kind"),
            is_hardship=sa.bindparam("b_hardship")),
            [{"b_id": u["id"], "b_area": u["title_area_m2"], "b_kind": u["kind"], "b_hardship": u["is_hardship"]}
             for u in changed_units])
    if new_owners:
        conn.execute(sa.insert(owner_table), new_owners)
    if changed_owners:
        conn.execute(sa.update(owner_table).where(owner_table.c.id == sa.bindparam("b_id")).values(
            name=sa.bindparam("b_name"), id_last4=sa.bindparam("b_digits")),
            [{"b_id": o["id"], "b_name": o["name"], "b_digits": o["id_last4"]} for o in changed_owners])
    if removed_pairs:
        for i in range(0, len(removed_pairs), CHUNK):
            chunk = removed_pairs[i:i + CHUNK]
            conn.execute(sa.delete(Ownership.__table__).where(
                sa.tuple_(Ownership.unit_id, Ownership.owner_id).in_(chunk)))
    if plan.ownerships_added:
        unit_ids = {(b, n): i for (b, n), (i, *_r) in ex.units.items()}
        if new_units:
            unit_ids = {(b, n): i for i, b, n in conn.execute(
                sa.select(Unit.id, Unit.building_id, Unit.number).where(Unit.estate_id == estate_id)).all()}
        owner_ids = {p: i for p, (i, *_r) in ex.owners.items()}
        if new_owners:
            owner_ids = dict(conn.execute(
                sa.select(Owner.phone, Owner.id).where(Owner.estate_id == estate_id)).all())
        pairs = []
        for (bname, number), phones in wanted_owners.items():
            unit_id = unit_ids[(ex.buildings[bname], number)]
            current = ex.ownerships.get(unit_id, set())
            pairs.extend({"unit_id": unit_id, "owner_id": owner_ids[p]} for p in phones
                         if owner_ids[p] not in current)
        conn.execute(sa.insert(Ownership.__table__), pairs)
    db.session.expire_all()  # bulk statements bypass the identity map
    record("register.import", chain=estate_id, actor=actor, now=now, subject_type="estate", subject_id=estate_id,
           data={"file_sha256": file_sha256, "counts": plan.counts(), "buildings_added": plan.buildings_added,
                 "units_added": plan.units_added, "units_changed": plan.units_changed,
                 "owners_changed": plan.owners_changed, "ownerships_added": plan.ownerships_added,
                 "ownerships_removed": plan.ownerships_removed, "units_missing": plan.units_missing})
    plan.applied = True
    return plan


def roster_rows(estate_id: int) -> list[tuple]:
    """The register as roster rows (one per owner of a unit), in the import format's column order."""
    rows = db.session.execute(
        sa.select(Building.name, Unit.number, Unit.title_area_m2, Unit.kind, Unit.is_hardship,
                  Owner.name, Owner.phone, Owner.id_last4)
        .select_from(Unit).join(Building, Building.id == Unit.building_id)
        .outerjoin(Ownership, Ownership.unit_id == Unit.id).outerjoin(Owner, Owner.id == Ownership.owner_id)
        .where(Unit.estate_id == estate_id)
        .order_by(Building.name, Unit.number, Owner.id)).all()
    return [(b, n, a, UNIT_KIND_LABELS[k], "是" if h else "否", on or "", op or "", oid or "")
            for b, n, a, k, h, on, op, oid in rows]


def export_roster_xlsx(estate_id: int, *, rows: list[tuple] | None = None) -> bytes:
    """XLSX in the import format (re-importing it changes nothing: masked phones are matched to the unit's owners).

    Phones are masked (138****0102) like everywhere else; areas are numbers shown with 2 places."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    ws = wb.active
    ws.title = "名册"
    ws.append(list(importer.EXPORT_HEADERS))
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for b, n, area, kind, hardship, name, phone, digits in (roster_rows(estate_id) if rows is None else rows):
        # float(Decimal) of a 2-place value is read back exactly through repr() on import.
        ws.append([b, n, float(area), kind, hardship, name, mask_phone(phone), digits])
        row = appended_row(ws)
        ws.cell(row=row, column=3).number_format = "0.00"
        for col in (1, 2, 4, 5, 6, 7, 8):
            cell = ws.cell(row=row, column=col)
            cell.data_type = "s"  # text, never a formula: a name like "=HYPERLINK(...)" stays inert
            cell.number_format = "@"
    for col, width in zip("ABCDEFGH", (10, 10, 12, 8, 8, 12, 16, 14), strict=True):
        ws.column_dimensions[col].width = width
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
