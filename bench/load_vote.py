#!/usr/bin/env python3
"""Load test: several hundred residents vote and change votes in the last minutes of a round.

    .venv/bin/python bench/load_vote.py --db postgresql            (or --db sqlite; --db both)
    options: --units 400 --changes 3 --concurrency 64 --workers N --threads N
    (default server: SQLite 1 worker x 4 threads, PostgreSQL 2 workers x 8 threads)

It builds a fresh database (create_all, then `flask db stamp head`), an estate with --units units
(one owner each) and an open round closing in 10 minutes, starts gunicorn on it, and lets every
resident (a thread with its own loopback address 127.0.x.y, as phones have their own addresses)
confirm their identity and cast --changes ballots through the JSON API, concurrently.

Then it checks, from the database: every accepted cast (HTTP 201) is exactly one ballot row with
its receipt code, no ballot exists that was not accepted, each unit's counted ballot is the last one
the resident was told was accepted, and the live tally and the stored result after closing equal a
recount from the ballot table. It prints requests/s, p50/p99 latency, the error count and 5xx count,
and exits 1 if anything is lost, duplicated, miscounted, or any response was a 5xx.
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from residents_app.rounds import links as links_svc  # noqa: E402  (after ROOT is on the path)
from tests.ops.multinode import Phone as MultinodePhone  # noqa: E402  (one resident's phone, shared with the test)

GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"
PG_ADMIN = os.environ.get("RAPP_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
SECRET = "load-test-secret"
CHOICES = ("agree", "disagree", "abstain")


# ---- database and data -----------------------------------------------------------------------

def make_database(kind: str, workdir: Path, admin: str = PG_ADMIN) -> tuple[str, callable]:
    if kind == "sqlite":
        return f"sqlite:///{workdir / 'load.db'}", lambda: None
    import psycopg
    from psycopg import sql

    name = f"rapp_load_{os.getpid()}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def drop():
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    return admin.rsplit("/", 1)[0] + "/" + name, drop


@dataclass
class Resident:
    unit_id: int
    token: str
    name: str
    last4: str
    area: Decimal


def seed(url: str, units: int, per_building: int = 40, closes_in: timedelta = timedelta(minutes=10)):
    """Register, links and an open round; returns (app, round_id, residents, closes_at)."""
    from flask_migrate import stamp

    from residents_app import create_app
    from residents_app.audit import db_guards
    from residents_app.db import utcnow
    from residents_app.extensions import db
    from residents_app.registry.models import Building, Estate, Owner, Ownership, StreetOffice, Unit
    from residents_app.rounds import services as rs

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": SECRET})
    with app.app_context():
        db.create_all()
        db_guards.install(db.engine)
        stamp()  # the schema is the models'; /readyz then reports ready
        now = utcnow()
        office = StreetOffice(code="LOAD", name="压测街道", district="鹿城区")
        db.session.add(office)
        db.session.flush()
        estate = Estate(code="LOAD-E", name="压测小区", street_office_id=office.id)
        db.session.add(estate)
        db.session.flush()
        rng = random.Random(7)
        people = {}
        for i in range(units):
            if i % per_building == 0:
                building = Building(estate_id=estate.id, name=f"{i // per_building + 1}幢")
                db.session.add(building)
                db.session.flush()
            area = Decimal(rng.randint(4000, 14000)).scaleb(-2)
            unit = Unit(estate_id=estate.id, building_id=building.id, number=f"{i % per_building + 101}",
                        title_area_m2=area)
            owner = Owner(estate_id=estate.id, name=f"业主{i:04d}", phone=f"139{i:08d}")
            db.session.add_all([unit, owner])
            db.session.flush()
            db.session.add(Ownership(unit_id=unit.id, owner_id=owner.id))
            people[unit.id] = (owner.name, owner.phone[-4:], area)
        db.session.flush()
        links = links_svc.issue_links(estate.id, now)
        data = rs.RoundInput(kind="general", matter_item=7, title="压测：加装电梯", opens_at=now - timedelta(hours=1),
                             closes_at=now + closes_in)
        rnd = rs.create_round(estate.id, data, now)
        rs.open_round(rnd.id, now)
        db.session.commit()
        residents = [Resident(unit.id, token, *people[unit.id]) for unit, token in links]
        return app, rnd.id, residents, rnd.closes_at


# ---- gunicorn --------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(url: str, port: int, workers: int, threads: int, logdir: Path) -> subprocess.Popen:
    # Several workers need shared rate-limit counters (the app refuses memory:// then): Redis, as in production.
    env = dict(os.environ, DATABASE_URL=url, SECRET_KEY=SECRET, PYTHONUNBUFFERED="1",
               RATELIMIT_STORAGE_URI=os.environ.get("RATELIMIT_STORAGE_URI", "redis://127.0.0.1:6379"))
    cmd = [str(GUNICORN), "-w", str(workers), "--threads", str(threads), "-b", f"127.0.0.1:{port}",
           "--access-logfile", str(logdir / "access.log"), "--error-logfile", str(logdir / "error.log"),
           "--graceful-timeout", "5", "wsgi:app"]
    app_log = open(logdir / "app.log", "ab")  # noqa: SIM115 - the app's own log lines, kept with gunicorn's
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=app_log, stderr=app_log)
    app_log.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"gunicorn did not become ready; see {logdir / 'error.log'}")


def stop_gunicorn(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


# ---- the simulated residents -----------------------------------------------------------------

@dataclass
class Call:
    kind: str
    status: int  # 0 = no HTTP response (connection refused or dropped)
    seconds: float
    at: float = 0.0  # time.perf_counter() when the response arrived


@dataclass
class Outcome:
    calls: list[Call] = field(default_factory=list)
    accepted: list[tuple[int, int, str, str]] = field(default_factory=list)  # (unit, n, choice, receipt)
    gave_up: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Phone(MultinodePhone):
    """One resident's phone (the multi-node test's: its own source address, keep-alive connection, session cookie);
    each request also gives the seconds it took."""

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict | None, float]:
        start = time.perf_counter()
        status, payload = super().request(method, path, body)
        return status, payload, time.perf_counter() - start


RETRY_STATUSES = {0, 503}  # what a person does on "服务暂时不可用": try again a little later


def resident_session(port: int, n: int, resident: Resident, round_id: int, changes: int, out: Outcome,
                     retries: int, seed_: int) -> None:
    rng = random.Random(seed_ * 100_003 + n)
    phone = Phone(port, f"127.0.{1 + n // 250}.{1 + n % 250}")

    def attempt(kind: str, path: str, body: dict) -> tuple[int, dict | None]:
        delay = 0.2
        for i in range(retries + 1):
            status, payload, seconds = phone.request("POST", path, body)
            with out.lock:
                out.calls.append(Call(kind, status, seconds, time.perf_counter()))
            if status not in RETRY_STATUSES or i == retries:
                return status, payload
            time.sleep(delay)
            delay = min(delay * 2, 3.0)
        return status, payload

    status, _ = attempt("identity", f"/api/ballot/{resident.token}/identity",
                        {"name": resident.name, "phone_last4": resident.last4})
    if status != 200:
        with out.lock:
            out.gave_up.append(f"unit {resident.unit_id}: identity {status}")
        phone.close()
        return
    for k in range(changes):
        choice = rng.choice(CHOICES)
        status, payload = attempt("cast", f"/api/ballot/{resident.token}/cast",
                                  {"round_id": round_id, "choice": choice})
        if status == 201:
            with out.lock:
                out.accepted.append((resident.unit_id, k, payload["choice"], payload["receipt_code"]))
        else:
            with out.lock:
                out.gave_up.append(f"unit {resident.unit_id}: cast {k} {status}")
    phone.close()


def run_residents(port: int, residents: list[Resident], round_id: int, changes: int, concurrency: int,
                  retries: int = 0, seed_: int = 1) -> tuple[Outcome, float]:
    out = Outcome()
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        futures = [pool.submit(resident_session, port, n, r, round_id, changes, out, retries, seed_)
                   for n, r in enumerate(residents)]
        for f in futures:
            f.result()
    return out, time.perf_counter() - start


# ---- checks ----------------------------------------------------------------------------------

def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def verify(app, round_id: int, residents: list[Resident], out: Outcome, closes_at, *,
           allow_unacknowledged: bool = False) -> dict:
    """Compare what the residents were told with the ballot table, the live tally and the result."""
    import sqlalchemy as sa

    from residents_app.extensions import db
    from residents_app.rounds import services as rs
    from residents_app.rounds import tally as tally_svc
    from residents_app.rounds.models import Ballot, CurrentBallot, RoundResult

    problems: list[str] = []
    with app.app_context():
        db.session.remove()
        rows = db.session.execute(
            sa.select(Ballot.id, Ballot.unit_id, Ballot.choice, Ballot.receipt_code, Ballot.status)
            .where(Ballot.round_id == round_id).order_by(Ballot.id)).all()
        current = dict(db.session.execute(sa.select(CurrentBallot.unit_id, CurrentBallot.ballot_id)
                                          .where(CurrentBallot.round_id == round_id)).all())
        receipts = Counter(r.receipt_code for r in rows)
        accepted = Counter(a[3] for a in out.accepted)
        duplicated = [c for c, n in receipts.items() if n > 1]
        lost = [c for c in accepted if c not in receipts]
        unacknowledged = [c for c in receipts if c not in accepted]
        if duplicated:
            problems.append(f"{len(duplicated)} receipt codes stored more than once")
        if [c for c, n in accepted.items() if n > 1]:
            problems.append("a receipt code was handed to two casts")
        if lost:
            problems.append(f"{len(lost)} accepted ballots are missing from the ballot table")
        if unacknowledged and not allow_unacknowledged:
            problems.append(f"{len(unacknowledged)} ballots stored that no resident was told were accepted")
        # Each unit: the counted ballot is the newest row, and the last one its resident saw accepted.
        newest: dict[int, tuple] = {}
        for r in rows:
            newest[r.unit_id] = r
        last_told: dict[int, tuple] = {}
        for unit_id, _k, choice, receipt in sorted(out.accepted, key=lambda a: (a[0], a[1])):
            last_told[unit_id] = (choice, receipt)
        for unit_id, r in newest.items():
            if current.get(unit_id) != r.id:
                problems.append(f"unit {unit_id}: counted ballot {current.get(unit_id)} is not the newest {r.id}")
            counted = [x for x in rows if x.unit_id == unit_id and x.status == "counted"]
            if len(counted) != 1 or counted[0].id != r.id:
                problems.append(f"unit {unit_id}: {len(counted)} ballots marked counted")
            told = last_told.get(unit_id)
            if told is not None and not allow_unacknowledged and told[1] != r.receipt_code:
                problems.append(f"unit {unit_id}: counted {r.receipt_code}, resident was last told {told[1]}")
        if set(current) != set(newest):
            problems.append("current_ballot rows do not match the units that voted")
        # Recount from the ballot table: each unit's newest ballot.
        area = {res.unit_id: res.area for res in residents}
        recount = {
            "voted_count": len(newest),
            "agree_count": sum(1 for r in newest.values() if r.choice == "agree"),
            "agree_area": sum((area[u] for u, r in newest.items() if r.choice == "agree"), Decimal("0.00")),
            "voted_area": sum((area[u] for u in newest), Decimal("0.00")),
        }
        live = tally_svc.compute_tally(round_id).to_dict()["figures"]
        live_cmp = {k: (live[k] if "count" in k else Decimal(live[k])) for k in recount}
        if live_cmp != recount:
            problems.append(f"live tally {live_cmp} != recount {recount}")
        # Close the round at its closing time and compare the stored result too.
        rs.close_round(round_id, closes_at)
        db.session.commit()
        stored = db.session.get(RoundResult, round_id).tally["figures"]
        stored_cmp = {k: (stored[k] if "count" in k else Decimal(stored[k])) for k in recount}
        if stored_cmp != recount:
            problems.append(f"stored result {stored_cmp} != recount {recount}")
        # Every ballot's entry is on the estate's chain (closing the round sealed what was still pending), once,
        # with its receipt, and the chain verifies.
        from residents_app.audit.models import AuditEvent
        from residents_app.audit.services import pending_count
        from residents_app.audit.verify import verify_chain

        estate_id = db.session.get(rs.Round, round_id).estate_id
        entries = Counter(data.get("receipt") for data in db.session.execute(
            sa.select(AuditEvent.data).where(AuditEvent.chain == estate_id, AuditEvent.kind == "ballot.cast"))
            .scalars())
        if entries != receipts:
            problems.append(f"ballot entries on the chain ({sum(entries.values())}) do not match the ballot rows")
        if pending_count(estate_id) or not verify_chain(estate_id).ok:
            problems.append("audit chain: entries left pending or the chain does not verify")
        # The stored counters (issue 19), moved by every cast under load, against a recount from the ballots; the
        # closed round's stored result against a recount from its chain. Any difference fails the run.
        from residents_app.rounds.recount import recount_problems

        problems.extend(f"recount: {p.describe()} ({p.code})" for p in recount_problems())
        db.session.remove()
    return {"ballot_rows": len(rows), "accepted": len(out.accepted), "lost": len(lost),
            "duplicated": len(duplicated), "unacknowledged": len(unacknowledged), "recount": recount,
            "problems": problems}


def cast_after_close(port: int, resident: Resident, round_id: int) -> int:
    phone = Phone(port, "127.0.250.250")
    phone.request("POST", f"/api/ballot/{resident.token}/identity",
                  {"name": resident.name, "phone_last4": resident.last4})
    status, payload, _ = phone.request("POST", f"/api/ballot/{resident.token}/cast",
                                       {"round_id": round_id, "choice": "agree"})
    phone.close()
    return status if payload is None else (status, payload.get("code"))


def summarise(out: Outcome, seconds: float) -> dict:
    statuses = Counter(c.status for c in out.calls)
    lat = [c.seconds for c in out.calls]
    return {
        "requests": len(out.calls), "seconds": round(seconds, 2),
        "rps": round(len(out.calls) / seconds, 1) if seconds else 0.0,
        "p50_ms": round(percentile(lat, 0.50) * 1000, 1), "p99_ms": round(percentile(lat, 0.99) * 1000, 1),
        "max_ms": round(max(lat, default=0) * 1000, 1),
        "statuses": dict(sorted(statuses.items())),
        "errors": sum(n for s, n in statuses.items() if s not in (200, 201)),
        "server_errors": sum(n for s, n in statuses.items() if s >= 500),
    }


def token_leaks(logdir: Path, residents: list[Resident]) -> int:
    text = "".join(p.read_text(errors="replace") for p in logdir.glob("*.log"))
    return sum(1 for r in residents if r.token in text)


DEFAULT_SERVER = {"sqlite": (1, 4), "postgresql": (2, 8)}


def run(kind: str, args) -> bool:
    args = argparse.Namespace(**vars(args))
    args.workers = args.workers or DEFAULT_SERVER[kind][0]
    args.threads = args.threads or DEFAULT_SERVER[kind][1]
    workdir = Path(tempfile.mkdtemp(prefix=f"load_{kind}_"))
    url, drop = make_database(kind, workdir)
    proc = None
    try:
        app, round_id, residents, closes_at = seed(url, args.units)
        port = free_port()
        proc = start_gunicorn(url, port, args.workers, args.threads, workdir)
        out, seconds = run_residents(port, residents, round_id, args.changes, args.concurrency)
        stats = summarise(out, seconds)
        leaks = token_leaks(workdir, residents)
        result = verify(app, round_id, residents, out, closes_at)
        after_close = cast_after_close(port, residents[0], round_id)
    finally:
        if proc is not None:
            stop_gunicorn(proc)
        with_app_dispose(locals().get("app"))
        drop()
    ok = (not result["problems"] and stats["server_errors"] == 0 and stats["errors"] == 0 and leaks == 0
          and after_close == (409, "vote_window_closed"))
    print(f"\n== {kind}: {args.units} residents x {args.changes} casts, concurrency {args.concurrency}, "
          f"gunicorn {args.workers} workers x {args.threads} threads")
    print(f"requests {stats['requests']} in {stats['seconds']} s = {stats['rps']} req/s; "
          f"latency p50 {stats['p50_ms']} ms, p99 {stats['p99_ms']} ms, max {stats['max_ms']} ms")
    print(f"statuses {stats['statuses']}; errors {stats['errors']}; 5xx {stats['server_errors']}")
    print(f"ballots: accepted {result['accepted']}, stored {result['ballot_rows']}, lost {result['lost']}, "
          f"duplicated {result['duplicated']}, stored but never acknowledged {result['unacknowledged']}")
    r = result["recount"]
    print(f"tally = recount from ballot table: voted {r['voted_count']} households / {r['voted_area']} m², "
          f"agree {r['agree_count']} households / {r['agree_area']} m² (live tally and stored result agree)"
          if not result["problems"] else f"PROBLEMS: {result['problems'][:10]}")
    recounts = [x for x in result["problems"] if x.startswith("recount:")]
    print(f"counters and stored results against a recount: {len(recounts)} differences (any fails the run)")
    print(f"cast after close: {after_close}; tokens found in gunicorn logs: {leaks}")
    print("RESULT:", "OK" if ok else "FAILED")
    return ok


def with_app_dispose(app) -> None:
    if app is None:
        return
    from residents_app.extensions import db

    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    p.add_argument("--units", type=int, default=400)
    p.add_argument("--changes", type=int, default=3, help="casts per resident (the later ones change the vote)")
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--workers", type=int, default=None, help="default: sqlite 1, postgresql 2")
    p.add_argument("--threads", type=int, default=None, help="default: sqlite 4, postgresql 8")
    args = p.parse_args()
    kinds = ("sqlite", "postgresql") if args.db == "both" else (args.db,)
    results = [run(kind, args) for kind in kinds]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
