"""Several app nodes (docs/DEPLOY.md), for real: nginx in front of two gunicorn nodes (2 workers each) sharing
PostgreSQL and Redis, two scheduler processes of which one leads; residents vote through nginx and through each
node; node A and the leading scheduler are killed (SIGKILL) in the middle of the load.

Runs on the PostgreSQL pass only (tests/ops/conftest.py leaves it out of the SQLite pass).
"""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from residents_app import create_app
from residents_app.extensions import db as _db
from tests.conftest import TEST_DB

from .conftest import create_schema, db_name, pg_admin
from .multinode import ROOT, SECRET, Cluster, Phone, Tally

pytestmark = pytest.mark.multinode
if TEST_DB != "postgresql":  # reached only when named on the command line: the SQLite pass leaves it out
    pytest.fail("tests/ops/test_multinode.py runs on PostgreSQL: RAPP_TEST_DB=postgresql", pytrace=False)

UNITS = 60
CROSS = 6  # residents who confirm their identity on node A and vote on node B, directly
CHANGES = 3  # ballots per resident through nginx (each a change of the one before)
SCHEDULERS = ("scheduler-1", "scheduler-2")
RETRY = {0, 502, 503, 504}  # no answer, or the proxy's: the phone tries again


def _seed(url: str):
    """A small estate with QR links and an open round, through the services (the schema is the migrations')."""
    from residents_app.db import utcnow
    from residents_app.registry.models import Building, Estate, Owner, Ownership, StreetOffice, Unit
    from residents_app.rounds import links as links_svc
    from residents_app.rounds import services as rs

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": SECRET, "AUDIT_SEALER": "inline"})
    with app.app_context():
        now = utcnow()
        office = StreetOffice(code="MN", name="多节点街道", district="鹿城区")
        _db.session.add(office)
        _db.session.flush()
        estate = Estate(code="MN-E", name="多节点小区", street_office_id=office.id)
        _db.session.add(estate)
        _db.session.flush()
        people = {}
        for i in range(UNITS):
            if i % 20 == 0:
                building = Building(estate_id=estate.id, name=f"{i // 20 + 1}幢")
                _db.session.add(building)
                _db.session.flush()
            unit = Unit(estate_id=estate.id, building_id=building.id, number=f"{i % 20 + 101}",
                        title_area_m2=Decimal(6000 + 37 * i).scaleb(-2))
            owner = Owner(estate_id=estate.id, name=f"业主{i:03d}", phone=f"138{i:08d}")
            _db.session.add_all([unit, owner])
            _db.session.flush()
            _db.session.add(Ownership(unit_id=unit.id, owner_id=owner.id))
            people[unit.id] = (owner.name, owner.phone[-4:])
        links = links_svc.issue_links(estate.id, now)
        rnd = rs.create_round(estate.id, rs.RoundInput(kind="general", matter_item=7, title="多节点：加装电梯",
                                                       opens_at=now - timedelta(hours=1),
                                                       closes_at=now + timedelta(minutes=30)), now)
        rs.open_round(rnd.id, now)
        _db.session.commit()
        residents = [(unit.id, token, *people[unit.id]) for unit, token in links]
        ids = (estate.id, rnd.id)
        _db.session.remove()
        _db.engines[None].dispose()
    return app, ids, residents


def _vote(port: int, n: int, resident, round_id: int, tally: Tally) -> None:
    unit_id, token, name, last4 = resident
    rng = random.Random(n)
    phone = Phone(port, f"127.0.{1 + n // 200}.{1 + n % 200}")

    def attempt(kind: str, path: str, body: dict):
        for i in range(12):
            status, payload = phone.request("POST", path, body)
            tally.add(kind, status)
            if status not in RETRY:
                return status, payload
            time.sleep(min(0.1 * 2 ** i, 1.0))
        return status, payload

    status, _ = attempt("identity", f"/api/ballot/{token}/identity", {"name": name, "phone_last4": last4})
    if status != 200:
        tally.gave_up.append(f"unit {unit_id}: identity {status}")
        return
    for k in range(CHANGES):
        status, payload = attempt("cast", f"/api/ballot/{token}/cast",
                                  {"round_id": round_id, "choice": rng.choice(("agree", "disagree", "abstain"))})
        if status == 201:
            with tally.lock:
                tally.accepted.append((unit_id, k, payload["receipt_code"]))
        else:
            tally.gave_up.append(f"unit {unit_id}: cast {k}: {status} {payload}")
    phone.close()


@pytest.fixture
def cluster(tmp_path, make_database_url):
    c = Cluster(tmp_path, make_database_url())
    try:
        yield c
    finally:
        c.close()


def test_two_nodes_behind_nginx_lose_no_ballot_when_one_dies(cluster):
    marks = [("start", time.monotonic())]
    cluster.start_redis()
    upgrade = subprocess.Popen([sys.executable, "-m", "flask", "db", "upgrade"], cwd=ROOT, env=cluster.env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for name in ("a", "b"):  # they boot while the schema is made; /readyz says ready once it is at head
        cluster.start_node(name)
    out, _ = upgrade.communicate(timeout=120)
    assert upgrade.returncode == 0, out[-3000:]
    marks.append(("flask db upgrade", time.monotonic()))
    app, (estate_id, round_id), residents = _seed(cluster.database_url)
    for name in SCHEDULERS:
        cluster.start_scheduler(name)
    for name in ("a", "b"):
        cluster.wait_ready(name)
    cluster.start_nginx()
    leader = cluster.wait_output(SCHEDULERS, "启动补跑完成")  # one scheduler leads ...
    standby = next(n for n in SCHEDULERS if n != leader)
    assert cluster.wait_output((standby,), "standing by", stream=1) == standby  # ... the other stands by
    assert "启动补跑完成" not in cluster.scheduler_output(standby)[0]
    marks.append(("nodes, nginx, schedulers up", time.monotonic()))
    a, b, front = cluster.ports["a"], cluster.ports["b"], cluster.ports["nginx"]

    # 1. A session opened on node A is the session on node B: identity on A, the ballot on B, same cookie.
    tally = Tally()
    for n, (unit_id, token, name, last4) in enumerate(residents[:CROSS]):
        on_a = Phone(a, f"127.0.100.{n + 1}")
        assert on_a.request("POST", f"/api/ballot/{token}/identity", {"name": name, "phone_last4": last4})[0] == 200
        cookie = on_a.cookie
        assert len(cookie.split("=", 1)[1]) == 43  # the opaque id of a server-side session
        on_b = Phone(b, f"127.0.100.{n + 1}", cookie=cookie)
        status, info = on_b.request("GET", f"/api/ballot/{token}")
        assert status == 200 and info["identified"] is True
        status, body = on_b.request("POST", f"/api/ballot/{token}/cast", {"round_id": round_id, "choice": "agree"})
        assert status == 201, body
        tally.accepted.append((unit_id, -1, body["receipt_code"]))
        on_a.close()
        on_b.close()

    # 2. Rate limits are shared: the token-guess budget (20 misses a minute) spent on node A is spent on node B.
    guesser = Phone(a, "127.0.150.1")
    misses = [guesser.request("GET", f"/api/ballot/guess{i:04d}")[0] for i in range(20)]
    guesser.close()
    assert misses == [404] * 20
    assert _get_once(b, "127.0.150.1", "/api/ballot/guess9999") == 429
    assert _get_once(b, "127.0.150.2", "/api/ballot/guess9999") == 404  # another address: its own budget
    # ... and through nginx the budget is the resident's address (X-Forwarded-For), not nginx's.
    assert _get_once(front, "127.0.150.1", "/api/ballot/guess9998") == 429
    assert _get_once(front, "127.0.150.3", "/api/ballot/guess9998") == 404
    marks.append(("sessions and rate limits across nodes", time.monotonic()))

    # 3. The load through nginx; node A and the leading scheduler die (SIGKILL) once a third of it is accepted.
    crowd = residents[CROSS:]
    killed_at: list[float] = []

    def killer():
        target = len(crowd) * CHANGES // 3
        while len([x for x in tally.accepted if x[1] >= 0]) < target:
            time.sleep(0.005)
        killed_at.append(time.time())
        cluster.kill("a")
        cluster.kill(leader)

    k = threading.Thread(target=killer, daemon=True)
    k.start()
    with ThreadPoolExecutor(max_workers=12) as pool:
        for f in [pool.submit(_vote, front, n, r, round_id, tally) for n, r in enumerate(crowd)]:
            f.result()
    k.join(timeout=30)
    assert killed_at, "the load ended before node A was killed"
    assert tally.gave_up == []
    marks.append(("load through nginx, node A killed", time.monotonic()))
    cluster.wait_output((standby,), "启动补跑完成", timeout=15)  # the standby leads now

    statuses = Counter(s for _, s, _ in tally.statuses)
    assert statuses[500] == 0 and set(statuses) <= {200, 201, 0, 502}, statuses
    lost_answers = statuses[0] + statuses[502]  # requests in flight on node A when it died
    assert lost_answers <= 12, statuses
    # On a quiet machine the rest of the load can end within a second of the kill: residents who open their link
    # a little later (more than a second after the kill) are served too, and by node B alone.
    time.sleep(max(0.0, killed_at[0] + 1.2 - time.time()))
    assert [_get_once(front, f"127.0.200.{n + 1}", f"/api/ballot/{r[1]}") for n, r in enumerate(crowd[:10])] == [
        200] * 10
    log = cluster.nginx_log()
    before = {u for r in log if r["at"] < killed_at[0] for u in r["upstreams"].split(", ")}
    after = [r for r in log if r["at"] > killed_at[0] + 1 and r["status"] in (200, 201)]
    assert {f"127.0.0.1:{a}", f"127.0.0.1:{b}"} <= before  # nginx spread the load over both nodes
    assert after and all(r["upstreams"].endswith(f"127.0.0.1:{b}") for r in after)  # then node B took it all

    # 4. What the residents were told against the database, the chain and the counters.
    receipts = _check_ballots(app, round_id, tally, lost_answers)
    deadline = time.monotonic() + 20
    with app.app_context():
        from residents_app.audit.models import AuditEvent
        from residents_app.audit.services import pending_count

        while pending_count(estate_id) and time.monotonic() < deadline:  # node A's unsealed events: the scheduler's
            _db.session.remove()
            time.sleep(0.2)
        assert pending_count(estate_id) == 0
        entries = Counter(d.get("receipt") for d in _db.session.execute(sa.select(AuditEvent.data).where(
            AuditEvent.chain == estate_id, AuditEvent.kind == "ballot.cast")).scalars())
        assert entries == receipts  # every ballot on the chain, once
        _db.session.remove()
    cli = app.test_cli_runner()  # the commands themselves, in this process (no second start-up of the app)
    verify = cli.invoke(args=["audit", "verify"])
    assert verify.exit_code == 0 and "校验通过：1 条链全部完好" in verify.output, verify.output
    recount = cli.invoke(args=["rounds", "recount"])
    assert recount.exit_code == 0 and "OK    计数器与选票一致" in recount.output, recount.output
    _check_scheduler(app, killed_at[0], (leader, standby), cluster)
    with app.app_context():
        _db.session.remove()
        _db.engines[None].dispose()
    marks.append(("checks", time.monotonic()))
    print(" | ".join(f"{name} {t - marks[0][1]:.1f} s" for name, t in marks[1:]))


def _get_once(port: int, address: str, path: str) -> int:
    phone = Phone(port, address)
    try:
        return phone.request("GET", path)[0]
    finally:
        phone.close()


def _check_ballots(app, round_id: int, tally: Tally, lost_answers: int) -> None:
    from residents_app.rounds.models import Ballot, CurrentBallot

    with app.app_context():
        q = _db.session.execute
        rows = q(sa.select(Ballot.id, Ballot.unit_id, Ballot.receipt_code).where(Ballot.round_id == round_id)
                 .order_by(Ballot.id)).all()
        receipts = Counter(r.receipt_code for r in rows)
        told = Counter(receipt for _, _, receipt in tally.accepted)
        assert len(told) == len(tally.accepted) == CROSS + (UNITS - CROSS) * CHANGES
        assert all(receipts[c] == 1 for c in told)  # every 201 is a ballot, once
        assert max(receipts.values()) == 1
        unanswered = set(receipts) - set(told)  # committed on node A, whose answer died with it
        assert len(unanswered) <= lost_answers
        # Each unit counts the ballot of its last 201, and nothing else.
        last_told = {}
        for unit_id, _k, receipt in sorted(tally.accepted, key=lambda x: (x[0], x[1])):
            last_told[unit_id] = receipt
        by_id = {r.id: r.receipt_code for r in rows}
        current = dict(q(sa.select(CurrentBallot.unit_id, CurrentBallot.ballot_id)
                         .where(CurrentBallot.round_id == round_id)).all())
        assert {u: by_id[b] for u, b in current.items()} == last_told
        _db.session.remove()
    return receipts


def _check_scheduler(app, killed_at: float, names: tuple[str, str], cluster: Cluster) -> None:
    """The ticks never overlapped; before the kill only the first scheduler ran them, after it only the second."""
    from datetime import UTC, datetime

    from residents_app.scheduler.models import JobRun

    pids = {name: cluster.procs[name].pid for name in names}
    deadline = time.monotonic() + 20  # a tick a second: the one leading now has run at least one (a fast load can
    while True:                       # end before the standby's first tick is recorded)
        with app.app_context():
            runs = _db.session.execute(sa.select(JobRun.worker, JobRun.status, JobRun.started_at, JobRun.finished_at)
                                       .where(JobRun.job == "tick").order_by(JobRun.started_at)).all()
            _db.session.remove()
        if len(runs) >= 3 and str(pids[names[1]]) in {r.worker.rsplit(":", 1)[1] for r in runs}:
            break
        assert time.monotonic() < deadline, runs
        time.sleep(0.2)
    assert len(runs) >= 3 and {r.status for r in runs} == {"ok"}  # never "skipped": never two at the tick lock
    for earlier, later in zip(runs, runs[1:], strict=False):
        assert earlier.finished_at <= later.started_at
    workers = {r.worker.rsplit(":", 1)[1] for r in runs}
    assert workers == {str(p) for p in pids.values()}
    cut = datetime.fromtimestamp(killed_at, UTC)
    leader, standby = (str(pids[n]) for n in names)
    assert all(r.started_at < cut for r in runs if r.worker.endswith(":" + leader))
    assert all(r.started_at >= cut for r in runs if r.worker.endswith(":" + standby))


def test_the_district_pages_read_from_the_replica_and_everything_else_from_the_primary(make_database_url,
                                                                                        make_app):
    """DATABASE_REPLICA_URL: a second database made from the first (CREATE DATABASE ... TEMPLATE), then a marker
    written only there: the district page and its export show the marker, the sign-in and every write use the
    primary."""
    from residents_app.auth.models import User
    from residents_app.db import core_rows
    from residents_app.registry.models import Estate, StreetOffice
    from residents_app.replica import READ_REPLICA

    primary = make_database_url()
    seed = make_app(primary)
    create_schema(seed)
    with seed.app_context():
        office = StreetOffice(code="RP", name="副本街道", district="鹿城区")
        _db.session.add(office)
        _db.session.flush()
        _db.session.add(Estate(code="RP-1", name="主库小区", street_office_id=office.id))
        _db.session.commit()
        office_id = office.id
        _db.session.remove()
        _db.engines[None].dispose()
    replica_name = db_name(primary) + "_replica"
    pg_admin(f'CREATE DATABASE "{replica_name}" TEMPLATE "{db_name(primary)}"')
    replica = primary.rsplit("/", 1)[0] + "/" + replica_name
    try:
        marker = sa.create_engine(replica.replace("postgresql://", "postgresql+psycopg://"))
        with marker.begin() as conn:  # the replica only: what the district page shows proves where it read
            conn.execute(sa.text("UPDATE estate SET name = '副本小区' WHERE code = 'RP-1'"))
        marker.dispose()
        app = make_app(primary, DATABASE_REPLICA_URL=replica)
        with app.app_context():  # a user who exists on the primary only: signing in reads the primary
            user = User(username="street-rp", display_name="街道", role="street", street_office_id=office_id)
            user.set_password("correct-horse-1")
            _db.session.add(user)
            _db.session.commit()
            _db.session.remove()
        client = app.test_client()
        assert client.post("/api/auth/login", json={"username": "street-rp", "password": "correct-horse-1"}
                           ).status_code == 200
        page = client.get("/district")
        html = page.get_data(as_text=True)
        assert page.status_code == 200 and "副本小区" in html and "主库小区" not in html
        csv = client.get("/district/export.csv").get_data().decode("utf-8-sig")
        assert "副本小区" in csv and "主库小区" not in csv
        with app.test_request_context():  # marked for the replica: SELECTs there, writes to the primary
            _db.session.info[READ_REPLICA] = True
            assert _db.session.execute(sa.select(Estate.name)).scalar_one() == "副本小区"
            assert [tuple(r) for r in core_rows(_db.session, sa.select(Estate.name))] == [("副本小区",)]  # Core too
            _db.session.add(StreetOffice(code="RP2", name="写入主库", district="鹿城区"))
            _db.session.commit()
            _db.session.info.pop(READ_REPLICA)
            assert _db.session.execute(sa.select(Estate.name)).scalar_one() == "主库小区"
            assert [tuple(r) for r in core_rows(_db.session, sa.select(Estate.name))] == [("主库小区",)]
            _db.session.remove()
        assert pg_admin_count(primary, "RP2") == 1 and pg_admin_count(replica, "RP2") == 0
        plain = make_app(primary)  # without the setting: the district page is the primary's
        other = plain.test_client()
        assert other.post("/api/auth/login", json={"username": "street-rp", "password": "correct-horse-1"}
                          ).status_code == 200
        html = other.get("/district").get_data(as_text=True)
        assert "主库小区" in html and "副本小区" not in html
        for a in (app, plain):
            with a.app_context():
                for engine in _db.engines.values():
                    engine.dispose()
    finally:
        pg_admin(f'DROP DATABASE IF EXISTS "{replica_name}" WITH (FORCE)')


def pg_admin_count(url: str, code: str) -> int:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT count(*) FROM street_office WHERE code = :c"), {"c": code}).scalar_one()
    finally:
        engine.dispose()
