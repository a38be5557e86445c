"""Roster import throughput: the real import path against a bare bulk insert of the same rows.

    .venv/bin/python bench/bench_import.py                       # SQLite (a temporary file)
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/scratch .venv/bin/python bench/bench_import.py

Use a scratch PostgreSQL database: the benchmark creates the tables if missing and adds two estates
per run (it deletes nothing). Prints units per second for both paths and their ratio (goal >= 0.3).

The real path is residents_app.registry.roster.import_roster on CSV bytes: decoding, parsing and
validating every cell, checking consistency, diffing against the register, bulk writes, the audit
entry and the commit. The bare path inserts the already-converted rows (buildings, units, owners,
ownerships) with executemany and commits: the floor any import has to pay.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa  # noqa: E402


def make_rows(n_units: int) -> list[list[str]]:
    """n_units units in buildings of 250, every 10th unit with a co-owner, one owner with two units."""
    rows = []
    for i in range(n_units):
        building = f"{i // 250 + 1}幢"
        number = f"{(i % 250) // 10 + 1}{i % 10 + 1:02d}"
        area = Decimal(6000 + (i * 7919) % 8000).scaleb(-2)
        rows.append([building, number, str(area), f"业主{i}", f"13{i:09d}", f"{i % 10000:04d}", "否", "住宅"])
        if i % 10 == 0:
            rows.append([building, number, str(area), f"共有人{i}", f"15{i:09d}", "", "否", "住宅"])
    rows.append(["1幢", "101", rows[0][2], "业主1", "13000000001", "0001", "否", "住宅"])  # owner of two units
    return rows


def to_csv(rows) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["楼栋", "房号", "产权面积", "业主姓名", "手机号", "身份证后四位", "困难户", "类型"])
    w.writerows(rows)
    return buf.getvalue().encode("utf-8")


def bare_insert(db, estate_id: int, rows) -> None:
    """Insert the same register with plain executemany, no validation, no diff, no audit."""
    from residents_app.registry.models import Building, Owner, Ownership, Unit

    conn = db.session.connection()
    buildings = sorted({r[0] for r in rows})
    conn.execute(sa.insert(Building.__table__), [{"estate_id": estate_id, "name": b} for b in buildings])
    bid = dict(conn.execute(sa.select(Building.name, Building.id).where(Building.estate_id == estate_id)).all())
    units, owners = {}, {}
    for r in rows:
        units.setdefault((r[0], r[1]), Decimal(r[2]))
        owners.setdefault(r[4], (r[3], r[5] or None))
    conn.execute(sa.insert(Unit.__table__), [
        {"estate_id": estate_id, "building_id": bid[b], "number": n, "title_area_m2": a, "kind": "residential",
         "is_hardship": False} for (b, n), a in units.items()])
    conn.execute(sa.insert(Owner.__table__), [
        {"estate_id": estate_id, "name": name, "phone": phone, "id_last4": d} for phone, (name, d) in owners.items()])
    uid = {(b, n): i for i, b, n in conn.execute(
        sa.select(Unit.id, Unit.building_id, Unit.number).where(Unit.estate_id == estate_id)).all()}
    oid = dict(conn.execute(sa.select(Owner.phone, Owner.id).where(Owner.estate_id == estate_id)).all())
    conn.execute(sa.insert(Ownership.__table__), [
        {"unit_id": uid[(bid[r[0]], r[1])], "owner_id": oid[r[4]]} for r in rows])
    db.session.commit()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each path; the best is reported")
    args = parser.parse_args()

    url = os.environ.get("DATABASE_URL")
    tmp = None
    if not url:
        tmp = tempfile.TemporaryDirectory()
        url = f"sqlite:///{tmp.name}/bench.db"
    from residents_app import create_app
    from residents_app.extensions import db
    from residents_app.registry.roster import import_roster
    from residents_app.registry.services import create_estate, create_street_office, register_summary

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True})
    rows = make_rows(args.units)
    data = to_csv(rows)
    now = datetime.now(UTC)
    tag = now.strftime("%H%M%S")
    with app.app_context():
        db.create_all()
        office = create_street_office(f"B{tag}", "基准街道")
        db.session.commit()
        best_import = best_bare = float("inf")
        for run in range(args.repeat):
            e1 = create_estate(f"BI{tag}{run}", "导入", office.code, now=now)
            e2 = create_estate(f"BB{tag}{run}", "裸插入", office.code, now=now)
            db.session.commit()
            t0 = time.perf_counter()
            plan = import_roster(e1, "bench.csv", data, actor="system:bench", now=now)
            db.session.commit()
            t_import = time.perf_counter() - t0
            t0 = time.perf_counter()
            bare_insert(db, e2.id, rows)
            t_bare = time.perf_counter() - t0
            s1, s2 = register_summary(e1.id), register_summary(e2.id)
            assert plan.counts()["units_added"] == args.units
            assert (s1.unit_count, s1.owner_count, s1.title_area_m2) == (s2.unit_count, s2.owner_count,
                                                                          s2.title_area_m2), (s1, s2)
            t0 = time.perf_counter()
            again = import_roster(e1, "bench.csv", data, actor="system:bench", now=now)
            db.session.commit()
            t_again = time.perf_counter() - t0
            assert not again.has_changes
            best_import, best_bare = min(best_import, t_import), min(best_bare, t_bare)
            print(f"run {run + 1}: import {t_import:.3f} s, bare insert {t_bare:.3f} s, "
                  f"re-import (no change) {t_again:.3f} s")
        dialect = db.engine.dialect.name
    n = args.units
    print(f"database: {dialect}; {n} units, {len(rows)} owner rows, {len(data) / 1e6:.2f} MB CSV")
    print(f"import path : {n / best_import:,.0f} units/s ({best_import:.3f} s)")
    print(f"bare insert : {n / best_bare:,.0f} units/s ({best_bare:.3f} s)")
    print(f"ratio import/bare: {best_bare / best_import:.2f} (goal >= 0.30)")
    if tmp:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
