"""The resident API of the evaluation: the satisfaction survey a unit can answer now (answered through the rounds'
cast: same checks, ballot, receipt and audit entry), and the published evaluation with its survey's summary."""

from __future__ import annotations

from datetime import date, timedelta

import sqlalchemy as sa

from residents_app.audit.models import AuditEvent
from residents_app.rounds import ballots
from residents_app.rounds import services as rounds
from residents_app.rounds.models import Ballot
from residents_app.works.acceptance import evaluation as svc


def _survey(world, *, opens, closes, estate=None, kind="satisfaction", title="改造满意度调查"):
    rnd = rounds.create_round((estate or world.estate).id, rounds.RoundInput(
        kind=kind, title=title, opens_at=opens, closes_at=closes, **({"matter_item": 7} if kind == "general" else {})),
        opens, world.committee)
    rounds.open_round(rnd.id, opens, world.committee)
    world.db.session.commit()
    return rnd


def test_no_session_is_401(client, world):
    assert client.get("/api/r/evaluation").status_code == 401
    resp = client.post("/api/r/evaluation/survey", json={"round_id": 1, "choice": "agree"})
    assert (resp.status_code, resp.get_json()["code"]) == (401, "identity_required")


def test_answer_the_survey_and_change_the_answer(client, resident_login, world, db, clock):
    opens, closes = world.later(hours=-1), world.later(days=2)
    rnd = _survey(world, opens=opens, closes=closes)
    resident_login(client, world.u101)
    data = client.get("/api/r/evaluation").get_json()
    assert data == {"evaluation": None, "survey": None, "survey_to_answer": {
        "round_id": rnd.id, "title": "改造满意度调查", "opens_at": "2026-09-01T01:00:00+00:00",
        "closes_at": "2026-09-03T02:00:00+00:00",
        "options": [{"key": "agree", "label": "满意"}, {"key": "disagree", "label": "不满意"},
                    {"key": "abstain", "label": "说不清"}],
        "rating": "评分（1 到 5 分，5 分最满意）", "my_answer": None}}
    resp = client.post("/api/r/evaluation/survey", json={"round_id": rnd.id, "choice": "agree", "rating": 6})
    assert (resp.status_code, resp.get_json()["code"]) == (422, "invalid_rating")
    resp = client.post("/api/r/evaluation/survey", json={"round_id": rnd.id, "choice": "yes"})
    assert (resp.status_code, resp.get_json()["code"]) == (422, "invalid_choice")
    resp = client.post("/api/r/evaluation/survey", json={"round_id": rnd.id, "choice": "agree", "unit_id": 1})
    assert resp.status_code == 422 and resp.get_json()["errors"]["json"] == {"unit_id": ["Unknown field."]}
    resp = client.post("/api/r/evaluation/survey", json={"round_id": rnd.id, "choice": "disagree", "rating": 2,
                                                         "comment": "施工太吵"})
    assert resp.status_code == 201, resp.get_json()
    first = db.session.execute(sa.select(Ballot)).scalar_one()
    assert resp.get_json() == {"round_id": rnd.id, "choice": "disagree", "choice_label": "不满意", "rating": 2,
                               "cast_at": "2026-09-01T02:00:00+00:00", "receipt_code": first.receipt_code}
    assert (first.unit_id, first.comment, first.channel, first.status) == (world.u101.id, "施工太吵", "online",
                                                                           "counted")
    assert first.receipt_code
    # changed in the survey's last minute: the later answer counts
    clock.now = closes - timedelta(minutes=1)
    resp = client.post("/api/r/evaluation/survey", json={"round_id": rnd.id, "choice": "agree", "rating": 5})
    assert resp.status_code == 201
    mine = client.get("/api/r/evaluation").get_json()["survey_to_answer"]["my_answer"]
    assert (mine["choice"], mine["choice_label"], mine["rating"], mine["cast_at"]) == (
        "agree", "满意", 5, "2026-09-03T01:59:00+00:00")
    assert [b.status for b in db.session.execute(sa.select(Ballot).order_by(Ballot.id)).scalars()] == [
        "superseded", "counted"]
    assert db.session.execute(sa.select(sa.func.count()).select_from(AuditEvent).where(
        AuditEvent.kind == "ballot.cast")).scalar_one() == 2
    # at the close: no more answers, and nothing left to answer
    clock.now = closes
    resp = client.post("/api/r/evaluation/survey", json={"round_id": rnd.id, "choice": "abstain"})
    assert (resp.status_code, resp.get_json()["code"]) == (409, "vote_window_closed")
    assert client.get("/api/r/evaluation").get_json()["survey_to_answer"] is None


def test_only_my_estates_satisfaction_survey(client, resident_login, world, db, other, clock):
    theirs = _survey(world, opens=world.later(hours=-1), closes=world.later(days=2), estate=other)
    vote = _survey(world, opens=world.later(hours=-1), closes=world.later(days=2), kind="general",
                   title="是否安装充电桩")
    resident_login(client, world.u101)
    for rid in (theirs.id, vote.id, 99999):
        resp = client.post("/api/r/evaluation/survey", json={"round_id": rid, "choice": "agree"})
        assert (resp.status_code, resp.get_json()["code"]) == (404, "no_survey"), rid
    assert client.get("/api/r/evaluation").get_json() == {"evaluation": None, "survey": None,
                                                         "survey_to_answer": None}
    assert db.session.execute(sa.select(sa.func.count(Ballot.id))).scalar_one() == 0


def test_published_evaluation_with_its_survey(client, resident_login, world, db, other, clock):
    opens = world.later(days=-3)
    rnd = _survey(world, opens=opens, closes=opens + timedelta(days=1))
    ballots.cast_ballot(rnd.id, world.u101.id, world.owner(world.u101).id, "agree", opens + timedelta(hours=1),
                        rating=5)
    ballots.cast_ballot(rnd.id, world.u102.id, world.owner(world.u102).id, "agree", opens + timedelta(hours=2),
                        rating=4)
    rounds.close_round(rnd.id, opens + timedelta(days=1))
    e = svc.create_evaluation(world.estate, title="问效评价", weights={"resident": 50, "community": 20, "street": 30},
                              satisfaction_round_id=rnd.id, user=world.street, now=world.now)
    full = {i.key: str(i.points) for i in svc.template_of(e).items}
    svc.save_sheet(e, evaluator_name="居民代表甲", group="resident", scores=full, user=world.committee, now=world.now)
    svc.save_sheet(e, evaluator_name="社区乙", group="community",
                   scores={i.key: str(i.points / 2) for i in svc.template_of(e).items}, user=world.committee,
                   now=world.now)
    svc.save_sheet(e, evaluator_name="街道丙", group="street", scores={**full, "1.1": ""}, user=world.street,
                   now=world.now)
    resident_login(client, world.u201)
    assert client.get("/api/r/evaluation").get_json()["evaluation"] is None  # a draft is not shown
    svc.publish_evaluation(e, world.estate, posted_on=date(2026, 9, 1), user=world.street, now=world.now)
    db.session.commit()
    data = client.get("/api/r/evaluation").get_json()
    result = data["evaluation"]
    # every item 0.9 of its points, except 1.1 (1 point): (50 × 1 + 20 × 0.5) / 70 = 6/7; total 89.1 + 6/7
    assert (result["id"], result["title"], result["published_at"], result["total"], result["total_points"],
            result["grade"]) == (e.id, "问效评价", "2026-09-01T02:00:00+00:00", "89.96", "100", "良好")
    assert result["groups"] == [{"group": "resident", "label": "居民代表", "weight_pct": 50, "evaluators": 1},
                                {"group": "community", "label": "社区", "weight_pct": 20, "evaluators": 1},
                                {"group": "street", "label": "街道办事处", "weight_pct": 30, "evaluators": 1}]
    assert len(result["aspects"]) == 22
    # the first aspect (5 points): 0.9 × 4 + 6/7 = 4.457… -> 4.46; the second, 0.9 of its points
    assert result["aspects"][0] == {"aspect": "组织领导", "score": "4.46", "points": "5"}
    second = result["aspects"][1]
    assert second["score"] == f"{float(second['points']) * 0.9:.2f}"
    assert data["survey"] == {
        "round_id": rnd.id, "title": "改造满意度调查", "total_count": 3, "response_count": 2, "response_rate": "66.66%",
        "questions": [
            {"key": "choice", "title": "总体满意度", "responses": 2, "distribution": [
                {"key": "agree", "label": "满意", "count": 2, "share": "100.00%"},
                {"key": "disagree", "label": "不满意", "count": 0, "share": "0.00%"},
                {"key": "abstain", "label": "说不清", "count": 0, "share": "0.00%"}]},
            {"key": "rating", "title": "评分（1 到 5 分，5 分最满意）", "responses": 2, "average": "4.50",
             "distribution": [{"score": 5, "count": 1, "share": "50.00%"}, {"score": 4, "count": 1, "share": "50.00%"},
                              {"score": 3, "count": 0, "share": "0.00%"}, {"score": 2, "count": 0, "share": "0.00%"},
                              {"score": 1, "count": 0, "share": "0.00%"}]}]}
    assert data["survey_to_answer"] is None
    # a resident of another estate does not see this estate's evaluation
    (unit,) = other.buildings[0].units
    resident_login(client, unit)
    assert client.get("/api/r/evaluation").get_json()["evaluation"] is None
