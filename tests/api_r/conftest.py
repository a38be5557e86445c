"""Fixtures of the resident API tests: two estates (mine and another), a committee, rounds, a fixed clock for the
resident API's routes, and a resident session opened as a mini-program opens it (the unit's link + identity)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from residents_app.rounds import links as links_svc
from residents_app.rounds import services as round_svc

# Tue 2026-09-29 10:00 Beijing: the publicity tests' posting day (5 working days end on 2026-10-12).
T0 = datetime(2026, 9, 29, 2, 0, tzinfo=UTC)


@pytest.fixture
def clock(monkeypatch):
    """The time the resident API's routes see (clock.now; set it to move)."""
    from residents_app.auth import resident_api as root
    from residents_app.publicity import resident_api as publicity_api
    from residents_app.rounds import resident_api as rounds_api

    class Clock:
        now = T0

    c = Clock()
    for module in (root, rounds_api, publicity_api):
        monkeypatch.setattr(module, "utcnow", lambda: c.now)
    return c


class Estates:
    def __init__(self, factory, db):
        # mine: 1幢 101 (100.00), 102 (100.00); 2幢 201 (60.00) -> 3 households, 260.00 m²
        self.mine = factory.estate(name="甲小区", buildings={"1幢": [("101", "100.00"), ("102", "100.00")],
                                                          "2幢": [("201", "60.00")]})
        self.other = factory.estate(name="乙小区", buildings={"9幢": [("901", "90.00")]})
        self.committee = factory.user("committee", estate=self.mine)
        self.committee_b = factory.user("committee", estate=self.other)
        self.units = {u.label: u for b in self.mine.buildings for u in b.units}
        self.other_unit = self.other.buildings[0].units[0]
        self.b1, self.b2 = sorted(self.mine.buildings, key=lambda b: b.name)
        db.session.commit()


@pytest.fixture
def estates(factory, db):
    return Estates(factory, db)


@pytest.fixture
def make_round(db, estates):
    """make_round(estate=None, open_it=True, opens_at=T0, days=14, **RoundInput fields) -> Round (committed)."""

    def make(estate=None, open_it=True, opens_at=T0, days=14, **kw):
        estate = estate or estates.mine
        user = estates.committee if estate is estates.mine else estates.committee_b
        data = round_svc.RoundInput(kind=kw.pop("kind", "willingness"), title=kw.pop("title", "是否同意改造"),
                                    opens_at=opens_at, closes_at=opens_at + timedelta(days=days), **kw)
        rnd = round_svc.create_round(estate.id, data, opens_at, user)
        if open_it:
            assert round_svc.open_round(rnd.id, opens_at, user) is True
        db.session.commit()
        return rnd

    return make


@pytest.fixture
def tokens(db, estates):
    """{label: token} of every unit of both estates."""
    out = {}
    for estate in (estates.mine, estates.other):
        out.update({u.label: t for u, t in links_svc.issue_links(estate.id, T0)})
    db.session.commit()
    return out


@pytest.fixture
def identify(tokens):
    """identify(client, unit): the owner opens the unit's link and confirms their identity (the resident session)."""

    def sign_in(client, unit):
        owner = unit.owners[0]
        resp = client.post(f"/api/ballot/{tokens[unit.label]}/identity",
                           json={"name": owner.name, "phone_last4": owner.phone[-4:]})
        assert resp.status_code == 200, resp.get_json()
        return owner

    return sign_in
