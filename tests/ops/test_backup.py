"""Backup, restore into a fresh database, and the audit chain verifies on the restored copy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from residents_app.audit import db_guards
from residents_app.audit.chain import compute_hash
from residents_app.audit.models import AuditEvent
from residents_app.audit.services import record
from residents_app.extensions import db
from residents_app.ops.services import audit_chain_problems
from residents_app.registry.models import Building, Estate, Owner, Ownership, StreetOffice, Unit
from tests.conftest import TEST_DB

from .conftest import create_schema

NOW = datetime(2026, 9, 1, 2, 0, tzinfo=UTC)


def populate() -> dict:
    office = StreetOffice(code="S1", name="五马街道", district="鹿城区")
    db.session.add(office)
    db.session.flush()
    estates = []
    for code in ("E1", "E2"):
        estate = Estate(code=code, name=f"小区{code}", street_office_id=office.id)
        db.session.add(estate)
        db.session.flush()
        building = Building(estate_id=estate.id, name="1幢")
        db.session.add(building)
        db.session.flush()
        for i in range(1, 6):
            unit = Unit(estate_id=estate.id, building_id=building.id, number=f"10{i}",
                        title_area_m2=Decimal("88.50") + i)
            owner = Owner(estate_id=estate.id, name=f"业主{code}{i}", phone=f"1390000{i:04d}")
            db.session.add_all([unit, owner])
            db.session.flush()
            db.session.add(Ownership(unit_id=unit.id, owner_id=owner.id))
        estates.append(estate)
    for i in range(30):
        estate = estates[i % 2]
        record("test.event", chain=estate.id, actor="system", now=NOW + timedelta(minutes=i),
               subject_type="unit", subject_id=i, data={"n": i, "名": "值", "面积": "88.50"})
    db.session.commit()
    return snapshot()


def snapshot() -> dict:
    units = db.session.execute(sa.select(Unit.number, Unit.title_area_m2).order_by(Unit.id)).all()
    events = db.session.execute(sa.select(AuditEvent.chain, AuditEvent.seq, AuditEvent.hash)
                                .order_by(AuditEvent.id)).all()
    owners = db.session.scalar(sa.select(sa.func.count()).select_from(Owner))
    db.session.rollback()  # SQLite: every transaction holds the write lock (BEGIN IMMEDIATE)
    return {"units": [tuple(u) for u in units], "events": [tuple(e) for e in events], "owners": owners}


def test_backup_restore_into_fresh_database_keeps_everything_and_the_chain(make_database_url, make_app, tmp_path):
    source = make_app(make_database_url())
    create_schema(source)
    with source.app_context():
        before = populate()
    assert len(before["units"]) == 10 and len(before["events"]) == 30 and before["owners"] == 10

    path = tmp_path / ("backup.sqlite3" if TEST_DB != "postgresql" else "backup.dump")
    result = source.test_cli_runner().invoke(args=["ops", "backup", str(path)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"已备份 {'postgresql' if TEST_DB == 'postgresql' else 'sqlite'} 数据库到 {path}")
    assert path.stat().st_size > 0
    assert not path.with_name(path.name + ".partial").exists()

    # Writes after the backup are not in it.
    with source.app_context():
        record("test.after_backup", chain=1, actor="system", now=NOW, data={})
        db.session.commit()

    target = make_app(make_database_url())  # empty: no tables at all
    result = target.test_cli_runner().invoke(args=["ops", "restore", str(path), "--yes"])
    assert result.exit_code == 0, result.output
    assert result.output == f"已从 {path} 恢复数据库\n审计链完整：已核对 30 条记录\n"
    with target.app_context():
        assert snapshot() == before
        events = db.session.execute(sa.select(AuditEvent).order_by(AuditEvent.id)).scalars().all()
        assert all(compute_hash(ev) == ev.hash for ev in events)
        assert audit_chain_problems() == (30, [])
        db.session.rollback()
        # the append-only guard came back with the data
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), db.engine.begin() as conn:
            conn.execute(sa.text("UPDATE audit_event SET kind = 'x' WHERE seq = 1"))
        # and the restored chain keeps growing from its head
        ev = record("test.after_restore", chain=events[-1].chain, actor="system", now=NOW, data={})
        assert ev.prev_hash == events[-1].hash
        db.session.commit()
    # The audit feature's own verifier agrees (exit code 0 = every chain intact).
    assert target.test_cli_runner().invoke(args=["audit", "verify"]).exit_code == 0


def test_verification_after_restore_detects_tampering(make_database_url, make_app, tmp_path):
    source = make_app(make_database_url())
    create_schema(source)
    with source.app_context():
        populate()
        with db.engine.begin() as conn, db_guards.allow_writes(conn):
            conn.execute(sa.text("UPDATE audit_event SET data = '{\"n\": 999}' WHERE chain = 2 AND seq = 4"))
    path = tmp_path / "tampered.bak"
    assert source.test_cli_runner().invoke(args=["ops", "backup", str(path)]).exit_code == 0
    target = make_app(make_database_url())
    result = target.test_cli_runner().invoke(args=["ops", "restore", str(path), "--yes"])
    assert result.exit_code == 1
    assert "审计链损坏：链 2 第 4 条（test.event）：内容与哈希不符（被改动）" in result.output
    with target.app_context():
        checked, problems = audit_chain_problems()
    assert (checked, problems) == (19, ["链 2 第 4 条（test.event）：内容与哈希不符（被改动）"])
    assert target.test_cli_runner().invoke(args=["audit", "verify"]).exit_code != 0


def test_backup_refuses_to_overwrite_and_restore_refuses_foreign_files(make_database_url, make_app, tmp_path):
    app = make_app(make_database_url())
    create_schema(app)
    runner = app.test_cli_runner()
    existing = tmp_path / "exists.bak"
    existing.write_bytes(b"old")
    result = runner.invoke(args=["ops", "backup", str(existing)])
    assert result.exit_code == 1
    assert f"备份文件 {existing} 已存在；换一个文件名，或加 --force 覆盖" in result.output
    assert existing.read_bytes() == b"old"
    assert runner.invoke(args=["ops", "backup", str(existing), "--force"]).exit_code == 0
    assert existing.read_bytes() != b"old"

    junk = tmp_path / "junk.bak"
    junk.write_bytes(b"MZ not a backup")
    result = runner.invoke(args=["ops", "restore", str(junk), "--yes"])
    assert result.exit_code == 1
    assert f"{junk} 不是本系统的备份文件（既不是 SQLite 数据库，也不是 pg_dump 自定义格式）" in result.output

    other = tmp_path / "other.bak"
    other.write_bytes(b"PGDMP" + b"\x00" * 20 if TEST_DB != "postgresql" else b"SQLite format 3\x00" + b"\x00" * 90)
    result = runner.invoke(args=["ops", "restore", str(other), "--yes"])
    assert result.exit_code == 1
    if TEST_DB == "postgresql":
        assert "备份文件是 SQLite 格式，当前数据库是 PostgreSQL；不同数据库之间不能直接恢复" in result.output
    else:
        assert "备份文件是 PostgreSQL 格式，当前数据库是 SQLite；不同数据库之间不能直接恢复" in result.output

    result = runner.invoke(args=["ops", "restore", str(tmp_path / "missing.bak"), "--yes"])
    assert result.exit_code == 1 and "找不到备份文件" in result.output


def test_restore_asks_for_confirmation(make_database_url, make_app, tmp_path):
    app = make_app(make_database_url())
    create_schema(app)
    path = tmp_path / "b.bak"
    assert app.test_cli_runner().invoke(args=["ops", "backup", str(path)]).exit_code == 0
    result = app.test_cli_runner().invoke(args=["ops", "restore", str(path)], input="n\n")
    assert result.exit_code == 1
    assert "这会用" in result.output and "覆盖当前数据库的全部内容，确定吗？" in result.output
    assert "Aborted" in result.output
