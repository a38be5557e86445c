"""The frozen roll of a round published for objections (DOMAIN: "the frozen roll is published for objections")."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from residents_app.errors import Conflict
from residents_app.publicity import services
from residents_app.rounds import services as rounds

from .conftest import POSTED_NOW


@pytest.fixture
def opened_round(db, estate, committee):
    rnd = rounds.create_round(estate.id, rounds.RoundInput(kind="willingness", title="是否同意改造",
                                                           opens_at=POSTED_NOW,
                                                           closes_at=POSTED_NOW + timedelta(days=14)),
                              POSTED_NOW, committee)
    rounds.open_round(rnd.id, POSTED_NOW, committee)
    db.session.commit()
    return rnd


def post_roll(estate, rnd, **kw):
    return services.post_publicity(estate, subject_type="round_roll", subject_id=rnd.id, title="表决名册公示",
                                   notice_text=kw.pop("notice_text", "请核对房号和产权面积"),
                                   posted_on=date(2026, 9, 29), working_days=5, actor="user:1:c", now=POSTED_NOW)


def test_the_roll_is_published_with_unit_numbers_areas_and_totals(db, estate, opened_round):
    pub = post_roll(estate, opened_round)
    assert pub.subject_label == "表决名册"
    assert pub.unit_list_title == "表决名册（房号 / 产权面积）"
    assert pub.unit_labels == ["1幢-101（90.00 m²）", "1幢-102（80.00 m²）", "1幢-103（70.00 m²）",
                               "2幢-201（60.00 m²）", "2幢-1001（50.00 m²）"]
    assert pub.outcome_lines == [
        "是否同意改造：表决名册共 5 户，产权面积合计 350.00 m²，于 2026-09-29 10:00 表决开启时冻结",
        "名册中的房号或产权面积如有错漏，请在公示期内提出异议。"]
    assert pub.last_day == date(2026, 10, 12)
    assert f"round_roll:{opened_round.id}" in dict(services.publishable_subjects(estate))
    status = services.publicity_status("round_roll", opened_round.id, POSTED_NOW)
    assert (status["posted"], status["publicity_id"]) == (True, pub.id)


def test_a_draft_rounds_roll_is_not_frozen_and_cannot_be_published(db, estate, committee):
    rnd = rounds.create_round(estate.id, rounds.RoundInput(kind="general", matter_item=7, title="草稿",
                                                           opens_at=POSTED_NOW,
                                                           closes_at=POSTED_NOW + timedelta(days=3)),
                              POSTED_NOW, committee)
    with pytest.raises(Conflict) as exc:
        post_roll(estate, rnd)
    assert (exc.value.code, exc.value.message) == ("roll_not_frozen", "表决尚未开启，名册还没有冻结，不能公示")
    assert f"round_roll:{rnd.id}" not in dict(services.publishable_subjects(estate))


def test_roll_page_offers_the_publicity_then_links_to_it(client, login_as, estate, committee, opened_round, db):
    login_as(client, committee)
    html = client.get(f"/rounds/{opened_round.id}/roll").get_data(as_text=True)
    assert "公示表决名册" in html and f"subject=round_roll:{opened_round.id}" in html
    form = client.get(f"/estates/{estate.id}/publicity?subject=round_roll:{opened_round.id}").get_data(as_text=True)
    assert f'<option value="round_roll:{opened_round.id}" selected>' in form
    pub = post_roll(estate, opened_round)
    db.session.commit()
    html = client.get(f"/rounds/{opened_round.id}/roll").get_data(as_text=True)
    assert f"/publicity/{pub.id}" in html and "公示表决名册</a>" not in html
    # The public board: unit numbers and areas, never an owner's name.
    board = client.get(f"/p/{estate.code}").get_data(as_text=True)
    assert "1幢-101（90.00 m²）" in board
    owner_names = [o.name for b in estate.buildings for u in b.units for o in u.owners]
    assert owner_names and not any(name in board for name in owner_names)
