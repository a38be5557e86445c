"""Casting ballots through the real endpoint under gunicorn vs a minimal Flask insert endpoint.

    .venv/bin/python bench/bench_ballot.py                 # SQLite and PostgreSQL
    .venv/bin/python bench/bench_ballot.py --db sqlite -n 2000

Both servers run under the same gunicorn settings (2 workers x 4 threads, gthread) on the same
scratch database, driven by the same threaded keep-alive client. The real path is
POST /api/ballot/<token>/cast with a resident session cookie: token lookup, session checks, window
check, roll and ownership checks, the ballot row, the audit hash-chain append (receipt), the upsert
of the counted ballot, the commit. The minimal path inserts one row and commits. Goal: ratio >= 0.6
and no 5xx.
"""

from __future__ import annotations

import argparse
from datetime import timedelta
from decimal import Decimal

from common import create_schema, gunicorn, make_app, run_load, scratch_database


def prepare(url: str, n_units: int):
    """An estate of n_units units, an open round, links and one signed resident cookie per unit."""
    import sqlalchemy as sa

    from residents_app.db import utcnow
    from residents_app.extensions import db
    from residents_app.registry.models import Building, Estate, Owner, Ownership, StreetOffice, Unit
    from residents_app.rounds import services as svc

    app = make_app(url)
    create_schema(app)
    with app.app_context():
        office = StreetOffice(code="B", name="基准街道")
        db.session.add(office)
        db.session.flush()
        estate = Estate(code="BENCH", name="基准小区", street_office_id=office.id)
        db.session.add(estate)
        db.session.flush()
        buildings = []
        for b in range(n_units // 100 + 1):
            buildings.append(Building(estate_id=estate.id, name=f"{b + 1}幢"))
        db.session.add_all(buildings)
        db.session.flush()
        conn = db.session.connection()
        conn.execute(sa.insert(Unit), [
            {"estate_id": estate.id, "building_id": buildings[i // 100].id, "number": str(1000 + i),
             "title_area_m2": Decimal(6000 + (i * 7919) % 8000).scaleb(-2), "kind": "residential",
             "is_hardship": False} for i in range(n_units)])
        conn.execute(sa.insert(Owner), [{"estate_id": estate.id, "name": f"业主{i}", "phone": f"13{i:09d}"}
                                        for i in range(n_units)])
        unit_ids = list(db.session.execute(sa.select(Unit.id).order_by(Unit.id)).scalars())
        owner_ids = list(db.session.execute(sa.select(Owner.id).order_by(Owner.id)).scalars())
        conn.execute(sa.insert(Ownership), [{"unit_id": u, "owner_id": o} for u, o in zip(unit_ids, owner_ids,
                                                                                         strict=True)])
        now = utcnow()
        rnd = svc.create_round(estate.id, svc.RoundInput(kind="willingness", title="基准", opens_at=now,
                                                         closes_at=now + timedelta(days=1)), now)
        svc.open_round(rnd.id, now, None)
        issued = svc.issue_links(estate.id, now)
        from residents_app.auth.resident import hash_token
        from residents_app.registry.models import UnitLink

        link_ids = dict(db.session.execute(sa.select(UnitLink.token_hash, UnitLink.id)).all())
        serializer = app.session_interface.get_signing_serializer(app)
        requests = []
        owner_of = dict(zip(unit_ids, owner_ids, strict=True))
        for unit, token in issued:
            cookie = serializer.dumps({"resident": {"unit_id": unit.id, "owner_id": owner_of[unit.id],
                                                    "link_id": link_ids[hash_token(token)]}})
            requests.append(("POST", f"/api/ballot/{token}/cast", {"round_id": rnd.id, "choice": "agree"},
                             {"Cookie": f"session={cookie}"}))
        db.session.commit()
        round_id = rnd.id
        db.session.remove()
        db.engine.dispose()
    return requests, round_id, app


def run(kind: str, n: int) -> dict:
    with scratch_database(kind) as url:
        requests, round_id, app = prepare(url, n)
        seq = min(200, n // 5)
        with gunicorn("bench.common:minimal_app()", url) as port:
            run_load(port, [("POST", "/insert", {}, {})] * 50)  # warm up
            minimal_seq_s, _ = run_load(port, [("POST", "/insert", {}, {})] * seq, concurrency=1)
            minimal_s, minimal_status = run_load(port, [("POST", "/insert", {}, {})] * n)
        with gunicorn("residents_app:create_app()", url) as port:
            warm, seq_part, requests = requests[:50], requests[50:50 + seq], requests[50 + seq:]
            run_load(port, warm)
            real_seq_s, _ = run_load(port, seq_part, concurrency=1)
            real_s, real_status = run_load(port, requests)
        from residents_app.rounds import services as svc

        with app.app_context():
            voted = svc.compute_tally(round_id).figures.voted_count
            from residents_app.extensions import db

            db.session.remove()
            db.engine.dispose()
    real_rps, minimal_rps = len(requests) / real_s, n / minimal_s
    return {"db": kind, "real_rps": real_rps, "minimal_rps": minimal_rps, "ratio": real_rps / minimal_rps,
            "seq_real_ms": real_seq_s / seq * 1000, "seq_minimal_ms": minimal_seq_s / seq * 1000,
            "real_status": real_status, "minimal_status": minimal_status, "counted": voted}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("-n", type=int, default=2000, help="ballots (one per unit)")
    args = parser.parse_args()
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    for kind in kinds:
        r = run(kind, args.n)
        fivexx = sum(c for s, c in r["real_status"].items() if s >= 500)
        print(f"[{r['db']}] cast via /api/ballot/<token>/cast: {r['real_rps']:.0f} req/s {r['real_status']}; "
              f"minimal insert: {r['minimal_rps']:.0f} req/s {r['minimal_status']}; "
              f"ratio {r['ratio']:.2f} (goal >= 0.6); 5xx {fivexx}; ballots counted {r['counted']}")
        print(f"[{r['db']}] one client at a time: cast {r['seq_real_ms']:.1f} ms/request, minimal insert "
              f"{r['seq_minimal_ms']:.1f} ms/request, ratio {r['seq_minimal_ms'] / r['seq_real_ms']:.2f}")


if __name__ == "__main__":
    main()
