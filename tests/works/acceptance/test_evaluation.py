"""The evaluation (问效): the shipped 22×4 template, the street office's edit, named evaluators' sheets, exact
totals, publication on the public board with the satisfaction survey beside it."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from residents_app.errors import Conflict, ValidationFailed
from residents_app.publicity.models import Publicity
from residents_app.works.acceptance import evaluation as svc


def _survey(world):
    from residents_app.rounds import ballots
    from residents_app.rounds import services as rounds

    base = world.now - timedelta(days=3)
    rnd = rounds.create_round(world.estate.id, rounds.RoundInput(
        kind="satisfaction", title="改造满意度调查", opens_at=base, closes_at=base + timedelta(days=1)),
        base, world.committee)
    rounds.open_round(rnd.id, base, world.committee)
    for u, (choice, rating) in zip(world.units, (("agree", 5), ("agree", 4), ("disagree", 2)), strict=True):
        ballots.cast_ballot(rnd.id, u.id, world.owner(u).id, choice, base + timedelta(hours=1), rating=rating)
    rounds.close_round(rnd.id, base + timedelta(days=1))
    world.db.session.commit()
    return rnd


def _full(e, points_of):
    return {i.key: points_of(i) for i in svc.template_of(e).items}


def test_shipped_template_and_a_full_exact_result(world):
    e = svc.create_evaluation(world.estate, title="问效评价", weights={"resident": "50", "community": "20",
                                                                   "street": "30"},
                              satisfaction_round_id=None, user=world.street, now=world.now)
    t = svc.template_of(e)
    assert (len(t.aspects), len(t.items), str(t.total_points)) == (22, 88, "100")
    # residents: full marks; community: half marks; street: full marks but 1.1 left blank
    svc.save_sheet(e, evaluator_name="居民代表甲", group="resident", scores=_full(e, lambda i: str(i.points)),
                   user=world.committee, now=world.now)
    svc.save_sheet(e, evaluator_name="社区乙", group="community", scores=_full(e, lambda i: str(i.points / 2)),
                   user=world.committee, now=world.now)
    street = _full(e, lambda i: str(i.points))
    street["1.1"] = ""
    svc.save_sheet(e, evaluator_name="街道丙", group="street", scores=street, user=world.street, now=world.now)
    r = svc.result_of(e)
    # every item: (50*p + 20*p/2 + 30*p)/100 = 0.9p, except 1.1 (1 point): (50*1 + 20*0.5)/70 = 6/7
    assert r.items["1.1"] * 7 == 6
    from fractions import Fraction

    assert r.total == Fraction(9, 10) * 99 + Fraction(6, 7)
    assert r.total_text == "89.96" and r.grade == "良好"
    assert r.missing == []


def test_missing_items_block_publication(world):
    e = svc.create_evaluation(world.estate, title="问效评价", weights={"resident": 50, "community": 20, "street": 30},
                              satisfaction_round_id=None, user=world.street, now=world.now)
    with pytest.raises(Conflict, match="还没有评价人打分"):
        svc.publish_evaluation(e, world.estate, posted_on=date(2026, 9, 1), user=world.street, now=world.now)
    svc.save_sheet(e, evaluator_name="居民代表甲", group="resident", scores={"1.1": "1", "2.2": "0.5"},
                   user=world.committee, now=world.now)
    with pytest.raises(Conflict, match="还有 86 个评价项目无人打分："
                                       "1.2、1.3、1.4、2.1、2.3、2.4、3.1、3.2、3.3、3.4等"):
        svc.publish_evaluation(e, world.estate, posted_on=date(2026, 9, 1), user=world.street, now=world.now)


def test_sheet_validation_and_replacement(world):
    e = svc.create_evaluation(world.estate, title="问效评价", weights={"resident": 50, "community": 20, "street": 30},
                              satisfaction_round_id=None, user=world.street, now=world.now)
    with pytest.raises(ValidationFailed, match="1.3 的得分 2.01 超过其分值 2"):
        svc.save_sheet(e, evaluator_name="甲", group="resident", scores={"1.3": "2.01"}, user=world.committee,
                       now=world.now)
    with pytest.raises(ValidationFailed, match="评价人类别"):
        svc.save_sheet(e, evaluator_name="甲", group="owner", scores={}, user=world.committee, now=world.now)
    svc.save_sheet(e, evaluator_name="甲", group="resident", scores={"1.3": "2"}, user=world.committee, now=world.now)
    svc.save_sheet(e, evaluator_name="甲", group="community", scores={"1.3": "1.5"}, user=world.committee,
                   now=world.now)
    assert [(s.evaluator_name, s.evaluator_group, s.scores) for s in e.sheets] == [("甲", "community", {"1.3": "1.5"})]
    with pytest.raises(ValidationFailed, match="之和须为 100（现为 90）"):
        svc.create_evaluation(world.estate, title="x", weights={"resident": 50, "community": 10, "street": 30},
                              satisfaction_round_id=None, user=world.street, now=world.now)


def test_published_with_the_survey_beside_it(world):
    rnd = _survey(world)
    e = svc.create_evaluation(world.estate, title="问效评价", weights={"resident": 50, "community": 20, "street": 30},
                              satisfaction_round_id=rnd.id, user=world.street, now=world.now)
    for name, group in (("居民代表甲", "resident"), ("社区乙", "community"), ("街道丙", "street")):
        svc.save_sheet(e, evaluator_name=name, group=group, scores=_full(e, lambda i: str(i.points)),
                       user=world.street, now=world.now)
    pub = svc.publish_evaluation(e, world.estate, posted_on=date(2026, 9, 1), user=world.street, now=world.now)
    world.db.session.commit()
    pub = world.db.session.get(Publicity, pub.id)
    assert e.status == "published" and e.published_total == "100.00"
    assert pub.subject_type == "evaluation" and pub.subject_label == "改造评价"
    assert pub.outcome_lines[0] == "总分 100.00 / 100，等级：优秀"
    assert pub.outcome_lines[1] == ("评价人：3 位（居民代表 1 位，权重 50%、社区 1 位，权重 20%、"
                                    "街道办事处 1 位，权重 30%）")
    assert pub.outcome_lines[2] == "组织领导：5.00 / 5"
    assert pub.outcome_lines[-3:] == ["居民满意度调查「改造满意度调查」：3 / 3 户答复（100.00%）",
                                      "总体满意度：满意 2 户（66.66%），不满意 1 户（33.33%），说不清 0 户（0.00%）",
                                      "平均评分：3.67（3 户评分）"]
    with pytest.raises(Conflict, match="已公布"):
        svc.save_sheet(e, evaluator_name="丁", group="street", scores={}, user=world.street, now=world.now)


def test_street_office_edits_its_template(world, client, login_as):
    login_as(client, world.street)
    page = client.get("/evaluation-template").get_data(as_text=True)
    assert "22 个方面，88 个评价项目，合计 100 分" in page
    resp = client.post("/evaluation-template",
                       data={"title": "本街道评价表", "lines": "甲 | 1 | 方案公示 | 60\n乙 | 2 | 质量 | 40"})
    assert resp.status_code == 302
    assert "2 个方面，2 个评价项目，合计 100 分" in client.get("/evaluation-template").get_data(as_text=True)
    resp = client.post("/evaluation-template", data={"title": "本街道评价表", "lines": "甲 | 1 | 方案公示"})
    assert resp.status_code == 422
    e = svc.create_evaluation(world.estate, title="问效", weights={"resident": 50, "community": 20, "street": 30},
                              satisfaction_round_id=None, user=world.street, now=world.now)
    assert [i.key for i in svc.template_of(e).items] == ["1", "2"]
    login_as(client, world.committee)
    assert client.get("/evaluation-template").status_code == 404  # roles_required hides pages of other roles


def test_pages_enter_a_sheet_and_publish(world, client, login_as):
    login_as(client, world.street)
    resp = client.post(f"/estates/{world.estate.id}/evaluation", data={
        "title": "问效评价", "weight_resident": "50", "weight_community": "20", "weight_street": "30"})
    assert resp.status_code == 302
    eid = int(resp.headers["Location"].rsplit("/", 1)[1])
    e = svc.get_evaluation(eid)
    form = {f"s_{i.key}": str(i.points) for i in svc.template_of(e).items}
    form["s_22.4"] = "0.5"
    resp = client.post(f"/evaluation/{eid}/sheets", data={"evaluator_name": "居民代表甲", "evaluator_group": "resident",
                                                          **form})
    assert resp.status_code == 302
    page = client.get(f"/evaluation/{eid}").get_data(as_text=True)
    assert 'id="total">99.50</span>' in page
    assert client.post(f"/evaluation/{eid}/publish").status_code == 302
    data = client.get(f"/api/works/evaluation/{eid}").get_json()
    assert (data["status"], data["total"], data["grade"], data["missing"]) == ("published", "99.50", "优秀", [])


def test_a_stored_template_that_no_longer_reads_is_a_409_not_a_500(world, client, login_as):
    """Found by schemathesis: an evaluation whose stored template is empty (damaged data) made the API a 500."""
    e = svc.create_evaluation(world.estate, title="问效", weights={"resident": 50, "community": 20, "street": 30},
                              satisfaction_round_id=None, user=world.street, now=world.now)
    e.template = []
    world.db.session.commit()
    with pytest.raises(Conflict) as err:
        svc.template_of(e)
    assert err.value.code == "evaluation_template_invalid"
    login_as(client, world.street)
    resp = client.get(f"/api/works/evaluation/{e.id}")
    assert resp.status_code == 409
    assert resp.get_json()["code"] == "evaluation_template_invalid"
