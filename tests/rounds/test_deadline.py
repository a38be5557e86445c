"""A passed deadline is final by the server's clock, whether or not the closing job has run (issue 13, item 9)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from residents_app.db import utcnow
from residents_app.errors import Conflict
from residents_app.formatting import to_local
from residents_app.rounds import api, ballots, castpath, committee_views, resident_views
from residents_app.rounds import services as svc
from residents_app.rounds.models import Ballot, Round, RoundExtension

SECOND = timedelta(seconds=1)


def owner_of(unit):
    return unit.ownerships[0].owner_id


def test_extend_after_the_deadline_is_refused_and_no_vote_gets_in(db, make_round, units, now, committee):
    rnd = make_round(kind="general", matter_item=7)
    closes = rnd.closes_at
    u = units["1幢-101"]
    # No closing job has run: the stored status still says "open".
    with pytest.raises(Conflict) as exc:
        svc.extend_round(rnd.id, closes + timedelta(days=2), "很多业主还没投", closes + SECOND, committee)
    assert (exc.value.status, exc.value.code) == (409, "deadline_passed")
    assert exc.value.message == "截止时间已过，表决已经结束，不能再延长"
    assert (rnd.status, rnd.closes_at, rnd.extensions) == ("open", closes, [])
    with pytest.raises(Conflict) as exc:
        ballots.cast_ballot(rnd.id, u.id, owner_of(u), "agree", closes + SECOND)
    assert (exc.value.status, exc.value.code) == (409, "vote_window_closed")
    # Exactly at the deadline it is already over, for extending and for casting.
    with pytest.raises(Conflict) as exc:
        svc.extend_round(rnd.id, closes + timedelta(days=2), "很多业主还没投", closes, committee)
    assert exc.value.code == "deadline_passed"
    with pytest.raises(Conflict):
        ballots.cast_ballot(rnd.id, u.id, owner_of(u), "agree", closes)
    assert db.session.execute(sa.select(sa.func.count()).select_from(Ballot)).scalar_one() == 0


def test_extend_one_second_before_the_deadline_works(db, make_round, units, now, committee):
    rnd = make_round(kind="general", matter_item=7)
    closes = rnd.closes_at
    svc.extend_round(rnd.id, closes + timedelta(days=2), "很多业主还没投", closes - SECOND, committee)
    assert rnd.closes_at == closes + timedelta(days=2)
    assert [(e.old_closes_at, e.new_closes_at) for e in rnd.extensions] == [(closes, closes + timedelta(days=2))]
    u = units["1幢-101"]
    b = ballots.cast_ballot(rnd.id, u.id, owner_of(u), "agree", closes + SECOND)
    assert (b.status, b.choice) == ("counted", "agree")


@pytest.fixture
def clock(monkeypatch):
    """The clock of the committee pages, the committee API and the residents' API and pages."""
    state = {"now": utcnow()}
    for module in (api, committee_views, resident_views):
        monkeypatch.setattr(module, "utcnow", lambda: state["now"])
    return state


def _identify(client, token, unit):
    owner = unit.owners[0]
    resp = client.post(f"/api/ballot/{token}/identity", json={"name": owner.name, "phone_last4": owner.phone[-4:]})
    assert resp.status_code == 200, resp.get_json()


def _round_closing_in_an_hour(db, estate, committee):
    t = utcnow()
    rnd = svc.create_round(estate.id, svc.RoundInput(kind="general", matter_item=7, title="加装电梯",
                                                     opens_at=t - timedelta(hours=1),
                                                     closes_at=t + timedelta(hours=1)), t - timedelta(hours=1),
                           committee)
    assert svc.open_round(rnd.id, t - timedelta(hours=1), committee)
    db.session.commit()
    return rnd


def test_page_and_api_refuse_to_extend_after_the_deadline_and_the_cast_after_it(
        client, db, login_as, estate, committee, units, link_for, clock):
    rnd = _round_closing_in_an_hour(db, estate, committee)
    closes = rnd.closes_at
    tokens = link_for()
    clock["now"] = closes - timedelta(minutes=10)
    _identify(client, tokens["1幢-101"], units["1幢-101"])
    cast_url = f"/api/ballot/{tokens['1幢-101']}/cast"
    first = client.post(cast_url, json={"round_id": rnd.id, "choice": "agree"})
    assert first.status_code == 201, first.get_json()

    login_as(client, committee)
    clock["now"] = closes + SECOND  # the closing job has not run: status "open"
    new_local = to_local(closes + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")
    page = client.post(f"/rounds/{rnd.id}/extend", data={"closes_at": new_local, "reason": "补投"})
    assert page.status_code == 409
    assert "截止时间已过，表决已经结束，不能再延长" in page.get_data(as_text=True)
    resp = client.post(f"/api/rounds/{rnd.id}/extend",
                       json={"closes_at": (closes + timedelta(days=3)).isoformat(), "reason": "补投"})
    assert resp.status_code == 409
    assert resp.get_json()["code"] == "deadline_passed"
    detail = client.get(f"/rounds/{rnd.id}").get_data(as_text=True)
    assert 'id="extend-closed"' in detail and 'id="new-close"' not in detail

    # The owner's change after the deadline: refused (the round was already seen open: the one-statement path
    # is tried first, finds no open window, and the checked path says why).
    resp = client.post(cast_url, json={"round_id": rnd.id, "choice": "disagree"})
    assert resp.status_code == 409
    assert resp.get_json()["code"] == "vote_window_closed"
    db.session.expire_all()
    r = db.session.get(Round, rnd.id)
    assert (r.status, r.closes_at) == ("open", closes)
    assert db.session.execute(sa.select(sa.func.count()).select_from(RoundExtension)).scalar_one() == 0
    assert [(b.choice, b.status) for b in db.session.execute(sa.select(Ballot)).scalars()] == [("agree", "counted")]


@pytest.mark.parametrize("offset, written", [(-SECOND, True), (timedelta(0), False), (SECOND, False)])
def test_one_statement_cast_path_refuses_at_and_after_the_deadline(db, make_round, units, now, estate, offset,
                                                                    written):
    """castpath's checked insert (PostgreSQL: the whole cast in one statement; SQLite: the checked ballot insert)
    writes nothing at or after closes_at, whatever the status says."""
    from residents_app.auth.resident import hash_token
    from residents_app.rounds.links import issue_links

    rnd = make_round(kind="general", matter_item=7)
    u = units["1幢-101"]
    token = dict((unit.id, tok) for unit, tok in issue_links(estate.id, now))[u.id]
    link_id = _link_id(db, u.id)
    cast_round = castpath.CastRound(id=rnd.id, estate_id=rnd.estate_id, kind=rnd.kind, status="open",
                                    opens_at=rnd.opens_at, closes_at=rnd.closes_at, options=rnd.options,
                                    item_menu=rnd.item_menu)
    castpath.remember_round(cast_round)
    try:
        result = ballots.cast_known_round(u.id, owner_of(u), link_id, hash_token(token), rnd.id, "agree",
                                          rnd.closes_at + offset, items=[], rating=None, comment="", client=None)
    finally:
        castpath.forget_round(rnd.id)
    assert (result is not None) is written
    count = db.session.execute(sa.select(sa.func.count()).select_from(Ballot)).scalar_one()
    assert count == (1 if written else 0)


def _link_id(db, unit_id):
    from residents_app.registry.models import UnitLink

    return db.session.execute(sa.select(UnitLink.id).where(UnitLink.unit_id == unit_id,
                                                           UnitLink.revoked_at.is_(None))).scalar_one()
