"""Casting ballots through the real endpoint under gunicorn vs a minimal Flask insert endpoint.

    .venv/bin/python bench/bench_ballot.py                 # SQLite and PostgreSQL
    .venv/bin/python bench/bench_ballot.py --db sqlite -n 2000
    .venv/bin/python bench/bench_ballot.py --counting-mode person   # a person-counted round (person counters)

Both servers run at the same time under the same gunicorn settings (default 2 workers x 4 threads,
gthread) on the same scratch database, driven by the same threaded keep-alive client (8 clients); the
load alternates between them in rounds so a noisy machine weighs on both alike. Every cast must come
back 201 and end up counted with a receipt, or the run fails. The real path is
POST /api/ballot/<token>/cast with a resident session cookie: token lookup, session checks, window
check, roll and ownership checks, the ballot row, the audit hash-chain append (receipt), the upsert
of the counted ballot, the commit. The minimal path inserts one row and commits. Goal: ratio >= 0.6
and no 5xx.
"""

from __future__ import annotations

import argparse
from datetime import timedelta
from decimal import Decimal

import sqlalchemy as sa
from common import create_schema, gunicorn, make_app, run_load, scratch_database

from residents_app.rounds import links as links_svc


def prepare(url: str, n_units: int, counting_mode: str = "household"):
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
                                                         closes_at=now + timedelta(days=1),
                                                         counting_mode=counting_mode), now)
        svc.open_round(rnd.id, now, None)
        issued = links_svc.issue_links(estate.id, now)
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


def _wait_sealed(app, timeout: float = 30.0) -> float | None:
    """Seconds until no audit event is left pending (None: still some after `timeout`)."""
    import time

    from residents_app.audit.services import pending_count
    from residents_app.extensions import db

    start = time.monotonic()
    while time.monotonic() - start < timeout:
        with app.app_context():
            left = pending_count()
            db.session.remove()
        if left == 0:
            return time.monotonic() - start
        time.sleep(0.02)
    return None


def _chunks(items: list, parts: int) -> list[list]:
    size = -(-len(items) // parts)
    return [items[i:i + size] for i in range(0, len(items), size)]


def run(kind: str, n: int, rounds: int = 4, workers: int = 2, threads: int = 4, clients: int = 8,
        counting_mode: str = "household") -> dict:
    """Both servers run at once (same gunicorn settings, same database); the load alternates between them
    in `rounds` chunks (minimal first in odd rounds, the cast first in even ones) so that the noise of a
    shared machine falls on both sides alike. Times are summed per side."""
    with scratch_database(kind) as url:
        requests, round_id, app = prepare(url, n, counting_mode)
        seq = min(200, n // 5)
        warm, seq_part, load = requests[:50], requests[50:50 + seq], requests[50 + seq:]
        insert = ("POST", "/insert", {}, {})
        with gunicorn("bench.common:minimal_app()", url, workers, threads) as mport, \
                gunicorn("residents_app:create_app()", url, workers, threads) as rport:
            run_load(mport, [insert] * 50, concurrency=clients)  # warm up both (connections, caches)
            run_load(rport, warm, concurrency=clients)
            times = {"minimal_seq": 0.0, "real_seq": 0.0, "minimal": 0.0, "real": 0.0}
            status = {"minimal": {}, "real": {}}
            counts = {"minimal_seq": 0, "real_seq": 0, "minimal": 0, "real": 0}

            def measure(side: str, port: int, batch: list, concurrency: int, key: str):
                seconds, st = run_load(port, batch, concurrency=concurrency)
                times[key] += seconds
                counts[key] += len(batch)
                for code, c in st.items():
                    status[side][code] = status[side].get(code, 0) + c

            for i, (sq, ld) in enumerate(zip(_chunks(seq_part, rounds), _chunks(load, rounds), strict=True)):
                order = [("minimal", mport, [insert] * len(sq), [insert] * len(ld)), ("real", rport, sq, ld)]
                for side, port, seq_batch, load_batch in (order if i % 2 == 0 else order[::-1]):
                    measure(side, port, seq_batch, 1, f"{side}_seq")
                    measure(side, port, load_batch, clients, side)
            sealed_after = _wait_sealed(app)  # the servers' sealer threads move the last events onto the chain
        from residents_app.audit.models import AuditEvent
        from residents_app.audit.verify import verify_chain
        from residents_app.extensions import db
        from residents_app.rounds import tally
        from residents_app.rounds.models import Ballot, Round

        with app.app_context():
            voted = tally.compute_tally(round_id).figures.voted_count
            estate_id = db.session.get(Round, round_id).estate_id
            chain = verify_chain(estate_id)
            cast_events = db.session.execute(sa.select(sa.func.count()).select_from(AuditEvent).where(
                AuditEvent.chain == estate_id, AuditEvent.kind == "ballot.cast")).scalar_one()
            receipts = db.session.execute(sa.select(sa.func.count()).select_from(Ballot).where(
                Ballot.round_id == round_id, Ballot.status == "counted", Ballot.receipt_code.is_not(None))
            ).scalar_one()
            db.session.remove()
            db.engine.dispose()
    real_rps, minimal_rps = counts["real"] / times["real"], counts["minimal"] / times["minimal"]
    return {"db": kind, "real_rps": real_rps, "minimal_rps": minimal_rps, "ratio": real_rps / minimal_rps,
            "seq_real_ms": times["real_seq"] / counts["real_seq"] * 1000,
            "seq_minimal_ms": times["minimal_seq"] / counts["minimal_seq"] * 1000,
            "real_status": status["real"], "minimal_status": status["minimal"], "counted": voted,
            "receipts": receipts, "cast_requests": len(requests), "chain_ok": chain.ok, "cast_events": cast_events,
            "sealed_after_s": sealed_after, "config": f"{workers}x{threads} gthread, "
            f"{clients} clients, {rounds} alternating rounds, {counting_mode}-counted round"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("-n", type=int, default=3000, help="ballots (one per unit)")
    parser.add_argument("--rounds", type=int, default=6, help="alternating measurement rounds")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (both servers)")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker (both servers)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent keep-alive clients (both servers)")
    parser.add_argument("--counting-mode", choices=["household", "person"], default="household",
                        help="the round's counting mode (person: the casts also move the person counters)")
    args = parser.parse_args()
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    failed = False
    for kind in kinds:
        r = run(kind, args.n, args.rounds, args.workers, args.threads, args.clients, args.counting_mode)
        fivexx = sum(c for s, c in r["real_status"].items() if s >= 500)
        # Every cast must be an accepted ballot (201, counted, with a receipt), or the figure means nothing.
        # And every ballot's audit event is on the estate's chain, which verifies, nothing left pending.
        accepted = (set(r["real_status"]) == {201} and r["counted"] == r["cast_requests"]
                    and r["receipts"] == r["cast_requests"] and set(r["minimal_status"]) == {201}
                    and r["cast_events"] == r["cast_requests"] and r["chain_ok"] and r["sealed_after_s"] is not None)
        failed |= not accepted
        print(f"[{r['db']}] {r['config']}")
        print(f"[{r['db']}] cast via /api/ballot/<token>/cast: {r['real_rps']:.0f} req/s {r['real_status']}; "
              f"minimal insert: {r['minimal_rps']:.0f} req/s {r['minimal_status']}; "
              f"ratio {r['ratio']:.2f} (goal >= 0.6); 5xx {fivexx}; ballots counted {r['counted']} "
              f"of {r['cast_requests']} cast, {r['receipts']} with a receipt; "
              f"{r['cast_events']} ballot entries on the audit chain (verified: {r['chain_ok']}; last sealed "
              f"{(r['sealed_after_s'] or 0) * 1000:.0f} ms after the load); "
              f"{'all accepted' if accepted else 'NOT ALL ACCEPTED'}")
        print(f"[{r['db']}] one client at a time: cast {r['seq_real_ms']:.2f} ms/request, minimal insert "
              f"{r['seq_minimal_ms']:.2f} ms/request, ratio {r['seq_minimal_ms'] / r['seq_real_ms']:.2f}")
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
