"""Turnout on the district and city tables counts what each open round counts (issue 19): a person-counted round
its persons (participated / persons, the figures of its own tally), a household-counted round its households.

Each estate here: 1幢 101 (80.00 m²), 102 (70.00 m²), 103 (50.00 m²) and 2幢 201 (60.00 m²); the owner of 1幢-101
also owns 1幢-102 and 2幢-201, so 4 households are 2 persons. That owner votes for 1幢-101 only: 1 of 4 households
(25.00 %), 1 of 2 persons (50.00 %).
"""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from openpyxl import load_workbook

from residents_app.db import utcnow
from residents_app.oversight import district as district_svc
from residents_app.registry.models import Ownership
from residents_app.rounds import ballots as ballots_svc
from residents_app.rounds import services as svc
from residents_app.rounds import tally as tally_svc
from tests.oversight.test_district_scale import BOUND, build
from tests.querycount import count_statements

BUILDINGS = {"1幢": [("101", "80.00"), ("102", "70.00"), ("103", "50.00")], "2幢": [("201", "60.00")]}


def estate_of_one_owner(factory, db, office, code):
    e = factory.estate(office=office, code=code, name="一户多套", buildings=BUILDINGS)
    db.session.flush()
    units = {u.label: u for b in e.buildings for u in b.units}
    owner = units["1幢-101"].ownerships[0].owner_id
    for label in ("1幢-102", "2幢-201"):
        db.session.delete(units[label].ownerships[0])
        db.session.add(Ownership(unit_id=units[label].id, owner_id=owner))
    db.session.commit()
    db.session.expire_all()
    return e, {u.label: u for b in e.buildings for u in b.units}, owner


def open_round(db, estate, units, owner, mode, title="是否同意加装电梯"):
    t = utcnow()
    rnd = svc.create_round(estate.id, svc.RoundInput(kind="general", title=title, matter_item=7, counting_mode=mode,
                                                     opens_at=t - timedelta(hours=1), closes_at=t + timedelta(days=7)),
                           t - timedelta(hours=1))
    assert svc.open_round(rnd.id, t - timedelta(hours=1)) is True
    ballots_svc.cast_ballot(rnd.id, units["1幢-101"].id, owner, "agree", t - timedelta(minutes=30))
    db.session.commit()
    return rnd


@pytest.fixture
def office(factory, db):
    office = factory.street_office()
    office.district = "鹿城区"
    street = factory.user("street", office=office)
    bureau = factory.user("bureau")
    bureau.district = "鹿城区"
    db.session.commit()
    return office, street, bureau


def _row(html, estate):
    return html.split(f'id="estate-{estate.id}"')[1].split("</tr>")[0]


def test_a_person_counted_round_shows_its_persons_on_the_district_and_city_tables(client, login_as, factory, db,
                                                                                  office):
    office, street, bureau = office
    persons, units, owner = estate_of_one_owner(factory, db, office, "P001")
    person_round = open_round(db, persons, units, owner, "person")
    households, units2, owner2 = estate_of_one_owner(factory, db, office, "P002")
    open_round(db, households, units2, owner2, "household")
    # Both kinds open at once: their figures add up, in both units.
    mixed, units3, owner3 = estate_of_one_owner(factory, db, office, "P003")
    open_round(db, mixed, units3, owner3, "household")
    open_round(db, mixed, units3, owner3, "person", title="是否同意更换外墙")

    # The round's own tally counts the same persons.
    f = tally_svc.compute_tally(person_round.id).to_dict()["figures"]
    assert (f["voted_count"], f["total_count"]) == (1, 2)

    login_as(client, street)
    html = client.get("/district").get_data(as_text=True)
    assert "50.00%（1 / 2 人）" in _row(html, persons)
    assert "25.00%（1 / 4 户）" in _row(html, households)
    assert "33.33%（2 / 6 户/人）" in _row(html, mixed)
    csv = client.get("/district/export.csv?sort=code").get_data().decode("utf-8-sig").splitlines()
    assert csv[0] == ",".join(district_svc.HEADER)
    assert [[c[0], *c[2:8]] for c in (line.split(",") for line in csv[1:])] == [
        ["P001", "投票中：一般事项表决", "1", "50.00%", "1", "2", "人"],
        ["P002", "投票中：一般事项表决", "1", "25.00%", "1", "4", "户"],
        ["P003", "投票中：一般事项表决", "2", "33.33%", "2", "6", "户/人"]]
    ws = load_workbook(io.BytesIO(client.get("/district/export.xlsx?sort=code").get_data())).active
    assert [r[4:8] for r in ws.iter_rows(min_row=2, values_only=True)] == [
        ("50.00%", 1, 2, "人"), ("25.00%", 1, 4, "户"), ("33.33%", 2, 6, "户/人")]

    client.post("/logout")
    login_as(client, bureau)
    html = client.get("/city").get_data(as_text=True)
    assert "50.00%（1 / 2 人）" in _row(html, persons) and "25.00%（1 / 4 户）" in _row(html, households)
    lines = client.get("/city/export.csv?sort=code").get_data().decode("utf-8-sig").splitlines()
    assert [line.split(",")[1:9] for line in lines[1:]] == [line.split(",")[0:8] for line in csv[1:]]
    ws = load_workbook(io.BytesIO(client.get("/city/export.xlsx?sort=code").get_data())).active
    assert [r[5:9] for r in ws.iter_rows(min_row=2, values_only=True)] == [
        ("50.00%", 1, 2, "人"), ("25.00%", 1, 4, "户"), ("33.33%", 2, 6, "户/人")]


def _count(client, db, url):
    db.session.expire_all()
    with count_statements(db.engine) as counted:
        assert client.get(url).status_code == 200
    return counted


def test_person_counted_rounds_add_no_statement_to_the_district_view(client, login_as, factory, db, office):
    office, street, _ = office
    build(factory, db, office, 3)  # household-counted rounds only
    login_as(client, street)
    households_only = _count(client, db, "/district")
    for i in range(3):
        e, units, owner = estate_of_one_owner(factory, db, office, f"P{i:03d}")
        open_round(db, e, units, owner, "person")
    with_persons = _count(client, db, "/district")
    assert with_persons.total == households_only.total <= BOUND, (households_only.report(), with_persons.report())
