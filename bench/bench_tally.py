"""Tally over 100,000 units and ballots vs one raw SQL aggregate over the same tables.

    .venv/bin/python bench/bench_tally.py                  # SQLite and PostgreSQL
    .venv/bin/python bench/bench_tally.py --db postgresql -n 100000

Loads a frozen roll of n units (100 buildings) with n counted ballots (70% agree, 20% disagree,
10% abstain; every 10th unit without a ballot) and compares the median of 5 runs of
residents_app.rounds.tally.compute_tally (household mode: SQL GROUP BY building and choice,
SUM over integer hundredths, then the exact threshold engine) with one raw SQL aggregate
(count and sum of area grouped by choice) executed on the same connection. Goal: ratio <= 1.5.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import timedelta

from common import create_schema, make_app, scratch_database


def load(app, n: int) -> int:
    import sqlalchemy as sa

    from residents_app.db import utcnow
    from residents_app.extensions import db
    from residents_app.registry.models import Building, Estate, StreetOffice, Unit
    from residents_app.rounds.models import Ballot, CurrentBallot, RollEntry, Round

    with app.app_context():
        office = StreetOffice(code="T", name="基准街道")
        db.session.add(office)
        db.session.flush()
        estate = Estate(code="TALLY", name="基准小区", street_office_id=office.id)
        db.session.add(estate)
        db.session.flush()
        buildings = [Building(estate_id=estate.id, name=f"{b + 1}幢") for b in range(100)]
        db.session.add_all(buildings)
        db.session.flush()
        per = n // 100
        conn = db.session.connection()
        now = utcnow()
        rnd = Round(estate_id=estate.id, kind="willingness", title="基准", options=[], status="open",
                    opens_at=now - timedelta(days=1), closes_at=now + timedelta(days=1), opened_at=now)
        db.session.add(rnd)
        db.session.flush()
        chunk = 10_000
        for start in range(0, n, chunk):
            rows = range(start, min(n, start + chunk))
            conn.execute(sa.insert(Unit), [
                {"estate_id": estate.id, "building_id": buildings[i // per].id, "number": str(i),
                 "title_area_m2": _area(i), "kind": "residential", "is_hardship": False} for i in rows])
        units = db.session.execute(sa.select(Unit.id, Unit.building_id, Unit.number, Unit.title_area_m2)
                                   .where(Unit.estate_id == estate.id).order_by(Unit.id)).all()
        names = {b.id: b.name for b in buildings}
        for start in range(0, n, chunk):
            part = units[start:start + chunk]
            conn.execute(sa.insert(RollEntry), [
                {"round_id": rnd.id, "unit_id": u.id, "building_id": u.building_id,
                 "building_name": names[u.building_id],
                 "unit_number": u.number, "label": f"{names[u.building_id]}-{u.number}", "area_m2": u.title_area_m2,
                 "owner_ids": [], "owner_names": []} for u in part])
            voting = [u for k, u in enumerate(part) if (start + k) % 10 != 9]
            conn.execute(sa.insert(Ballot), [
                {"round_id": rnd.id, "unit_id": u.id, "choice": _choice(u.id), "items": [], "comment": "",
                 "channel": "online", "status": "counted", "cast_at": now, "proxy_name": "", "resolution_reason": ""}
                for u in voting])
        ballots = db.session.execute(sa.select(Ballot.id, Ballot.unit_id, Ballot.choice)
                                     .where(Ballot.round_id == rnd.id)).all()
        for start in range(0, len(ballots), chunk):
            conn.execute(sa.insert(CurrentBallot), [
                {"round_id": rnd.id, "unit_id": b.unit_id, "ballot_id": b.id, "choice": b.choice, "channel": "online",
                 "cast_at": now} for b in ballots[start:start + chunk]])
        # Loaded behind the cast paths' back: the counters (issue 19) rebuilt as `flask rounds recount --rebuild`.
        from residents_app.rounds.counters import rebuild_counters

        rebuild_counters([rnd.id])
        db.session.commit()
        if db.engine.dialect.name == "postgresql":
            with db.engine.connect() as c:
                c.execute(sa.text("ANALYZE"))
                c.commit()
        return rnd.id


def _area(i: int):
    from decimal import Decimal

    return Decimal(6000 + (i * 7919) % 8000).scaleb(-2)


def _choice(unit_id: int) -> str:
    r = unit_id % 10
    return "agree" if r < 7 else "disagree" if r < 9 else "abstain"


RAW = """SELECT cb.choice, count(*), sum(r.area_m2)
FROM roll_entry r LEFT JOIN current_ballot cb ON cb.round_id = r.round_id AND cb.unit_id = r.unit_id
WHERE r.round_id = :rid GROUP BY cb.choice"""


def run(kind: str, n: int) -> dict:
    import sqlalchemy as sa

    with scratch_database(kind) as url:
        app = make_app(url)
        create_schema(app)
        t0 = time.perf_counter()
        rid = load(app, n)
        load_s = time.perf_counter() - t0
        from residents_app.extensions import db
        from residents_app.rounds import tally as tally_svc

        with app.app_context():
            raw_times, tally_times = [], []
            for _ in range(6):  # the first run of each warms caches and is dropped
                t = time.perf_counter()
                rows = db.session.execute(sa.text(RAW), {"rid": rid}).all()
                raw_times.append(time.perf_counter() - t)
                db.session.rollback()
                t = time.perf_counter()
                tally = tally_svc.compute_tally(rid)
                tally_times.append(time.perf_counter() - t)
                db.session.rollback()
            raw_agree = next(int(r[2]) for r in rows if r[0] == "agree")
            assert raw_agree == tally.figures.agree_area, (raw_agree, tally.figures.agree_area)
            d = tally.to_dict()
            db.session.remove()
            db.engine.dispose()
    raw, real = statistics.median(raw_times[1:]), statistics.median(tally_times[1:])
    return {"db": kind, "n": n, "load_s": load_s, "raw_ms": raw * 1000, "tally_ms": real * 1000, "ratio": real / raw,
            "figures": d["figures"], "passed": d["passed"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("-n", type=int, default=100_000)
    args = parser.parse_args()
    for kind in (["sqlite", "postgresql"] if args.db == "both" else [args.db]):
        r = run(kind, args.n)
        print(f"[{r['db']}] {r['n']} units/ballots (loaded in {r['load_s']:.1f} s): "
              f"compute_tally {r['tally_ms']:.1f} ms, "
              f"raw SQL aggregate {r['raw_ms']:.1f} ms, ratio {r['ratio']:.2f} (goal <= 1.5); "
              f"agree {r['figures']['agree_count']} households / {r['figures']['agree_area']} m², passed {r['passed']}")


if __name__ == "__main__":
    main()
