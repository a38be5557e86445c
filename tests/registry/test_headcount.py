"""Individuals (自然人) and the voting head-count (表决人数, 法释〔2009〕7号 art. 9) of the register."""

from __future__ import annotations

from datetime import timedelta

import pytest

from residents_app.registry.models import Owner, Ownership
from residents_app.registry.services import register_summary
from residents_app.rounds import services as rs
from residents_app.rounds import tally as tally_svc


@pytest.fixture
def chain_estate(db, factory):
    """1幢: X (A+B), Y (B+C), Z (A), W (A); 2幢: V (D+E). Individuals A..E: 5; head-count {A,B} {B,C} {A} {D,E}: 4."""
    estate = factory.estate(buildings={"1幢": [("X", "80.00"), ("Y", "70.00"), ("Z", "60.00"), ("W", "50.00")],
                                       "2幢": [("V", "90.00")]})
    units = {u.number: u for b in estate.buildings for u in b.units}
    for u in units.values():  # the factory's one owner per unit is replaced by the owners below
        for o in list(u.owners):
            db.session.delete(db.session.get(Ownership, (u.id, o.id)))
            db.session.delete(o)
    db.session.flush()
    people = {}
    for i, name in enumerate("ABCDE"):
        people[name] = Owner(estate_id=estate.id, name=f"业主{name}", phone=f"1370000000{i}")
        db.session.add(people[name])
    db.session.flush()
    for number, names in (("X", "AB"), ("Y", "BC"), ("Z", "A"), ("W", "A"), ("V", "DE")):
        for n in names:
            db.session.add(Ownership(unit_id=units[number].id, owner_id=people[n].id))
    db.session.commit()
    db.session.expire_all()
    return estate


def test_register_counts_individuals_and_voting_head_count(chain_estate):
    s = register_summary(chain_estate.id)
    assert (s.household_count, s.owner_count, s.voting_person_count) == (5, 5, 4)
    assert [(b.name, b.totals.owner_count, b.totals.voting_person_count) for b in s.buildings] == [
        ("1幢", 3, 3), ("2幢", 2, 1)]
    assert (s.residential.owner_count, s.residential.voting_person_count) == (5, 4)


def test_head_count_equals_the_denominator_of_a_person_counted_round(chain_estate, now, db):
    b1 = next(b for b in chain_estate.buildings if b.name == "1幢")
    for scope in ([], [b1.id]):
        rnd = rs.create_round(chain_estate.id, rs.RoundInput(
            kind="general", matter_item=7, title="按人数计", counting_mode="person", scope_building_ids=scope,
            opens_at=now, closes_at=now + timedelta(days=7)), now)
        preview = tally_svc.compute_tally(rnd.id, now).figures.total_count
        assert rs.open_round(rnd.id, now)
        frozen = tally_svc.compute_tally(rnd.id, now).figures.total_count
        summary = register_summary(chain_estate.id, scope or None)
        assert (preview, frozen, summary.voting_person_count) == ((3, 3, 3) if scope else (4, 4, 4))


def test_estate_page_and_api_label_both_figures(client, login_as, factory, chain_estate, db):
    user = factory.user("committee", estate=chain_estate)
    db.session.commit()
    login_as(client, user)
    html = client.get(f"/estates/{chain_estate.id}").get_data(as_text=True)
    assert "业主（自然人）" in html and "表决人数" in html
    assert '<td class="num" id="individuals"><strong>5</strong></td>' in html
    assert '<td class="num" id="voting-head-count"><strong>4</strong></td>' in html
    body = client.get(f"/api/estates/{chain_estate.id}").get_json()
    assert (body["summary"]["owner_count"], body["summary"]["voting_person_count"]) == (5, 4)
    assert [(b["name"], b["totals"]["voting_person_count"]) for b in body["summary"]["buildings"]] == [
        ("1幢", 3), ("2幢", 1)]
