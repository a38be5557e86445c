"""The street office's pages at district size and the city view at city size (issue 19), each next to its
one-query floor.

    .venv/bin/python bench/bench_district.py --estates 300 --units 1000   # the issue's district data set
    .venv/bin/python bench/bench_district.py --estates 30                 # a quick run
    .venv/bin/python bench/bench_district.py --estates 3000 --units 1000  # the city size: 10 street offices

PostgreSQL only: the data set goes in with COPY (psycopg's cursor.copy, ids given by the builder), the closed
rounds and the plans through the project's services (see build()). The street office of the first 300 estates
measures its district view, the estate dashboard, the tally page and the desk; the district housing bureau
(role bureau, over every street office) measures the city view. Each page is fetched through the app (Flask test
client, in process) `--repeat` times, alternating with the one SQL query that gives the same figures from the base
tables (so that both see the same moments of a shared machine): the page's median next to the query's, as
`ratio R (goal <= G)`, with the page's statement count. Then the scheduler's tick closing the data set's open
rounds, on copies of the database (bench/district_tick.py; `--tick-runs`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import time
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from common import create_schema, make_app, scratch_database
from district_tick import tick_row
from district_votes import (
    BALLOT_COLUMNS,
    CURRENT_COLUMNS,
    EVENT_COLUMNS,
    EVENTS_SHARE,
    FILE_COLUMNS,
    MANDATE_COLUMNS,
    build_votes,
)
from sqlalchemy import event
from sqlalchemy.orm import Session

GOALS = {"district": 3, "dashboard": 5, "tally": 5, "desk": 5, "city": 3}
GOALS_MS = {"district": 200, "city": 500}  # the absolute goals (median, ms)

FLOORS = {
    # Turnout of every estate's open rounds, live from the roll and the counted ballots.
    "district": """SELECT r.estate_id, count(*), count(cb.unit_id) FROM round r
        JOIN roll_entry e ON e.round_id = r.id
        LEFT JOIN current_ballot cb ON cb.round_id = e.round_id AND cb.unit_id = e.unit_id
        WHERE r.status = 'open' GROUP BY r.estate_id""",
    # The city: the same turnout over every estate of the district, with its street office.
    "city": """SELECT s.id, r.estate_id, count(*), count(cb.unit_id) FROM street_office s
        JOIN estate es ON es.street_office_id = s.id JOIN round r ON r.estate_id = es.id
        JOIN roll_entry e ON e.round_id = r.id
        LEFT JOIN current_ballot cb ON cb.round_id = e.round_id AND cb.unit_id = e.unit_id
        WHERE r.status = 'open' AND s.district = :district GROUP BY s.id, r.estate_id""",
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


ESTATES_PER_OFFICE = 300
DISTRICT = "基准区"
PLANS = 50  # estates with a published plan, pledges and payments (every estates // PLANS-th estate)
BALLOT_SHARE = (188_888, 300_000)  # the issue's ballots per unit on the open rounds' rolls
OPTIONS = [{"key": "agree", "label": "同意改造"}, {"key": "disagree", "label": "不同意改造"},
           {"key": "abstain", "label": "弃权"}]


def _copy(conn, table: str, columns: tuple[str, ...], rows) -> int:
    """COPY the rows (tuples in `columns` order; JSON as text) into `table` through psycopg's cursor.copy, in the
    session's transaction."""
    raw = conn.connection.driver_connection
    n = 0
    with raw.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as cp:
        for row in rows:
            cp.write_row(row)
            n += 1
    return n


def _reseed(conn, *tables: str) -> None:
    """After a COPY with explicit ids: each table's id sequence continues after its highest id."""
    for t in tables:
        conn.execute(sa.text(f"SELECT setval(pg_get_serial_sequence('{t}', 'id'), "
                             f"coalesce((SELECT max(id) FROM {t}), 0) + 1, false)"))


def _heads(conn, chains: list[int]) -> dict[int, tuple[int, str, int]]:
    """{chain: (head seq, head hash)} of these chains (GENESIS for an empty one)."""
    from residents_app.audit.chain import GENESIS

    heads = {c: (0, GENESIS) for c in chains}
    for chain, seq, hash_ in conn.execute(sa.text(
            "SELECT DISTINCT ON (chain) chain, seq, hash FROM audit_event ORDER BY chain, seq DESC")):
        if chain in heads:
            heads[chain] = (seq, hash_)
    return heads


def build(app, n_estates: int, n_units: int) -> dict:
    """The issue's data set (at --estates 300 --units 1000): one street office per 300 estates (all under one
    district housing bureau), 10 buildings per estate, 1.1 owners per unit; an open round per estate with its
    frozen roll, 188,888 ballots per 300,000 units with their audit entries (hash-chained, they verify) and
    counters; 100 closed rounds (one building, through the services: every third estate of a district); 50
    published plans (through the services) with pledges and payments and their stored funding rows. Registry,
    rolls, ballots and audit entries go in with COPY."""
    from residents_app.auth.models import User
    from residents_app.extensions import db
    from residents_app.plans import services as plans
    from residents_app.plans.models import PlanVersion
    from residents_app.registry.models import Estate, StreetOffice
    from residents_app.rounds import services as rounds
    from residents_app.rounds.counters import rebuild_counters

    now = datetime.now(UTC).replace(microsecond=0)
    timings: dict[str, tuple[float, float]] = {}  # phase: (wall s, this process's CPU s)
    mark = (time.perf_counter(), time.process_time())

    def lap(name: str) -> None:
        nonlocal mark
        timings[name] = (time.perf_counter() - mark[0], time.process_time() - mark[1])
        mark = (time.perf_counter(), time.process_time())

    with app.app_context():
        n_offices = max(1, -(-n_estates // ESTATES_PER_OFFICE))
        offices = [StreetOffice(code=f"BD{k:02d}", name=f"基准街道{k + 1:02d}", district=DISTRICT)
                   for k in range(n_offices)]
        db.session.add_all(offices)
        db.session.flush()
        users = {"street": User(username="bench_street", role="street", street_office_id=offices[0].id),
                 "bureau": User(username="bench_bureau", role="bureau", district=DISTRICT),
                 "admin": User(username="bench_admin", role="admin")}
        for u in users.values():
            u.set_password("correct-horse-1")
        db.session.add_all(users.values())
        db.session.flush()
        conn = db.session.connection()

        # Registry: ids given here (a fresh database), so nothing is read back.
        per_building = max(1, n_units // 10)
        estates = list(range(1, n_estates + 1))
        _copy(conn, "estate", ("id", "code", "name", "address", "street_office_id", "created_at"),
              ((e, f"E{e:05d}", f"基准小区{e:05d}", "", offices[(e - 1) // ESTATES_PER_OFFICE].id, now)
               for e in estates))
        _copy(conn, "building", ("id", "estate_id", "name"),
              (((e - 1) * 10 + b + 1, e, f"{b + 1}幢") for e in estates for b in range(10)))
        units = []  # (unit id, estate, building, number, area in hundredths)
        for e in estates:
            for b in range(10):
                bid = (e - 1) * 10 + b + 1
                for k in range(per_building):
                    uid = len(units) + 1
                    units.append((uid, e, bid, f"{(k // 4 + 1) * 100 + k % 4 + 1}", 6000 + (uid * 37) % 6000))
        _copy(conn, "unit", ("id", "estate_id", "building_id", "number", "title_area_m2", "kind", "is_hardship"),
              ((uid, e, b, num, area, "residential", False) for uid, e, b, num, area in units))
        owners: dict[int, list[tuple[int, str]]] = {}  # unit -> [(owner id, name)]; every 10th unit two owners
        n_owner = 0
        for uid, *_ in units:
            for _k in range(2 if uid % 10 == 0 else 1):
                n_owner += 1
                owners.setdefault(uid, []).append((n_owner, f"业主{n_owner}"))
        _copy(conn, "owner", ("id", "estate_id", "name", "phone"),
              ((o, e, name, f"13{o:09d}") for uid, e, *_ in units for o, name in owners[uid]))
        _copy(conn, "ownership", ("unit_id", "owner_id"), ((uid, o) for uid, *_ in units for o, _ in owners[uid]))
        _reseed(conn, "estate", "building", "unit", "owner")
        lap("registry")

        # A closed round (first building), opened and closed by the services, in every third estate of a district
        # (at the city size every 3 x offices-th estate: the same 100 rounds, the services' pace is ~0.1 s each).
        t_closed = now - timedelta(days=10)
        closed_in = estates[::3 * n_offices]
        for e in closed_in:
            rnd = rounds.create_round(e, rounds.RoundInput(
                kind="willingness", title="上一轮意愿征求", opens_at=t_closed, closes_at=t_closed + timedelta(days=7),
                scope_building_ids=[(e - 1) * 10 + 1]), t_closed)
            rounds.open_round(rnd.id, t_closed)
            rounds.close_round(rnd.id, t_closed + timedelta(days=7))
        db.session.flush()
        lap("closed rounds (services)")

        # 50 plans through the services, published the day before the rounds open (their entries come first on the
        # chains: the open rounds' votes below make up the rest of the issue's count).
        t_plan = now - timedelta(days=2)
        planned = estates[1::max(1, n_estates // PLANS)][:PLANS]
        plan_ids = {}
        admin = users["admin"]
        for e in planned:
            plan = plans.create_plan(db.session.get(Estate, e), title="综合改造方案", user=admin, now=t_plan,
                                     management_plan="物业公司负责日常维护，维修资金按年归集。")
            for name, category, cost in (("雨污分流", "required", 30_000_000), ("外墙保温", "basic", 40_000_000),
                                         ("停车位改造", "improvement", 20_000_000)):
                plans.add_item(plan, name=name, category=category, cost_fen=cost, user=admin, now=t_plan)
            plans.publish_plan(plan, user=admin, now=t_plan)
            plan_ids[e] = plan.id
        db.session.flush()
        lap("plans (services)")

        # The open rounds, their frozen rolls, ballots, current ballots and audit entries.
        first_round = conn.execute(sa.text("SELECT coalesce(max(id), 0) + 1 FROM round")).scalar_one()
        opened = now - timedelta(days=1)
        round_of = {e: first_round + i for i, e in enumerate(estates)}
        _copy(conn, "round", ("id", "estate_id", "kind", "title", "description", "rule_preset", "counting_mode",
                              "scope_building_ids", "options", "item_menu", "results_visibility", "status",
                              "opens_at", "closes_at", "opened_at", "created_at"),
              ((round_of[e], e, "willingness", "是否同意改造", "", "lucheng_double_two_thirds", "household", "[]",
                json.dumps(OPTIONS, ensure_ascii=False), "[]", "live", "open", opened, now + timedelta(days=14),
                opened, opened) for e in estates))
        names = {(e - 1) * 10 + b + 1: f"{b + 1}幢" for e in estates for b in range(10)}
        first_entry = conn.execute(sa.text("SELECT coalesce(max(id), 0) FROM roll_entry")).scalar_one()
        _copy(conn, "roll_entry", ("id", "round_id", "unit_id", "building_id", "building_name", "unit_number",
                                   "label", "area_m2", "owner_ids", "owner_names"),
              ((first_entry + uid, round_of[e], uid, b, names[b], num, f"{names[b]}-{num}", area,
                json.dumps([o for o, _ in owners[uid]]), json.dumps([n for _, n in owners[uid]], ensure_ascii=False))
               for uid, e, b, num, area in units))
        total = len(units)
        target = total * BALLOT_SHARE[0] // BALLOT_SHARE[1]
        step = next(p for p in (7919, 7927, 7933, 7937) if math.gcd(p, total) == 1)
        voters = [u for u in units if (u[0] * step) % total < target]  # exactly `target`: a permutation
        by_estate: dict[int, list] = {}
        for u in voters:
            by_estate.setdefault(u[1], []).append(u)
        # Two committee members per estate (one enters paper forms and proxies, the other confirms them).
        first_user = conn.execute(sa.text("SELECT coalesce(max(id), 0) FROM app_user")).scalar_one()
        committee = {e: ((first_user + 2 * i + 1, f"bench_c{e}a"), (first_user + 2 * i + 2, f"bench_c{e}b"))
                     for i, e in enumerate(estates)}
        _copy(conn, "app_user", ("id", "username", "display_name", "password_hash", "role", "estate_id", "district",
                                 "active", "session_version", "created_at"),
              ((uid_, name, "", users["admin"].password_hash, "committee", e, "", True, 0, now)
               for e, pair in committee.items() for uid_, name in pair))
        first_ids = {t: conn.execute(sa.text(f"SELECT coalesce(max(id), 0) FROM {table}")).scalar_one()
                     for t, table in (("ballot", "ballot"), ("file", "round_file"), ("mandate", "proxy_mandate"),
                                      ("event", "audit_event"))}
        n_before = conn.execute(sa.text("SELECT count(*) FROM audit_event")).scalar_one()
        votes = build_votes(estates=estates, voters_of=by_estate, owners=owners, round_of=round_of,
                            committee=committee, heads=_heads(conn, estates), opened=opened,
                            roll_units=per_building * 10,
                            target_events=total * EVENTS_SHARE[0] // EVENTS_SHARE[1] - n_before, first_ids=first_ids)
        lap("ballots and audit entries (Python, hashing)")
        _copy(conn, "round_file", FILE_COLUMNS, votes.files)
        _copy(conn, "proxy_mandate", MANDATE_COLUMNS, votes.mandates)
        _copy(conn, "ballot", BALLOT_COLUMNS, votes.ballots)
        _copy(conn, "current_ballot", CURRENT_COLUMNS, votes.current)
        _copy(conn, "audit_event", EVENT_COLUMNS, votes.events)
        _reseed(conn, "app_user", "round", "roll_entry", "ballot", "round_file", "proxy_mandate", "audit_event")
        rebuild_counters(list(round_of.values()))
        db.session.flush()
        made = votes.counts
        del votes
        lap("rounds COPY and counters")

        # Pledges and payments by COPY; the stored funding rows refreshed at the commit.
        owed = {}
        for e in planned:
            money = plans.compute_money(db.session.get(PlanVersion, plan_ids[e]))
            owed.update({int(k): u.owed_fen for k, u in money.units.items() if u.owed_fen > 0})
        pledged = [u for u in units if u[1] in plan_ids and u[0] in owed and u[0] % 5 != 0]
        paid = [u for u in units if u[1] in plan_ids and u[0] in owed and u[0] % 5 < 3]
        _copy(conn, "pledge", ("plan_version_id", "unit_id", "amount_fen", "signed_by_owner_id", "signed_at"),
              ((plan_ids[u[1]], u[0], owed[u[0]], owners[u[0]][0][0], now - timedelta(hours=3)) for u in pledged))
        _copy(conn, "payment", ("estate_id", "unit_id", "amount_fen", "method", "reference", "paid_on", "note",
                                "entered_by_id", "entered_at"),
              ((u[1], u[0], owed[u[0]], "cash", "", now.date(), "", admin.id, now - timedelta(hours=2))
               for u in paid))
        # The commit refreshes the planned estates' stored funding rows (funding/summary.py: the plan versions
        # flushed above mark them), after the payments above: the figures include them.
        db.session.commit()
        lap("pledges and payments, commit (stored funding rows)")
        with db.engine.connect() as c:
            c.execute(sa.text("ANALYZE"))
            c.commit()
        lap("ANALYZE")
        with db.engine.connect() as c:
            n_events = c.execute(sa.text("SELECT count(*) FROM audit_event")).scalar_one()
        return {"estates": n_estates, "estate_id": estates[0], "round_id": round_of[estates[0]], "units": len(units),
                "owners": n_owner, "ballots": made["voters"], "made": made, "rounds": n_estates + len(closed_in),
                "offices": n_offices, "plans": len(plan_ids), "pledges": len(pledged), "payments": len(paid),
                "events": n_events, "timings": timings}


def check(app, ids: dict) -> str:
    """The data set holds together: a few chains verify from genesis (among them chains with vote changes, paper
    and proxy ballots and a paper-online conflict), their open rounds' current_ballot rows and counted ballots are
    what replaying the chain's ballot.cast entries gives (rounds/recount.py's chain_counts), and the counters equal
    a recount."""
    from residents_app.audit.verify import verify_chain
    from residents_app.extensions import db
    from residents_app.rounds.counters import check_counters

    with app.app_context():
        chains = {1, 2, ids["estates"]}  # a closed round's estate, a planned one, the last one
        kinds = ("ballot.paper_conflict", "ballot.proxy_entered", "ballot.paper_entered")
        chains |= {c for c in db.session.execute(sa.text(
            "SELECT min(chain) FROM audit_event WHERE kind IN :kinds GROUP BY kind").bindparams(
                sa.bindparam("kinds", expanding=True)), {"kinds": list(kinds)}).scalars() if c is not None}
        chains = sorted(chains)
        reports = [verify_chain(c) for c in chains]
        bad = [r for r in reports if not r.ok]
        problems = check_counters(chains) + _replay_problems(chains)
        funded = db.session.execute(sa.text("SELECT count(*) FROM estate_funding")).scalar_one()
        if bad or problems or funded != ids["plans"]:
            raise RuntimeError(f"the data set does not verify: {[r.broken for r in bad]} {problems[:3]} "
                               f"{funded} stored funding rows for {ids['plans']} plans")
        made = dict(db.session.execute(sa.text(
            "SELECT kind, count(*) FROM audit_event WHERE chain IN :chains GROUP BY kind").bindparams(
                sa.bindparam("chains", expanding=True)), {"chains": chains}).all())
        changed = db.session.execute(sa.text(
            "SELECT count(*) FROM current_ballot c JOIN round r ON r.id = c.round_id "
            "WHERE r.estate_id IN :chains AND r.status = 'open' AND c.previous_choice IS NOT NULL").bindparams(
                sa.bindparam("chains", expanding=True)), {"chains": chains}).scalar_one()
        return (f"chains {chains} verify ({sum(r.entry_count for r in reports):,} entries: "
                f"{made.get('ballot.cast', 0):,} ballot.cast, {changed:,} units whose counted ballot replaced another, "
                + ", ".join(f"{made.get(k, 0):,} {k}" for k in (*kinds, "ballot.conflict_resolved",
                                                                  "proxy.mandate_recorded"))
                + f"); current_ballot and counted ballots = a replay of the chains; counters = recount; "
                f"{funded} stored funding rows")


def _replay_problems(chains: list[int]) -> list[str]:
    """The open rounds of these chains: current_ballot (unit -> ballot, choice) and the ballots marked counted
    equal the last ballot.cast entry of each unit on the chain."""
    from residents_app.extensions import db
    from residents_app.rounds.recount import chain_counts

    out = []
    for chain in chains:
        rids = set(db.session.execute(sa.text(
            "SELECT id FROM round WHERE estate_id = :c AND status = 'open'"), {"c": chain}).scalars())
        logged = chain_counts(chain, rids)
        for rid in rids:
            current = {u: (b, c) for u, b, c in db.session.execute(sa.text(
                "SELECT unit_id, ballot_id, choice FROM current_ballot WHERE round_id = :r"), {"r": rid})}
            counted = {u: (b, c) for u, b, c in db.session.execute(sa.text(
                "SELECT unit_id, id, choice FROM ballot WHERE round_id = :r AND status = 'counted'"), {"r": rid})}
            for name, rows in (("current_ballot", current), ("counted ballots", counted)):
                if rows != logged[rid]:
                    diff = sorted(set(rows.items()) ^ set(logged[rid].items()))[:3]
                    out.append(f"round {rid}: {name} differ from the chain's replay ({len(rows)} rows, "
                               f"{len(logged[rid])} logged; e.g. {diff})")
    return out


def _ballot_detail(ids: dict) -> str:
    m = ids.get("made")
    if not m:
        return ""
    return (f" ({m['ballot rows']:,} ballot rows: {m['changes']:,} vote changes, {m['paper']:,} paper, "
            f"{m['proxy']:,} proxy, {m['conflicts']:,} paper-online conflicts of which {m['conflicts_kept_paper']:,} "
            "kept paper)")


def _database(kind: str, keep: str, use: str):
    """A scratch database, or (--keep) a named one that is kept, or (--use) a scratch copy of a kept one."""
    if not (keep or use):
        return scratch_database(kind)
    return _named_database(keep, use)


@contextlib.contextmanager
def _named_database(keep: str, use: str):
    import psycopg
    from common import PG_ADMIN
    from psycopg import sql

    name = keep or f"{use}_copy_{os.getpid()}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        if use:
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(use)))
        else:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"
    finally:
        if use:
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _save_ids(app, ids: dict) -> None:
    from residents_app.extensions import db

    with app.app_context():
        with db.engine.begin() as c:
            c.execute(sa.text("CREATE TABLE bench_meta (ids text NOT NULL)"))
            c.execute(sa.text("INSERT INTO bench_meta (ids) VALUES (:ids)"), {"ids": json.dumps(ids)})
        db.engine.dispose()  # a kept database is a template later: no connection may stay open


def _load_ids(app) -> dict:
    from residents_app.extensions import db

    with app.app_context():
        with db.engine.connect() as c:
            return json.loads(c.execute(sa.text("SELECT ids FROM bench_meta")).scalar_one())


def _add_missing_indexes(app) -> None:
    """A kept database built before an index was added to the models (and its migration) gets it on the copy, so
    that --use measures the code as it is (tables and columns still need a rebuild with --keep)."""
    from residents_app.extensions import db

    with app.app_context():
        with db.engine.begin() as c:
            for table in db.metadata.sorted_tables:
                for index in table.indexes:
                    index.create(c, checkfirst=True)
        db.engine.dispose()


def alternating_medians_ms(page, floor, repeat: int, warm: int = 6) -> tuple[float, float]:
    """The medians (ms) of `page` and `floor`, run one after the other `repeat` times (after `warm` runs of each:
    psycopg prepares a statement from its 5th run), so that a shared machine's slower moments fall on both."""
    for _ in range(warm):
        page()
        floor()
    page_times, floor_times = [], []
    for _ in range(repeat):
        for fn, times in ((page, page_times), (floor, floor_times)):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(page_times), statistics.median(floor_times)


def _login(app, username: str):
    client = app.test_client()
    resp = client.post("/api/auth/login", json={"username": username, "password": "correct-horse-1"})
    assert resp.status_code == 200, resp.get_json()
    return client


def run(kind: str, n_estates: int, n_units: int, repeat: int, keep: str = "", use: str = "",
        only: tuple[str, ...] = (), tick_runs: int = 5) -> None:
    from residents_app.extensions import db

    with _database(kind, keep, use) as url:
        app = make_app(url)
        if use:
            ids = _load_ids(app)
            _add_missing_indexes(app)
        else:
            create_schema(app)
            t0 = time.perf_counter()
            ids = build(app, n_estates, n_units)
            if keep:
                _save_ids(app, ids)
            print(f"[{kind}] built {n_estates} estates in {ids['offices']} street offices, {ids['units']:,} units, "
                  f"{ids['owners']:,} owners, {ids['rounds']} rounds, {ids['ballots']:,} ballots counted"
                  f"{_ballot_detail(ids)}, "
                  f"{ids['plans']} plans "
                  f"({ids['pledges']:,} pledges, {ids['payments']:,} payments), {ids['events']:,} audit entries "
                  f"in {time.perf_counter() - t0:.1f} s")
            print(f"[{kind}]   " + "; ".join(f"{k} {w:.1f} s (CPU here {c:.1f} s)"
                                          for k, (w, c) in ids["timings"].items()))
            print(f"[{kind}]   load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
        print(f"[{kind}]   {check(app, ids)}")
        print(f"[{kind}]   load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs "
              "(before the pages)")
        pages = {"district": "/district", "dashboard": f"/estates/{ids['estate_id']}/dashboard",
                 "tally": f"/rounds/{ids['round_id']}", "desk": f"/rounds/{ids['round_id']}/verify",
                 "city": "/city"}
        street, bureau = _login(app, "bench_street"), _login(app, "bench_bureau")
        with app.app_context():
            engine = db.engine
        for name, url_ in pages.items():
            if only and name not in only:
                continue
            client = bureau if name == "city" else street
            statements = []

            def count(conn, cursor, statement, *args, _s=statements):
                _s.append(statement)

            resp = client.get(url_)
            assert resp.status_code == 200, (name, resp.status_code)
            event.listen(engine, "before_cursor_execute", count)
            client.get(url_)
            event.remove(engine, "before_cursor_execute", count)
            sql = sa.text(FLOORS[name])
            params = {"estate_id": ids["estate_id"], "round_id": ids["round_id"], "district": DISTRICT}
            # The floor on a session of its own (outside the app's contexts, which every page request pushes and
            # pops), held for the run as before; page and floor alternate, so both see the same machine.
            with Session(engine) as floor_session:
                page_ms, floor_ms = alternating_medians_ms(
                    lambda u=url_, c=client: c.get(u),
                    lambda s=floor_session, q=sql, p=params: s.execute(q, p).all(), repeat)
            ratio = page_ms / floor_ms if floor_ms else float("inf")
            goal_ms = f" (goal <= {GOALS_MS[name]} ms)" if name in GOALS_MS else ""
            print(f"[{kind}] {name:9s} {page_ms:8.1f} ms{goal_ms}; one query {floor_ms:7.2f} ms; ratio {ratio:.2f} "
                  f"(goal <= {GOALS[name]}); statements {len(statements)}; {len(resp.get_data()):,} bytes")
        if not only or "tick" in only:
            with app.app_context():
                db.engine.dispose()  # the tick's copy is made from this database: no connection may stay open
            tick_row(url, kind, runs=tick_runs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["postgresql"], default="postgresql", help="COPY: PostgreSQL only")
    parser.add_argument("--estates", type=int, default=300, help="300 per street office (3000: the city size)")
    parser.add_argument("--units", type=int, default=100, help="units per estate (the issue's size: 1000)")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--keep", default="", metavar="NAME",
                        help="build into the PostgreSQL database NAME and keep it (for --use later)")
    parser.add_argument("--use", default="", metavar="NAME",
                        help="measure a database kept by --keep (a copy of it: the pages may write) without building")
    parser.add_argument("--only", default="", help="comma-separated rows to measure (district,dashboard,tally,desk,"
                                                   "city,tick)")
    parser.add_argument("--tick-runs", type=int, default=5, help="the tick's row this many times (a copy each), "
                                                                 "then their median")
    args = parser.parse_args()
    run(args.db, args.estates, args.units, args.repeat, args.keep, args.use,
        tuple(x for x in args.only.split(",") if x), args.tick_runs)


if __name__ == "__main__":
    main()
