"""Statements of an estate of 3,000 units and 40 items: the real path vs one SQL aggregate of the same sums.

    .venv/bin/python bench/bench_statements.py                  # SQLite and PostgreSQL
    .venv/bin/python bench/bench_statements.py --db sqlite -n 3000 --items 40

Loads an estate of n units in 30 buildings with a published plan of `items` items (half estate-wide, half for
three buildings each, all four categories), then compares the median of 5 runs of
residents_app.funding.services.compute_plan (what the statements export, the API and the start gate use:
loads units, hardship, items and sources through the ORM, then the exact fen engine with largest remainder)
followed by every unit's owed amount, with one SQL aggregate (a CTE computing each item's scope area, then
each unit's residents' share summed over its items, in floating point) on the same connection. Goal: ratio <= 2.
Both sides run without the per-m² cap (the SQL does not apply it); the SQL's float sums are checked to be within
one fen per item of the exact fen (largest remainder) amounts.
"""

from __future__ import annotations

import argparse
import statistics
import time
from decimal import Decimal

from common import create_schema, make_app, scratch_database

CATEGORIES = ("required", "basic", "improvement", "upgrade")
PCT = {"required": 0, "basic": 10, "improvement": 30, "upgrade": 70}


def _area(i: int) -> Decimal:
    return Decimal(6000 + (i * 7919) % 8000).scaleb(-2)


def load(app, n: int, n_items: int) -> int:
    import sqlalchemy as sa

    from residents_app.db import utcnow
    from residents_app.extensions import db
    from residents_app.plans.models import PlanItem, PlanVersion, plan_item_building
    from residents_app.registry.models import Building, Estate, StreetOffice, Unit

    with app.app_context():
        office = StreetOffice(code="S", name="基准街道")
        db.session.add(office)
        db.session.flush()
        estate = Estate(code="STMT", name="基准小区", street_office_id=office.id)
        db.session.add(estate)
        db.session.flush()
        buildings = [Building(estate_id=estate.id, name=f"{b + 1:02d}幢") for b in range(30)]
        db.session.add_all(buildings)
        db.session.flush()
        per = -(-n // 30)
        db.session.connection().execute(sa.insert(Unit), [
            {"estate_id": estate.id, "building_id": buildings[i // per].id, "number": f"{i % per + 1:03d}",
             "title_area_m2": _area(i), "kind": "residential", "is_hardship": False} for i in range(n)])
        now = utcnow()
        plan = PlanVersion(estate_id=estate.id, number=1, title="基准方案", status="draft", created_at=now)
        db.session.add(plan)
        db.session.flush()
        for k in range(n_items):
            estate_wide = k % 2 == 0
            item = PlanItem(plan_version_id=plan.id, position=k, name=f"项目{k + 1}", category=CATEGORIES[k % 4],
                            scope="estate" if estate_wide else "buildings",
                            cost_fen=(k + 1) * 1_000_000 + k * 7919, description="")
            db.session.add(item)
            db.session.flush()
            if not estate_wide:
                db.session.connection().execute(sa.insert(plan_item_building), [
                    {"plan_item_id": item.id, "building_id": buildings[(k + j) % 30].id} for j in range(3)])
        plan.status, plan.published_at = "published", now
        db.session.commit()
        if db.engine.dialect.name == "postgresql":
            with db.engine.connect() as c:
                c.execute(sa.text("ANALYZE"))
                c.commit()
        return plan.id


RAW = """WITH scope AS (
  SELECT pi.id AS item_id, u.id AS unit_id, u.title_area_m2 AS area,
         pi.cost_fen * (CASE pi.category WHEN 'required' THEN 0 WHEN 'basic' THEN 10
                        WHEN 'improvement' THEN 30 ELSE 70 END) / 100.0 AS resident
  FROM plan_item pi JOIN plan_version pv ON pv.id = pi.plan_version_id JOIN unit u ON u.estate_id = pv.estate_id
  WHERE pi.plan_version_id = :pid AND (pi.scope = 'estate' OR u.building_id IN (
        SELECT pib.building_id FROM plan_item_building pib WHERE pib.plan_item_id = pi.id))),
areas AS (SELECT item_id, sum(area) AS scope_area FROM scope GROUP BY item_id)
SELECT s.unit_id, sum(s.resident * s.area / a.scope_area) AS owed
FROM scope s JOIN areas a ON a.item_id = s.item_id GROUP BY s.unit_id"""


def run(kind: str, n: int, n_items: int) -> dict:
    import sqlalchemy as sa

    with scratch_database(kind) as url:
        app = make_app(url)
        create_schema(app)
        t0 = time.perf_counter()
        pid = load(app, n, n_items)
        load_s = time.perf_counter() - t0
        from residents_app.core.money import Rule
        from residents_app.extensions import db
        from residents_app.funding import services
        from residents_app.plans.models import PlanVersion

        with app.app_context():
            raw_times, real_times = [], []
            # No cap in the comparison (the SQL does not apply it): a rule with a cap high enough never to bite.
            rule = Rule(pct=dict(PCT), cap_fen_per_m2=10**12)
            for _ in range(6):  # the first run of each warms caches and is dropped
                t = time.perf_counter()
                rows = db.session.execute(sa.text(RAW), {"pid": pid}).all()
                raw_times.append(time.perf_counter() - t)
                db.session.rollback()
                t = time.perf_counter()
                plan = db.session.get(PlanVersion, pid)
                c = services.compute_plan(plan, rule=rule)
                owed = {k: u.owed_fen for k, u in c.units.items()}
                real_times.append(time.perf_counter() - t)
                db.session.rollback()
                db.session.expire_all()
            raw = {uid: float(v) for uid, v in rows}
            worst = max(abs(owed[uid] - raw[uid]) for uid in raw)
            assert len(raw) == len(owed) == n and worst <= n_items, worst  # within one fen per item
            total = sum(owed.values())
            db.session.remove()
            db.engine.dispose()
    raw_s, real_s = statistics.median(raw_times[1:]), statistics.median(real_times[1:])
    return {"db": kind, "n": n, "items": n_items, "load_s": load_s, "raw_ms": raw_s * 1000,
            "real_ms": real_s * 1000, "ratio": real_s / raw_s, "total_fen": total, "worst_fen": worst}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("-n", type=int, default=3_000)
    parser.add_argument("--items", type=int, default=40)
    args = parser.parse_args()
    for kind in (["sqlite", "postgresql"] if args.db == "both" else [args.db]):
        r = run(kind, args.n, args.items)
        print(f"[{r['db']}] {r['n']} units × {r['items']} items (loaded in {r['load_s']:.1f} s): "
              f"compute_plan + every unit's statement total {r['real_ms']:.1f} ms, "
              f"one SQL aggregate {r['raw_ms']:.1f} ms, ratio {r['ratio']:.2f} (goal <= 2); "
              f"residents owe {r['total_fen']} fen in all, SQL floats within {r['worst_fen']:.2f} fen per unit")


if __name__ == "__main__":
    main()
