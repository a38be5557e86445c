"""/api/publicity/status answers a subject outside the caller's scope exactly as a subject that does not
exist: 404, same body. Before, another estate's subject answered 404 when it had a publicity and 200
("not posted") otherwise, so its existence leaked (issue 14, finding 9)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from residents_app.publicity import services as publicity
from residents_app.rounds import services as rounds

NOW = datetime(2026, 9, 29, 2, 0, tzinfo=UTC)
NOT_FOUND = {"code": "not_found", "status": 404, "message": "找不到该公示对象", "errors": {}}


@pytest.fixture
def estates(db, factory):
    mine = factory.estate(buildings={"1幢": [("101", "90.00")]})
    theirs = factory.estate(buildings={"1幢": [("101", "90.00")]})
    committee = factory.user("committee", estate=mine)
    round_of_theirs = rounds.create_round(theirs.id, rounds.RoundInput(
        kind="willingness", title="改不改", opens_at=NOW + timedelta(days=1), closes_at=NOW + timedelta(days=9)),
        NOW)
    posted = factory.estate(buildings={"1幢": [("101", "90.00")]})
    publicity.post_publicity(posted, subject_type="hardship_list", subject_id=posted.id, title="困难群众名单公示",
                             notice_text="请核对", posted_on=date(2026, 9, 29), working_days=5, actor="t", now=NOW)
    db.session.commit()
    return mine, theirs, posted, committee, round_of_theirs


def status(client, subject_type, subject_id):
    return client.get(f"/api/publicity/status?subject_type={subject_type}&subject_id={subject_id}")


def test_outside_the_scope_is_the_same_404_as_nonexistent(client, login_as, estates):
    mine, theirs, posted, committee, round_of_theirs = estates
    login_as(client, committee)
    answers = {
        "another estate's list, posted": status(client, "hardship_list", posted.id),
        "another estate's list, not posted": status(client, "hardship_list", theirs.id),
        "no such estate": status(client, "hardship_list", 987654),
        "another estate's round": status(client, "round_result", round_of_theirs.id),
        "another estate's roll": status(client, "round_roll", round_of_theirs.id),
        "no such round": status(client, "round_result", 987654),
        "no such plan version": status(client, "plan_version", 987654),
    }
    assert {what: (r.status_code, r.get_json()) for what, r in answers.items()} == {
        what: (404, NOT_FOUND) for what in answers}


def test_own_subjects_still_answer(client, login_as, estates, factory, db):
    mine, theirs, posted, committee, round_of_theirs = estates
    login_as(client, committee)
    resp = status(client, "hardship_list", mine.id)
    assert resp.status_code == 200
    assert resp.get_json() == {"posted": False, "ended": False, "open_objections": 0,
                               "reasons_not_complete": ["该困难群众名单尚未公示"], "publicity_id": None}
    street = factory.user("street", estate=posted)
    db.session.commit()
    client.post("/api/auth/logout")
    login_as(client, street)
    resp = status(client, "hardship_list", posted.id)
    assert resp.status_code == 200 and resp.get_json()["posted"] is True
