"""A small, CI-sized version of bench/load_vote.py: residents vote and change votes concurrently
through a real threaded server; every accepted ballot is counted exactly once and the tally equals
a recount from the ballot table."""

from __future__ import annotations

import http.client
import json
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlsplit

import sqlalchemy as sa

from residents_app.rounds import links as links_svc

RESIDENTS = 24
CASTS = 3
THREADS = 6


def _seed():
    from residents_app.db import utcnow
    from residents_app.extensions import db
    from residents_app.registry.models import Building, Estate, Owner, Ownership, StreetOffice, Unit
    from residents_app.rounds import services as rs

    now = utcnow()
    office = StreetOffice(code="CV", name="并发街道", district="鹿城区")
    db.session.add(office)
    db.session.flush()
    estate = Estate(code="CV-E", name="并发小区", street_office_id=office.id)
    db.session.add(estate)
    db.session.flush()
    building = Building(estate_id=estate.id, name="1幢")
    db.session.add(building)
    db.session.flush()
    people = {}
    for i in range(RESIDENTS):
        unit = Unit(estate_id=estate.id, building_id=building.id, number=f"{101 + i}",
                    title_area_m2=Decimal("60.00") + Decimal(i).scaleb(-2) * 37)
        owner = Owner(estate_id=estate.id, name=f"并发业主{i}", phone=f"1380000{i:04d}")
        db.session.add_all([unit, owner])
        db.session.flush()
        db.session.add(Ownership(unit_id=unit.id, owner_id=owner.id))
        people[unit.id] = (owner.name, owner.phone[-4:], unit.title_area_m2)
    links = links_svc.issue_links(estate.id, now)
    data = rs.RoundInput(kind="general", matter_item=7, title="并发表决", opens_at=now - timedelta(hours=1),
                         closes_at=now + timedelta(minutes=10))
    rnd = rs.create_round(estate.id, data, now)
    rs.open_round(rnd.id, now)
    db.session.commit()
    return rnd.id, [(unit.id, token, *people[unit.id]) for unit, token in links]


def _post(conn, path, body, cookie):
    headers = {"Content-Type": "application/json"}
    if cookie:
        headers["Cookie"] = cookie
    conn.request("POST", path, body=json.dumps(body), headers=headers)
    resp = conn.getresponse()
    payload = json.loads(resp.read() or b"null")
    for name, value in resp.getheaders():
        if name.lower() == "set-cookie" and value.startswith("session="):
            cookie = value.split(";", 1)[0]
    return resp.status, payload, cookie


def test_concurrent_votes_are_each_counted_once_and_tally_equals_recount(live_server, live_app):
    from residents_app.extensions import db
    from residents_app.rounds import tally as tally_svc
    from residents_app.rounds.models import Ballot, CurrentBallot

    with live_app.app_context():
        round_id, residents = _seed()
    host = urlsplit(live_server)
    accepted: list[tuple[int, int, str, str]] = []
    statuses: list[int] = []
    lock = threading.Lock()

    def resident(n, unit_id, token, name, last4, _area):
        rng = random.Random(n)
        conn = http.client.HTTPConnection(host.hostname, host.port, timeout=30,
                                          source_address=(f"127.0.3.{n + 1}", 0))
        status, _, cookie = _post(conn, f"/api/ballot/{token}/identity", {"name": name, "phone_last4": last4}, None)
        with lock:
            statuses.append(status)
        for k in range(CASTS):
            choice = rng.choice(["agree", "disagree", "abstain"])
            status, payload, cookie = _post(conn, f"/api/ballot/{token}/cast",
                                            {"round_id": round_id, "choice": choice}, cookie)
            with lock:
                statuses.append(status)
                if status == 201:
                    accepted.append((unit_id, k, payload["choice"], payload["receipt_code"]))
        conn.close()

    with ThreadPoolExecutor(THREADS) as pool:
        for f in [pool.submit(resident, n, *r) for n, r in enumerate(residents)]:
            f.result()

    assert sorted(set(statuses)) == [200, 201]
    assert len(accepted) == RESIDENTS * CASTS
    with live_app.app_context():
        rows = db.session.execute(sa.select(Ballot.id, Ballot.unit_id, Ballot.choice, Ballot.receipt_code,
                                            Ballot.status).where(Ballot.round_id == round_id)
                                  .order_by(Ballot.id)).all()
        current = dict(db.session.execute(sa.select(CurrentBallot.unit_id, CurrentBallot.ballot_id)
                                          .where(CurrentBallot.round_id == round_id)).all())
        figures = tally_svc.compute_tally(round_id).to_dict()["figures"]
        db.session.rollback()
    # every accepted cast is exactly one row, and nothing else was stored
    assert sorted(r.receipt_code for r in rows) == sorted(a[3] for a in accepted)
    newest = {}
    for r in rows:
        newest[r.unit_id] = r
    last_told = {a[0]: a for a in sorted(accepted, key=lambda a: (a[0], a[1]))}
    assert current == {u: r.id for u, r in newest.items()}
    assert {u: r.receipt_code for u, r in newest.items()} == {u: a[3] for u, a in last_told.items()}
    assert sorted(r.unit_id for r in rows if r.status == "counted") == sorted(area_unit for area_unit, *_ in residents)
    area = {r[0]: r[4] for r in residents}
    agree = [u for u, r in newest.items() if r.choice == "agree"]
    assert figures["voted_count"] == RESIDENTS
    assert figures["agree_count"] == len(agree)
    assert Decimal(figures["agree_area"]) == sum((area[u] for u in agree), Decimal("0.00"))
    assert Decimal(figures["voted_area"]) == sum(area.values(), Decimal("0.00"))

    # The stored counters moved by every concurrent cast equal a recount from the ballots; closed by the
    # scheduler's batch, the stored result equals a recount from the chain's ballot entries (issue 19).
    from residents_app.rounds.models import Round
    from residents_app.rounds.recount import recount_problems
    from residents_app.scheduler import jobs

    with live_app.app_context():
        assert recount_problems() == []
        closes_at = db.session.get(Round, round_id).closes_at
        db.session.rollback()
        run = jobs.tick(closes_at)
        closed = [(a["kind"], a["id"]) for a in run.actions if a["kind"] == "round_closed"]
        assert closed == [("round_closed", round_id)]
        assert tally_svc.compute_tally(round_id).to_dict()["figures"] == figures
        assert recount_problems() == []
        db.session.remove()
