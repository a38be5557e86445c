"""The scheduler's tick closing 300 due rounds, and `flask audit verify` of ~250,000 entries (issue 19 item 5).

    .venv/bin/python bench/bench_tick_verify.py                     # PostgreSQL, 300 estates of 1,000 units
    .venv/bin/python bench/bench_tick_verify.py --min-units 100     # estates of 100 to 1,000 units
    .venv/bin/python bench/bench_tick_verify.py --estates 30 --entries 20000   # a quick run

Data go in with executemany (psycopg pipelines it) and COPY for the audit entries: N estates of 10 buildings, of
1,000 units each by default (the issue's data set: 300 estates, 300,000 units; --min-units makes them from that
many up to --max-units), one owner per unit; an open round per estate whose window has ended, with its frozen roll,
ballots for 60% of the units and its stored counters; one hash chain per estate, ~250,000 entries in all.

Prints:
- the tick closing every round (rounds/closing.py: each round its own transaction, on SCHEDULER_CLOSE_CONNECTIONS
  connections at once) next to its one-query floor: the statement the tick itself reads every due round's
  figures with (rounds.closing.FIGURES_SQL: per round its counters by building and choice and its agreeing units,
  the chains' heads, the building names), run alone: `ratio R (goal <= 2)`, and the statements the tick ran; and,
  for scale, the time of one minimal transaction per round (a row lock and a commit), one after the other and on
  4 connections at once, on the same machine;
- the results of the tick checked against a recount of every round (counters and the stored results);
- `verify_all` (streamed, yield_per) next to its floor, reading every entry and hashing it in Python (the least
  any verification does), and the chains verified by 2 worker processes (`flask audit verify --jobs 2`).
"""

from __future__ import annotations

import argparse
import io
import time
from datetime import timedelta
from decimal import Decimal

import sqlalchemy as sa
from common import create_schema, make_app, scratch_database
from district_tick import figures_floor
from sqlalchemy import event


def units_of(i: int, lo: int, hi: int) -> int:
    """Units of the i-th estate: spread evenly from lo to hi (multiples of 10: 10 buildings)."""
    return (lo + (i * 7919) % (hi - lo + 1)) // 10 * 10


def build(app, n_estates: int, lo: int, hi: int, now) -> dict:
    from residents_app.extensions import db
    from residents_app.registry.models import Building, Estate, Owner, Ownership, StreetOffice, Unit
    from residents_app.rounds.counters import rebuild_counters
    from residents_app.rounds.models import Ballot, CurrentBallot, RollEntry, Round

    with app.app_context():
        conn = db.session.connection()
        office = StreetOffice(code="BT", name="基准街道", district="基准区")
        db.session.add(office)
        db.session.flush()
        conn.execute(sa.insert(Estate), [{"code": f"E{i:04d}", "name": f"基准小区{i:04d}",
                                          "street_office_id": office.id} for i in range(n_estates)])
        estates = list(db.session.execute(sa.select(Estate.id).order_by(Estate.id)).scalars())
        conn.execute(sa.insert(Building), [{"estate_id": e, "name": f"{b + 1}幢"} for e in estates for b in range(10)])
        buildings = db.session.execute(sa.select(Building.id, Building.estate_id, Building.name)
                                       .order_by(Building.id)).all()
        size = {e: units_of(i, lo, hi) // 10 for i, e in enumerate(estates)}
        conn.execute(sa.insert(Unit), [
            {"estate_id": e, "building_id": b, "number": str(101 + k),
             "title_area_m2": Decimal(6000 + (b * 31 + k * 7) % 6000).scaleb(-2), "kind": "residential",
             "is_hardship": False}
            for b, e, _ in buildings for k in range(size[e])])
        units = db.session.execute(sa.select(Unit.id, Unit.estate_id, Unit.building_id, Unit.number,
                                             Unit.title_area_m2).order_by(Unit.id)).all()
        conn.execute(sa.insert(Owner), [{"estate_id": u.estate_id, "name": f"业主{u.id}", "phone": f"13{u.id:09d}"}
                                        for u in units])
        owners = list(db.session.execute(sa.select(Owner.id).order_by(Owner.id)).scalars())
        conn.execute(sa.insert(Ownership), [{"unit_id": u.id, "owner_id": o}
                                            for u, o in zip(units, owners, strict=True)])
        conn.execute(sa.insert(Round), [
            {"estate_id": e, "kind": "willingness", "title": "是否同意改造", "status": "open",
             "opens_at": now - timedelta(days=15), "closes_at": now - timedelta(minutes=1 + i % 50),
             "opened_at": now - timedelta(days=15), "options": [
                 {"key": "agree", "label": "同意改造"}, {"key": "disagree", "label": "不同意改造"},
                 {"key": "abstain", "label": "弃权"}], "item_menu": [], "scope_building_ids": [],
             "created_at": now - timedelta(days=16), "description": "", "rule_preset": "lucheng_double_two_thirds",
             "counting_mode": "household", "results_visibility": "live"}
            for i, e in enumerate(estates)])
        rounds = db.session.execute(sa.select(Round.id, Round.estate_id)).all()
        names = {b.id: b.name for b in buildings}
        by_estate: dict[int, list] = {}
        for u in units:
            by_estate.setdefault(u.estate_id, []).append(u)
        for r in rounds:
            part = by_estate[r.estate_id]
            conn.execute(sa.insert(RollEntry), [
                {"round_id": r.id, "unit_id": u.id, "building_id": u.building_id,
                 "building_name": names[u.building_id], "unit_number": u.number,
                 "label": f"{names[u.building_id]}-{u.number}", "area_m2": u.title_area_m2,
                 "owner_ids": [], "owner_names": []}
                for u in part])
            # 60% vote; in some estates enough agree to pass (Lucheng: 2/3 of units and area)
            agree_share = 9 if r.estate_id % 3 == 0 else 4
            conn.execute(sa.insert(Ballot), [
                {"round_id": r.id, "unit_id": u.id, "choice": "agree" if u.id % 10 < agree_share else "disagree",
                 "items": [], "comment": "", "channel": "online", "status": "counted",
                 "cast_at": now - timedelta(days=2), "proxy_name": "", "resolution_reason": ""}
                for k, u in enumerate(part) if k % 5 < 3 or r.estate_id % 3 == 0])
        ballots = db.session.execute(sa.select(Ballot.id, Ballot.round_id, Ballot.unit_id, Ballot.choice)).all()
        conn.execute(sa.insert(CurrentBallot), [
            {"round_id": b.round_id, "unit_id": b.unit_id, "ballot_id": b.id, "choice": b.choice, "channel": "online",
             "cast_at": now - timedelta(days=2)} for b in ballots])
        rebuild_counters([r.id for r in rounds])
        db.session.commit()
        return {"estates": estates, "rounds": [r.id for r in rounds], "units": len(units), "ballots": len(ballots)}


def build_chains(app, estates: list[int], entries: int, now) -> int:
    """`entries` audit entries spread over the estates' chains, hashed as the app hashes them, in by COPY."""
    from residents_app.audit.chain import GENESIS, chain_entry
    from residents_app.extensions import db

    per_chain = max(1, entries // len(estates))
    cols = ("chain", "seq", "kind", "at", "actor", "subject_type", "subject_id", "data", "prev_hash", "hash")
    import json

    from residents_app.rounds.models import Ballot, Round

    total = 0
    with app.app_context():
        # Every counted ballot is on its estate's chain as `ballot.cast` (so the recount from the log agrees),
        # then other entries up to the chain's share of `entries`.
        cast: dict[int, list] = {}
        for estate_id, ballot_id, round_id, unit_id, choice in db.session.execute(
                sa.select(Round.estate_id, Ballot.id, Ballot.round_id, Ballot.unit_id, Ballot.choice)
                .join(Round, Round.id == Ballot.round_id).order_by(Ballot.id)):
            cast.setdefault(estate_id, []).append((ballot_id, round_id, unit_id, choice))
        db.session.rollback()
        raw = db.engine.raw_connection()
        try:
            cur = raw.cursor()
            for chain in estates:
                prev = GENESIS
                buf = io.StringIO()
                rows = []
                ballots = cast.get(chain, [])
                for seq in range(1, max(per_chain, len(ballots)) + 1):
                    if seq <= len(ballots):
                        ballot_id, round_id, unit_id, choice = ballots[seq - 1]
                        kind, subject_type, subject_id = "ballot.cast", "ballot", str(ballot_id)
                        data = {"round_id": round_id, "unit_id": unit_id, "choice": choice,
                                "receipt": f"{chain:08x}{seq:012x}"}
                    else:
                        kind, subject_type, subject_id = "export.downloaded", "round", "0"
                        data = {"what": "roll", "rows": seq}
                    e = chain_entry(chain=chain, seq=seq, kind=kind, at=now - timedelta(days=3, seconds=-seq),
                                    actor=f"unit:{seq}/owner:{seq}", subject_type=subject_type,
                                    subject_id=subject_id, data=data, prev_hash=prev)
                    prev = e["hash"]
                    rows.append(e)
                for e in rows:
                    buf.write("\t".join(json.dumps(e[c], ensure_ascii=False, sort_keys=True) if c == "data"
                                        else e[c].isoformat() if c == "at" else str(e[c]) for c in cols) + "\n")
                with cur.copy(f"COPY audit_event ({', '.join(cols)}) FROM STDIN") as copy:
                    copy.write(buf.getvalue())
                total += len(rows)
            raw.commit()
        finally:
            raw.close()
    return total


def run(n_estates: int, lo: int, hi: int, entries: int, verify: bool = True) -> None:
    from residents_app.db import utcnow
    from residents_app.extensions import db

    now = utcnow().replace(microsecond=0)
    with scratch_database("postgresql") as url:
        app = make_app(url, AUDIT_SEALER="inline")
        create_schema(app)
        t0 = time.perf_counter()
        ids = build(app, n_estates, lo, hi, now)
        n_entries = build_chains(app, ids["estates"], entries, now)
        with app.app_context():
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                c.execute(sa.text("VACUUM ANALYZE"))
        print(f"built {n_estates} estates, {ids['units']:,} units, {len(ids['rounds'])} due rounds, "
              f"{ids['ballots']:,} ballots, {n_entries:,} audit entries in {time.perf_counter() - t0:.1f} s")
        tick_part(app, ids, now)
        if verify:
            verify_part(app)


def tick_part(app, ids: dict, now) -> None:
    from residents_app.extensions import db
    from residents_app.rounds import closing
    from residents_app.rounds.counters import check_counters
    from residents_app.rounds.models import Round, RoundResult
    from residents_app.rounds.recount import recount_closed_rounds
    from residents_app.rounds.services import rounds_due_to_close
    from residents_app.scheduler.jobs import tick

    with app.app_context():
        # The floor: the tick's own read of every due round's figures (one statement), run alone.
        due = rounds_due_to_close(now)
        db.session.rollback()
        floor, rows = figures_floor(db.engine, due)
        floor_rounds = len({r[1] for r in rows if r[0] == 0})
        # What "each round in its own transaction" costs by itself on this machine: one minimal transaction per
        # round (its row locked, committed), nothing computed or written; one after the other, and on 4
        # connections at once.
        per_txn = minimal_transactions(db.engine, ids["rounds"], 1)
        per_txn_4 = minimal_transactions(db.engine, ids["rounds"], 4)
        statements: list[str] = []

        def count(conn, cursor, statement, *args):
            statements.append(statement)

        before = dict(closing.STATS)
        event.listen(db.engine, "before_cursor_execute", count)
        t0 = time.perf_counter()
        run = tick(now)
        took = time.perf_counter() - t0
        event.remove(db.engine, "before_cursor_execute", count)
        # The rounds' own statements go through psycopg's pipeline: counted by rounds.closing.STATS.
        pipelined = closing.STATS["statements"] - before["statements"]
        trips = closing.STATS["round_trips"] - before["round_trips"]
        fast = closing.STATS["fast"] - before["fast"]
        statements += ["(pipelined)"] * pipelined
        closed = sum(1 for a in run.actions if a["kind"] == "round_closed" and "error" not in a)
        errors = [a for a in run.actions if "error" in a]
        print(f"tick: {closed} rounds closed in {took:.3f} s ({took / max(closed, 1) * 1000:.2f} ms each); "
              f"one query {floor:.3f} s ({floor_rounds} rounds); ratio {took / floor:.2f} (goal <= 2); "
              f"statements {len(statements)} ({len(statements) / max(closed, 1):.1f} per round, {pipelined} of them in "
              f"{trips} pipelined round trips; {fast} rounds closed as planned, on "
              f"{app.config['SCHEDULER_CLOSE_CONNECTIONS']} connections); errors {len(errors)}")
        print(f"  (floor of {len(ids['rounds'])} minimal transactions, a row lock and a commit each: {per_txn:.3f} s; "
              f"on 4 connections at once {per_txn_4:.3f} s; tick / the latter {took / per_txn_4:.2f})")
        again = tick(now)
        print(f"tick again: {sum(1 for a in again.actions if a['kind'] == 'round_closed')} rounds closed (no-op)")
        results = db.session.execute(sa.select(sa.func.count()).select_from(RoundResult)).scalar_one()
        still_open = db.session.execute(sa.select(sa.func.count()).select_from(Round)
                                        .where(Round.status == "open")).scalar_one()
        passed = db.session.execute(sa.select(sa.func.count()).select_from(RoundResult)
                                    .where(RoundResult.passed.is_(True))).scalar_one()
        t0 = time.perf_counter()
        problems = check_counters() + recount_closed_rounds(None)
        print(f"results stored {results} ({passed} passed), still open {still_open}; counters and stored results "
              f"against a recount: {len(problems)} differences ({time.perf_counter() - t0:.1f} s)")
        db.session.remove()


def minimal_transactions(engine, round_ids: list[int], n: int) -> float:
    """Seconds for one transaction per round (its row locked FOR UPDATE, committed), on n connections at once."""
    import threading

    lanes = [round_ids[i::n] for i in range(n)]
    raws = [engine.raw_connection() for _ in range(n)]
    barrier = threading.Barrier(n + 1)

    def lane(raw, rids):
        cur = raw.cursor()
        barrier.wait()
        for rid in rids:
            cur.execute("SELECT id FROM round WHERE id = %s FOR UPDATE", (rid,))
            cur.fetchall()
            raw.commit()

    threads = [threading.Thread(target=lane, args=(raw, rids)) for raw, rids in zip(raws, lanes, strict=True)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    took = time.perf_counter() - t0
    for raw in raws:
        raw.close()
    return took


def verify_part(app) -> None:
    from residents_app.audit.chain import compute_hash
    from residents_app.audit.models import AuditEvent
    from residents_app.audit.parallel import verify_chains
    from residents_app.audit.verify import COLUMNS, chains_present, verify_all
    from residents_app.extensions import db

    with app.app_context():
        t0 = time.perf_counter()
        n = 0
        result = db.session.execute(sa.select(*[AuditEvent.__table__.c[c] for c in COLUMNS])
                                    .order_by(AuditEvent.chain, AuditEvent.seq).execution_options(yield_per=1000))
        bad = 0
        for ev in result:
            n += 1
            bad += compute_hash(ev) != ev.hash
        floor = time.perf_counter() - t0
        db.session.rollback()
        t0 = time.perf_counter()
        reports = verify_all()
        streamed = time.perf_counter() - t0
        entries = sum(r.entry_count for r in reports)
        ok = all(r.ok for r in reports)
        chains = chains_present()
        db.session.remove()
        print(f"audit verify: {entries:,} entries in {len(reports)} chains, all intact: {ok} ({bad} bad hashes "
              f"in the floor's read)")
        print(f"  streamed (1 process) {streamed:.2f} s; read + hash in Python {floor:.2f} s ({n:,} rows); "
              f"ratio {streamed / floor:.2f}")
        for jobs in (2,):
            t0 = time.perf_counter()
            par = verify_chains(chains, jobs=jobs)
            took = time.perf_counter() - t0
            same = [(r.chain, r.entry_count, r.head_hash) for r in par] == \
                [(r.chain, r.entry_count, r.head_hash) for r in reports]
            print(f"  --jobs {jobs}: {took:.2f} s; ratio to the 1-process floor {took / floor:.2f}; "
                  f"same reports as 1 process: {same}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--estates", type=int, default=300)
    parser.add_argument("--min-units", type=int, default=1000)
    parser.add_argument("--max-units", type=int, default=1000)
    parser.add_argument("--entries", type=int, default=250_000)
    parser.add_argument("--skip-verify", action="store_true", help="the tick only")
    args = parser.parse_args()
    run(args.estates, args.min_units, args.max_units, args.entries, verify=not args.skip_verify)


if __name__ == "__main__":
    main()
