"""No N+1 on the street office's pages (issue 19 item 2): the number of SQL statements of the estate dashboard,
the round page (tally) and the verification desk does not grow with the number of units, ballots, closed rounds or
(the dashboard's cards) open rounds.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from residents_app.db import utcnow
from residents_app.rounds import ballots as ballots_svc
from residents_app.rounds import services as svc
from tests.querycount import count_statements


def _estate(factory, db, office, code, n_units, closed_rounds, open_rounds=1):
    t = utcnow()
    e = factory.estate(office=office, code=code, buildings={
        "1幢": [(str(101 + k), "80.00") for k in range(n_units // 2)],
        "2幢": [(str(201 + k), "70.00") for k in range(n_units - n_units // 2)]})
    db.session.flush()
    units = [u for b in e.buildings for u in b.units]

    def vote(rnd, when):
        for k, u in enumerate(units):
            if k % 3 != 2:
                ballots_svc.cast_ballot(rnd.id, u.id, u.ownerships[0].owner_id, "agree" if k % 2 else "disagree",
                                        when)

    for i in range(closed_rounds):
        old = svc.create_round(e.id, svc.RoundInput(kind="willingness", title=f"往期征求{i}",
                                                     opens_at=t - timedelta(days=5),
                                                     closes_at=t - timedelta(days=1)), t - timedelta(days=5))
        svc.open_round(old.id, t - timedelta(days=5))
        vote(old, t - timedelta(days=3))
        assert svc.close_round(old.id, t - timedelta(days=1)) is True
    for i in range(open_rounds):
        rnd = svc.create_round(e.id, svc.RoundInput(kind="willingness", title=f"是否同意改造{i}",
                                                     opens_at=t - timedelta(hours=2),
                                                     closes_at=t + timedelta(days=7)), t - timedelta(hours=2))
        svc.open_round(rnd.id, t - timedelta(hours=2))
        vote(rnd, t - timedelta(hours=1))
    db.session.commit()
    return e, rnd


def _count(client, db, url):
    db.session.expire_all()
    client.get(url)  # warm: the first request of a process loads what later ones reuse
    db.session.expire_all()
    with count_statements(db.engine) as counted:
        resp = client.get(url)
    assert resp.status_code == 200, url
    return counted


# Issue 19: the dashboard reads the estate with its building names and its rounds in one statement (cards,
# deadlines, closed rounds and the timeline share them), its cards' counters and curves in one (the timeline asks
# the plan in force, shared with the funding card, and which later stages exist in one statement; 18 before, 8
# before the counters joined the curves and the rounds the estate). The round page for the street office: the
# user, the round with its estate and building names, the counters with the latest ballots and their labels (11
# before, 4 before the counters joined the latest ballots). The desk: the user, the round with its estate, one
# page of its roll with the page's ballots, the chain from its checkpoint with the round's sign-offs, the result
# publicity, the counters (no building names: the page does not show the buildings' rows) and its flags' device keys
# and ballots in one statement (19 before its pages, 10 before the flags' and the chain's statements were merged;
# 30 / 25 / 30 were allowed before issue 19).
@pytest.mark.parametrize("page,bound", [("dashboard", 4), ("round", 3), ("desk", 7)])
def test_page_statements_do_not_grow_with_units_ballots_or_closed_rounds(client, login_as, factory, db, page,
                                                                          bound):
    office = factory.street_office()
    street = factory.user("street", office=office)
    small, small_round = _estate(factory, db, office, "S1", 4, 1)
    large, large_round = _estate(factory, db, office, "L1", 30, 3, open_rounds=3)
    login_as(client, street)
    urls = {"dashboard": "/estates/{e}/dashboard", "round": "/rounds/{r}", "desk": "/rounds/{r}/verify"}
    a = _count(client, db, urls[page].format(e=small.id, r=small_round.id))
    b = _count(client, db, urls[page].format(e=large.id, r=large_round.id))
    assert a.total <= bound, a.report()
    assert b.total == a.total, (a.report(), b.report())
