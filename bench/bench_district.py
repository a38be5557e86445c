"""The street office's pages at district size (issue 19), each next to its one-query floor.

    .venv/bin/python bench/bench_district.py                    # PostgreSQL, 300 estates x 100 units
    .venv/bin/python bench/bench_district.py --estates 30       # a quick run
    .venv/bin/python bench/bench_district.py --units 1000       # the issue's size: 300,000 units
    .venv/bin/python bench/bench_district.py --db sqlite

The data set goes in with executemany (psycopg pipelines it): one street office, N estates of 10 buildings, their
units, owners and ownerships, an open round per estate with its frozen roll, counters and ballots for 60% of the
units (a few changed), a closed round with its stored result in every third estate. Each page is fetched through
the app (Flask test client, in process) `--repeat` times: the median next to the median of the one SQL query that
gives the same figures from the base tables, as `ratio R (goal <= G)`, with the page's statement count.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import timedelta
from decimal import Decimal

import sqlalchemy as sa
from common import create_schema, make_app, scratch_database
from sqlalchemy import event

GOALS = {"district": 3, "dashboard": 5, "tally": 5, "desk": 5}

FLOORS = {
    # Turnout of every estate's open rounds, live from the roll and the counted ballots.
    "district": """SELECT r.estate_id, count(*), count(cb.unit_id) FROM round r
        JOIN roll_entry e ON e.round_id = r.id
        LEFT JOIN current_ballot cb ON cb.round_id = e.round_id AND cb.unit_id = e.unit_id
        WHERE r.status = 'open' GROUP BY r.estate_id""",
    "dashboard": """SELECT r.id, e.building_id, cb.choice, count(*), sum(e.area_m2) FROM round r
        JOIN roll_entry e ON e.round_id = r.id
        LEFT JOIN current_ballot cb ON cb.round_id = e.round_id AND cb.unit_id = e.unit_id
        WHERE r.estate_id = :estate_id AND r.status = 'open' GROUP BY r.id, e.building_id, cb.choice""",
    "tally": """SELECT e.building_id, cb.choice, count(*), sum(e.area_m2) FROM roll_entry e
        LEFT JOIN current_ballot cb ON cb.round_id = e.round_id AND cb.unit_id = e.unit_id
        WHERE e.round_id = :round_id GROUP BY e.building_id, cb.choice""",
    "desk": """SELECT e.label, e.area_m2, b.id, b.choice, b.channel, b.status, b.cast_at FROM roll_entry e
        LEFT JOIN ballot b ON b.round_id = e.round_id AND b.unit_id = e.unit_id
        WHERE e.round_id = :round_id ORDER BY e.label, b.id""",
}


def build(app, n_estates: int, n_units: int) -> dict:
    from residents_app.auth.models import User
    from residents_app.db import utcnow
    from residents_app.extensions import db
    from residents_app.registry.models import Building, Estate, Owner, Ownership, StreetOffice, Unit
    from residents_app.rounds.counters import rebuild_counters
    from residents_app.rounds.models import Ballot, CurrentBallot, RollEntry, Round, RoundResult

    now = utcnow()
    with app.app_context():
        conn = db.session.connection()
        office = StreetOffice(code="BD", name="基准街道", district="基准区")
        db.session.add(office)
        db.session.flush()
        user = User(username="bench_street", role="street", street_office_id=office.id)
        user.set_password("correct-horse-1")
        db.session.add(user)
        conn.execute(sa.insert(Estate), [{"code": f"E{i:04d}", "name": f"基准小区{i:04d}",
                                          "street_office_id": office.id} for i in range(n_estates)])
        estates = list(db.session.execute(sa.select(Estate.id).order_by(Estate.id)).scalars())
        conn.execute(sa.insert(Building), [{"estate_id": e, "name": f"{b + 1}幢"} for e in estates for b in range(10)])
        buildings = db.session.execute(sa.select(Building.id, Building.estate_id, Building.name)
                                       .order_by(Building.id)).all()
        per_building = max(1, n_units // 10)
        conn.execute(sa.insert(Unit), [
            {"estate_id": e, "building_id": b, "number": str(101 + k), "title_area_m2": Decimal(6000 + (b * 31 + k * 7)
                                                                                            % 6000).scaleb(-2),
             "kind": "residential", "is_hardship": False}
            for b, e, _ in buildings for k in range(per_building)])
        units = db.session.execute(sa.select(Unit.id, Unit.estate_id, Unit.building_id, Unit.number,
                                             Unit.title_area_m2).order_by(Unit.id)).all()
        conn.execute(sa.insert(Owner), [{"estate_id": u.estate_id, "name": f"业主{u.id}", "phone": f"13{u.id:09d}"}
                                        for u in units])
        owners = list(db.session.execute(sa.select(Owner.id).order_by(Owner.id)).scalars())
        conn.execute(sa.insert(Ownership), [{"unit_id": u.id, "owner_id": o} for u, o in zip(units, owners,
                                                                                             strict=True)])
        conn.execute(sa.insert(Round), [
            {"estate_id": e, "kind": "willingness", "title": t, "status": s, "opens_at": now - timedelta(days=d),
             "closes_at": now + timedelta(days=c), "opened_at": now - timedelta(days=d),
             "closed_at": now - timedelta(days=1) if s == "closed" else None, "options": [
                 {"key": "agree", "label": "同意改造"}, {"key": "disagree", "label": "不同意改造"},
                 {"key": "abstain", "label": "弃权"}], "item_menu": [], "scope_building_ids": [],
             "created_at": now, "description": "", "rule_preset": "lucheng_double_two_thirds",
             "counting_mode": "household", "results_visibility": "live"}
            for i, e in enumerate(estates)
            for t, s, d, c in ((("是否同意改造", "open", 1, 14),) + ((("上一轮征求", "closed", 10, -1),) if i % 3 == 0
                                                                  else ()))])
        rounds = db.session.execute(sa.select(Round.id, Round.estate_id, Round.status)).all()
        names = {b.id: b.name for b in buildings}
        by_estate: dict[int, list] = {}
        for u in units:
            by_estate.setdefault(u.estate_id, []).append(u)
        for r in rounds:
            part = by_estate[r.estate_id]
            conn.execute(sa.insert(RollEntry), [
                {"round_id": r.id, "unit_id": u.id, "building_id": u.building_id, "building_name": names[u.building_id],
                 "unit_number": u.number, "label": f"{names[u.building_id]}-{u.number}", "area_m2": u.title_area_m2,
                 "owner_ids": [], "owner_names": []} for u in part])
            voting = [u for k, u in enumerate(part) if k % 5 < 3]
            conn.execute(sa.insert(Ballot), [
                {"round_id": r.id, "unit_id": u.id, "choice": "agree" if u.id % 4 else "disagree", "items": [],
                 "comment": "", "channel": "online", "status": "counted", "cast_at": now - timedelta(hours=2),
                 "proxy_name": "", "resolution_reason": ""} for u in voting])
        ballots = db.session.execute(sa.select(Ballot.id, Ballot.round_id, Ballot.unit_id, Ballot.choice)).all()
        conn.execute(sa.insert(CurrentBallot), [
            {"round_id": b.round_id, "unit_id": b.unit_id, "ballot_id": b.id, "choice": b.choice, "channel": "online",
             "cast_at": now - timedelta(hours=2)} for b in ballots])
        rebuild_counters([r.id for r in rounds])
        conn.execute(sa.insert(RoundResult), [
            {"round_id": r.id, "passed": False, "tally": {"figures": {}}, "agreeing_unit_labels": [],
             "closed_at": now - timedelta(days=1)} for r in rounds if r.status == "closed"])
        db.session.commit()
        if db.engine.dialect.name == "postgresql":
            with db.engine.connect() as c:
                c.execute(sa.text("ANALYZE"))
                c.commit()
        open_round = next(r for r in rounds if r.status == "open")
        return {"estate_id": open_round.estate_id, "round_id": open_round.id, "units": len(units),
                "ballots": len(ballots), "rounds": len(rounds)}


def median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def run(kind: str, n_estates: int, n_units: int, repeat: int) -> None:
    from residents_app.extensions import db

    with scratch_database(kind) as url:
        app = make_app(url)
        create_schema(app)
        t0 = time.perf_counter()
        ids = build(app, n_estates, n_units)
        print(f"[{kind}] built {n_estates} estates, {ids['units']:,} units, {ids['rounds']} rounds, "
              f"{ids['ballots']:,} ballots in {time.perf_counter() - t0:.1f} s")
        pages = {"district": "/district", "dashboard": f"/estates/{ids['estate_id']}/dashboard",
                 "tally": f"/rounds/{ids['round_id']}", "desk": f"/rounds/{ids['round_id']}/verify"}
        client = app.test_client()
        resp = client.post("/api/auth/login", json={"username": "bench_street", "password": "correct-horse-1"})
        assert resp.status_code == 200, resp.get_json()
        with app.app_context():
            engine = db.engine
        for name, url_ in pages.items():
            statements = []

            def count(conn, cursor, statement, *args, _s=statements):
                _s.append(statement)

            resp = client.get(url_)
            assert resp.status_code == 200, (name, resp.status_code)
            event.listen(engine, "before_cursor_execute", count)
            client.get(url_)
            event.remove(engine, "before_cursor_execute", count)
            page_ms = median_ms(lambda u=url_: client.get(u), repeat)
            with app.app_context():
                sql = sa.text(FLOORS[name])
                params = {"estate_id": ids["estate_id"], "round_id": ids["round_id"]}

                def floor(sql=sql, params=params):
                    db.session.execute(sql, params).all()

                floor()
                floor_ms = median_ms(floor, repeat)
                db.session.remove()
            ratio = page_ms / floor_ms if floor_ms else float("inf")
            print(f"[{kind}] {name:9s} {page_ms:8.1f} ms; one query {floor_ms:7.2f} ms; ratio {ratio:.2f} "
                  f"(goal <= {GOALS[name]}); statements {len(statements)}; {len(resp.get_data()):,} bytes")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="postgresql")
    parser.add_argument("--estates", type=int, default=300)
    parser.add_argument("--units", type=int, default=100, help="units per estate (the issue's size: 1000)")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    for kind in (("sqlite", "postgresql") if args.db == "both" else (args.db,)):
        run(kind, args.estates, args.units, args.repeat)


if __name__ == "__main__":
    main()
