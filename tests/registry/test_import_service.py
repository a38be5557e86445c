"""Importing a roster into the register: all or nothing, idempotent, corrections, persons counted once."""

from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa

from residents_app.audit.models import AuditEvent
from residents_app.registry.models import Owner, Unit
from residents_app.registry.roster import RosterRejected, import_roster, roster_rows
from residents_app.registry.services import register_summary
from tests.registry.conftest import csv_bytes, snapshot, xlsx_bytes

ROWS = [
    ["1幢", "101", "88.50", "张三", "13900000001", "1234", "否", "住宅"],
    ["1幢", "101", "88.50", "李四", "13900000002", "", "否", "住宅"],   # co-owner of 1幢-101
    ["1幢", "102", "70.25", "王五", "13900000003", "", "是", "住宅"],
    ["2幢", "201", "102.30", "张三", "13900000001", "1234", "否", "住宅"],  # 张三 owns two units
    ["2幢", "商1", "45.00", "赵六", "13900000006", "", "否", "商铺"],
]


def _import(estate, data, now, name="r.csv", **kw):
    return import_roster(estate, name, data, actor="user:1:test", now=now, **kw)


def test_good_file_imports_with_co_owners_and_persons_counted_once(db, estate, now):
    plan = _import(estate, csv_bytes(ROWS), now)
    assert plan.applied is True
    assert plan.counts() == {"unit_count_in_file": 4, "owner_rows_in_file": 5, "buildings_added": 2,
                             "units_added": 4, "units_changed": 0, "owners_added": 4, "owners_changed": 0,
                             "ownerships_added": 5, "ownerships_removed": 0, "units_missing": 0}
    s = register_summary(estate.id)
    assert (s.unit_count, s.household_count, s.owner_count, s.title_area_m2, s.hardship_count) == (
        4, 4, 4, Decimal("306.05"), 1)
    assert (s.residential.unit_count, s.residential.owner_count, s.residential.title_area_m2) == (
        3, 3, Decimal("261.05"))
    assert (s.commercial.unit_count, s.commercial.owner_count, s.commercial.title_area_m2) == (
        1, 1, Decimal("45.00"))
    assert [(b.name, b.totals.unit_count, b.totals.owner_count, b.totals.title_area_m2, b.commercial_count)
            for b in s.buildings] == [("1幢", 2, 3, Decimal("158.75"), 0), ("2幢", 2, 2, Decimal("147.30"), 1)]
    unit = db.session.execute(sa.select(Unit).where(Unit.number == "101")).scalar_one()
    assert sorted(o.name for o in unit.owners) == ["张三", "李四"]
    zhang = db.session.execute(sa.select(Owner).where(Owner.phone == "13900000001")).scalar_one()
    assert sorted(o.unit.label for o in zhang.ownerships) == ["1幢-101", "2幢-201"]
    assert zhang.id_last4 == "1234"
    events = db.session.execute(sa.select(AuditEvent).where(AuditEvent.chain == estate.id)).scalars().all()
    assert [e.kind for e in events] == ["register.import"]
    assert events[0].actor == "user:1:test"
    assert events[0].data["counts"]["units_added"] == 4
    assert events[0].data["units_added"] == ["1幢-101", "1幢-102", "2幢-201", "2幢-商1"]


def test_bad_file_imports_nothing_and_database_is_exactly_as_before(db, estate, now):
    _import(estate, csv_bytes(ROWS), now)
    before = snapshot()
    bad = [r[:] for r in ROWS] + [
        ["3幢", "301", "66.6", "新人", "13900000009", "", "", ""],   # good row: must not be written either
        ["3幢", "302", "-1", "坏人", "1390000000x", "", "", ""],     # two errors in row 8
        ["1幢", "102", "70.26", "王六", "13900000004", "", "是", "住宅"],  # row 9: same unit, other area
    ]
    bad[0][2] = "88.5"  # a harmless difference of notation in row 2
    with pytest.raises(RosterRejected) as exc:
        _import(estate, csv_bytes(bad), now)
    assert exc.value.status == 422
    assert exc.value.message == "名册有 3 处错误，未导入任何数据"
    assert exc.value.errors["rows"] == [
        {"row": 8, "column": "产权面积", "message": "面积「-1」必须大于 0"},
        {"row": 8, "column": "手机号", "message": "手机号「1390000000x」格式不正确（应为 11 位大陆手机号）"},
        {"row": 9, "column": "产权面积", "message": "1幢-102 的面积 70.26 与第 4 行的 70.25 不一致"},
    ]
    assert snapshot() == before


def test_bad_file_reports_every_row(db, estate, now):
    before = snapshot()
    bad = ROWS + [
        ["3幢", "302", "-1", "坏人", "1390000000x", "", "", ""],
        ["3幢", "303", "55.555", "", "13900000010", "", "", ""],
    ]
    with pytest.raises(RosterRejected) as exc:
        _import(estate, csv_bytes(bad), now)
    assert [(e["row"], e["column"], e["message"]) for e in exc.value.errors["rows"]] == [
        (7, "产权面积", "面积「-1」必须大于 0"),
        (7, "手机号", "手机号「1390000000x」格式不正确（应为 11 位大陆手机号）"),
        (8, "产权面积", "面积「55.555」超过两位小数"),
        (8, "业主姓名", "业主姓名不能为空"),
    ]
    assert snapshot() == before


def test_reimport_of_the_same_file_changes_nothing(db, estate, now):
    _import(estate, csv_bytes(ROWS), now)
    before = snapshot()
    plan = _import(estate, csv_bytes(ROWS, encoding="gb18030"), now)
    assert plan.has_changes is False and plan.applied is False
    assert plan.counts()["units_added"] == 0 and plan.counts()["units_missing"] == 0
    assert snapshot() == before  # not even an audit entry


def test_exported_roster_reimports_without_change(db, estate, now):
    from residents_app.registry.roster import export_roster_xlsx

    _import(estate, csv_bytes(ROWS), now)
    before = snapshot()
    data = export_roster_xlsx(estate.id)
    plan = _import(estate, data, now, name="export.xlsx")
    assert plan.has_changes is False
    assert snapshot() == before
    assert roster_rows(estate.id)[0] == ("1幢", "101", Decimal("88.50"), "住宅", "否", "张三", "13900000001", "1234")


def test_corrected_file_updates_and_reports_missing_units(db, estate, now):
    _import(estate, csv_bytes(ROWS), now)
    corrected = [
        ["1幢", "101", "88.60", "张叁", "13900000001", "9876", "否", "住宅"],   # area corrected, 李四 removed
        ["1幢", "102", "70.25", "王五", "13900000003", "", "否", "住宅"],       # hardship cleared
        ["1幢", "102", "70.25", "王小五", "13900000013", "", "否", "住宅"],     # co-owner added
        ["2幢", "201", "102.30", "张叁", "13900000001", "9876", "否", "住宅"],  # name and ID corrected
        ["3幢", "301", "99.99", "孙七", "13900000007", "", "否", "住宅"],       # new building and unit
    ]                                                                         # 2幢-商1 missing
    dry = _import(estate, csv_bytes(corrected), now, dry_run=True)
    assert dry.applied is False
    plan = _import(estate, csv_bytes(corrected), now)
    assert plan.as_dict() == {**dry.as_dict(), "applied": True}
    assert plan.counts() == {"unit_count_in_file": 4, "owner_rows_in_file": 5, "buildings_added": 1,
                             "units_added": 1, "units_changed": 2, "owners_added": 2, "owners_changed": 1,
                             "ownerships_added": 2, "ownerships_removed": 1, "units_missing": 1}
    assert plan.units_changed == [
        {"unit": "1幢-101", "before": {"title_area_m2": "88.50", "kind": "residential", "is_hardship": False},
         "after": {"title_area_m2": "88.60", "kind": "residential", "is_hardship": False}},
        {"unit": "1幢-102", "before": {"title_area_m2": "70.25", "kind": "residential", "is_hardship": True},
         "after": {"title_area_m2": "70.25", "kind": "residential", "is_hardship": False}},
    ]
    assert plan.owners_changed == [{"phone": "139****0001", "before": {"name": "张三", "id_last4": "1234"},
                                     "after": {"name": "张叁", "id_last4": "9876"}}]
    assert plan.ownerships_removed == ["1幢-101 李四"]
    assert plan.ownerships_added == ["1幢-102 王小五", "3幢-301 孙七"]
    assert plan.units_missing == ["2幢-商1"]
    s = register_summary(estate.id)
    # 5 units (the missing shop is kept); persons: 张叁, 王五, 王小五, 孙七, 赵六 (李四 owns nothing now)
    assert (s.unit_count, s.owner_count, s.title_area_m2, s.hardship_count) == (5, 5, Decimal("406.14"), 0)
    assert [r[:2] + r[5:7] for r in roster_rows(estate.id)] == [
        ("1幢", "101", "张叁", "13900000001"), ("1幢", "102", "王五", "13900000003"),
        ("1幢", "102", "王小五", "13900000013"), ("2幢", "201", "张叁", "13900000001"),
        ("2幢", "商1", "赵六", "13900000006"), ("3幢", "301", "孙七", "13900000007")]
    again = _import(estate, csv_bytes(corrected), now)
    assert again.has_changes is False


def test_optional_columns_absent_keep_register_values(db, estate, now):
    _import(estate, csv_bytes(ROWS), now)
    header = ["楼栋", "房号", "产权面积", "业主姓名", "手机号"]
    plan = _import(estate, csv_bytes([r[:5] for r in ROWS], header=header), now)
    assert plan.has_changes is False
    s = register_summary(estate.id)
    assert (s.hardship_count, s.commercial.unit_count) == (1, 1)
    zhang = db.session.execute(sa.select(Owner).where(Owner.phone == "13900000001")).scalar_one()
    assert zhang.id_last4 == "1234"


def test_xlsx_import_areas_exact_in_the_database(db, estate, now):
    rows = [["1幢", 101, 102.3, "张三", 13900000001, None, None, None],
            ["1幢", 102, 88.05, "李四", 13900000002, None, None, None]]
    _import(estate, xlsx_bytes(rows), now, name="r.xlsx")
    areas = db.session.execute(sa.select(Unit.number, Unit.title_area_m2).order_by(Unit.number)).all()
    assert [(n, str(a)) for n, a in areas] == [("101", "102.30"), ("102", "88.05")]
    raw = db.session.execute(sa.text("SELECT title_area_m2 FROM unit ORDER BY number")).scalars().all()
    assert raw == [10230, 8805]  # stored as exact hundredths


def test_same_phone_in_two_estates_are_two_people(db, factory, now):
    a, b = factory.estate(), factory.estate()
    _import(a, csv_bytes(ROWS[:1]), now)
    _import(b, csv_bytes(ROWS[:1]), now)
    assert register_summary(a.id).owner_count == 1 and register_summary(b.id).owner_count == 1
    assert db.session.execute(sa.select(sa.func.count(Owner.id)).where(Owner.phone == "13900000001")).scalar() == 2


def test_export_writes_formula_like_names_as_inert_text(db, estate, now):
    import io as _io
    import zipfile

    from residents_app.registry.roster import export_roster_xlsx

    rows = [["1幢", "101", "88.50", '=HYPERLINK("http://evil","x")', "13900000001", "", "否", "住宅"]]
    _import(estate, csv_bytes(rows), now)
    data = export_roster_xlsx(estate.id)
    sheet = zipfile.ZipFile(_io.BytesIO(data)).read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in sheet
    before = snapshot()
    assert _import(estate, data, now, name="x.xlsx").has_changes is False
    assert snapshot() == before
