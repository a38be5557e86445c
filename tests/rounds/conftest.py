"""Fixtures for rounds: an estate with two buildings, a committee, a round builder."""

from __future__ import annotations

from datetime import timedelta

import pytest

from residents_app.rounds import links as links_svc
from residents_app.rounds import services as svc
from tests.voted import tamper, voted_round  # noqa: F401


@pytest.fixture
def estate(factory, db):
    # 1幢: 100.00 + 100.00 + 100.00; 2幢: 60.00 + 40.00  -> 5 households, 400.00 m²
    e = factory.estate(buildings={"1幢": [("101", "100.00"), ("102", "100.00"), ("103", "100.00")],
                                  "2幢": [("201", "60.00"), ("202", "40.00")]})
    # Commit (a savepoint here): an error page's rollback must not take the fixture data with it.
    db.session.commit()
    return e


@pytest.fixture
def committee(factory, estate, db):
    user = factory.user("committee", estate=estate)
    db.session.commit()
    return user


@pytest.fixture
def committee2(factory, estate, db):
    user = factory.user("committee", estate=estate)
    db.session.commit()
    return user


def units_of(estate):
    return {u.label: u for b in estate.buildings for u in b.units}


@pytest.fixture
def units(estate, db):
    db.session.expire_all()
    return units_of(estate)


@pytest.fixture
def make_round(db, estate, now, committee):
    def make(open_it=True, **kw):
        data = svc.RoundInput(kind=kw.pop("kind", "willingness"), title=kw.pop("title", "是否同意改造"),
                              opens_at=kw.pop("opens_at", now), closes_at=kw.pop("closes_at", now + timedelta(days=14)),
                              **kw)
        rnd = svc.create_round(estate.id, data, now, committee)
        if open_it:
            assert svc.open_round(rnd.id, now, committee) is True
        return rnd
    return make


@pytest.fixture
def live_round(db, estate, committee):
    """An open round whose window contains the real clock (pages and API use utcnow())."""
    from residents_app.db import utcnow

    def make(**kw):
        t = utcnow()
        data = svc.RoundInput(kind=kw.pop("kind", "willingness"), title=kw.pop("title", "是否同意改造"),
                              opens_at=t - timedelta(hours=1), closes_at=t + timedelta(days=14), **kw)
        rnd = svc.create_round(estate.id, data, t - timedelta(hours=1), committee)
        assert svc.open_round(rnd.id, t - timedelta(hours=1), committee) is True
        db.session.commit()
        return rnd
    return make


@pytest.fixture
def link_for(db, estate):
    """Issue links for the estate; returns {label: token}."""
    from residents_app.db import utcnow

    def make():
        tokens = {u.label: tok for u, tok in links_svc.issue_links(estate.id, utcnow())}
        db.session.commit()
        return tokens
    return make
