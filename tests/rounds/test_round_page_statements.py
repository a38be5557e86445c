"""The round page's statements (issue 19): what each audience's first view reads, and that it does not grow with
the roll, the ballots or the closed rounds. The street office's bound is in tests/oversight/test_page_statements.py;
here the committee member's view of an open round (the entry forms' roll, the pending ballots and mandates) and
the non-voters' page it links to."""

from __future__ import annotations

import pytest

from tests.oversight.test_page_statements import _count, _estate


@pytest.mark.parametrize("path,bound", [("/rounds/{r}", 8), ("/rounds/{r}/non-voters", 4)])
def test_committee_round_page_statements_do_not_grow(client, login_as, factory, db, path, bound):
    office = factory.street_office()
    small, small_round = _estate(factory, db, office, "S1", 4, 1)
    large, large_round = _estate(factory, db, office, "L1", 30, 3, open_rounds=3)
    counts = []
    for estate, rnd in ((small, small_round), (large, large_round)):
        member = factory.user("committee", estate=estate)
        db.session.commit()
        login_as(client, member)
        counts.append(_count(client, db, path.format(r=rnd.id)))
        client.post("/api/auth/logout")
    a, b = counts
    # user, round with its estate and building names, counters, roll rows, pending ballots, mandates, latest ballots,
    # the round's extensions of its closing time (the non-voters' page: user, round, estate, the list)
    assert a.total <= bound, a.report()
    assert b.total == a.total, (a.report(), b.report())
