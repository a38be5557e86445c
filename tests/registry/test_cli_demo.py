"""`flask roster ...`, `flask register ...` and `flask demo load` (twice)."""

from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa

from residents_app.extensions import db as _db
from residents_app.registry.models import Estate, Owner, Ownership, StreetOffice, Unit
from residents_app.registry.services import register_summary
from tests.registry.conftest import csv_bytes, snapshot

ROWS = [
    ["1幢", "101", "88.50", "张三", "13900000001", "", "否", "住宅"],
    ["1幢", "102", "70.25", "张三", "13900000001", "", "是", "住宅"],
]


@pytest.fixture
def runner(app, db):
    return app.test_cli_runner()


def test_register_commands_create_office_and_estate(runner, db):
    result = runner.invoke(args=["register", "street-office", "WM", "鹿城区五马街道", "--district", "鹿城区"])
    assert result.exit_code == 0, result.output
    assert "已创建街道 WM 鹿城区五马街道" in result.output
    result = runner.invoke(args=["register", "estate", "XY", "幸福小区", "--street", "WM"])
    assert result.exit_code == 0, result.output
    estate = db.session.execute(sa.select(Estate).where(Estate.code == "XY")).scalar_one()
    office = db.session.execute(sa.select(StreetOffice).where(StreetOffice.code == "WM")).scalar_one()
    assert (estate.name, estate.street_office_id, office.district) == ("幸福小区", office.id, "鹿城区")
    result = runner.invoke(args=["register", "estate", "XY", "重复", "--street", "NOPE"])
    assert result.exit_code == 1
    assert "小区代码 XY 已存在" in result.output and "找不到街道代码 NOPE" in result.output


def test_roster_import_dry_run_import_and_export(runner, db, factory, tmp_path):
    estate = factory.estate(code="CLI1")
    db.session.commit()
    path = tmp_path / "名册.csv"
    path.write_bytes(csv_bytes(ROWS, encoding="gb18030"))
    before = snapshot()
    result = runner.invoke(args=["roster", "import", str(path), "--estate", "CLI1", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "试导入（未写入）CLI1" in result.output and "新增房号: 2" in result.output
    assert snapshot() == before
    result = runner.invoke(args=["roster", "import", str(path), "--estate", "CLI1"])
    assert result.exit_code == 0, result.output
    assert "已导入 CLI1" in result.output and "新增业主: 1" in result.output
    s = register_summary(estate.id)
    assert (s.unit_count, s.owner_count, s.title_area_m2, s.hardship_count) == (2, 1, Decimal("158.75"), 1)
    result = runner.invoke(args=["roster", "import", str(path), "--estate", "CLI1"])
    assert result.exit_code == 0 and "CLI1：名册无变化" in result.output
    out = tmp_path / "out.xlsx"
    result = runner.invoke(args=["roster", "export", "--estate", "CLI1", str(out)])
    assert result.exit_code == 0, result.output
    after = snapshot()
    result = runner.invoke(args=["roster", "import", str(out), "--estate", "CLI1"])
    assert "名册无变化" in result.output
    assert snapshot() == after


def test_roster_import_bad_file_lists_every_row_and_exits_1(runner, db, factory, tmp_path):
    factory.estate(code="CLI2")
    db.session.commit()
    path = tmp_path / "bad.csv"
    path.write_bytes(csv_bytes(ROWS + [["1幢", "103", "1.234", "李四", "1380000", "", "", ""]]))
    before = snapshot()
    result = runner.invoke(args=["roster", "import", str(path), "--estate", "CLI2"])
    assert result.exit_code == 1
    assert "错误：名册有 2 处错误，未导入任何数据" in result.output
    assert "第 4 行「产权面积」列：面积「1.234」超过两位小数" in result.output
    assert "第 4 行「手机号」列：手机号「1380000」格式不正确（应为 11 位大陆手机号）" in result.output
    assert snapshot() == before
    result = runner.invoke(args=["roster", "import", str(path), "--estate", "NOPE"])
    assert result.exit_code == 1 and "找不到小区代码 NOPE" in result.output


def _counts():
    return {t.name: _db.session.execute(sa.select(sa.func.count()).select_from(t)).scalar()
            for t in _db.metadata.sorted_tables}


def test_demo_load_twice_changes_nothing(runner, db):
    result = runner.invoke(args=["demo", "load"])
    assert result.exit_code == 0, result.output
    assert "演示名册已导入：120 户" in result.output
    assert "仅供演示" in result.output and "committee2" in result.output and "demo-committee-2026" in result.output
    estate = db.session.execute(sa.select(Estate).where(Estate.code == "DEMO")).scalar_one()
    assert (estate.name, estate.street_office.code, estate.street_office.name) == ("示范小区", "WM", "鹿城区五马街道")
    s = register_summary(estate.id)
    assert (s.unit_count, len(s.buildings), s.commercial.unit_count, s.hardship_count) == (120, 4, 4, 2)
    areas = db.session.execute(sa.select(Unit.kind, Unit.title_area_m2).where(Unit.estate_id == estate.id)).all()
    assert all(Decimal("60") <= a <= Decimal("140") for k, a in areas if k == "residential")
    co_owned = db.session.execute(
        sa.select(Ownership.unit_id).group_by(Ownership.unit_id).having(sa.func.count() > 1)).all()
    assert len(co_owned) >= 5
    multi = db.session.execute(
        sa.select(Ownership.owner_id).group_by(Ownership.owner_id).having(sa.func.count() > 1)).scalars().all()
    assert len(multi) == 1
    two_units = sorted(o.unit.label for o in db.session.get(Owner, multi[0]).ownerships)
    assert two_units == ["2幢-301", "3幢-402"]
    assert s.owner_count == len(db.session.execute(sa.select(Owner.id).where(Owner.estate_id == estate.id)).all())

    before_counts, before, register_events = _counts(), _register_state(), _register_events()
    result = runner.invoke(args=["demo", "load"])
    assert result.exit_code == 0, result.output
    assert "演示名册已存在，未改动" in result.output
    # Everything is unchanged, except what the rounds demo renews on purpose: fresh links for the
    # printed demo units (tokens are stored hashed, so a printed link needs a new token) and their audit.
    renewed = {"unit_link", "audit_event"}
    assert {k: v for k, v in _counts().items() if k not in renewed} == {
        k: v for k, v in before_counts.items() if k not in renewed}
    assert _register_state() == before
    assert _register_events() == register_events


def _register_state():
    from residents_app.auth.models import User

    state = {k: v for k, v in snapshot().items() if k != "audit_event"}
    state["app_user"] = _db.session.execute(
        sa.select(User.id, User.username, User.role, User.estate_id, User.street_office_id, User.password_hash)
        .order_by(User.id)).all()
    return state


def _register_events():
    from residents_app.audit.models import AuditEvent

    return _db.session.execute(sa.select(AuditEvent.id, AuditEvent.kind).where(
        AuditEvent.kind.like("register.%")).order_by(AuditEvent.id)).all()


def test_demo_accounts_can_log_in_with_their_scope(runner, client, db):
    runner.invoke(args=["demo", "load"])
    estate = db.session.execute(sa.select(Estate).where(Estate.code == "DEMO")).scalar_one()
    for username, password in (("committee", "demo-committee-2026"), ("committee2", "demo-committee2-2026"),
                               ("street", "demo-street-2026"), ("admin", "demo-admin-2026")):
        resp = client.post("/api/auth/login", json={"username": username, "password": password})
        assert resp.status_code == 200, username
        assert [e["code"] for e in client.get("/api/estates/").get_json()] == ["DEMO"], username
        assert client.get(f"/api/estates/{estate.id}").get_json()["summary"]["unit_count"] == 120
        client.post("/api/auth/logout")


@pytest.mark.parametrize("name", ["roster.csv", "roster.xlsx"])
def test_example_files_import_with_the_documented_totals(runner, db, factory, name):
    from pathlib import Path

    estate = factory.estate(code="EX")
    db.session.commit()
    path = Path(__file__).resolve().parents[2] / "examples" / name
    result = runner.invoke(args=["roster", "import", str(path), "--estate", "EX"])
    assert result.exit_code == 0, result.output
    s = register_summary(estate.id)
    assert (s.unit_count, s.household_count, s.owner_count, s.title_area_m2, s.commercial.unit_count,
            s.hardship_count) == (10, 10, 11, Decimal("928.08"), 1, 1)
