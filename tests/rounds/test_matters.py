"""The rule follows the matter (issue 13 item 1): a round's kind fixes the Civil Code art. 278 item and the rules
it may use; a weaker rule is refused when the round is created or changed, naming the article and item; the
report and the rule text cite the item that applies."""

from __future__ import annotations

from datetime import timedelta

import pytest

from residents_app.errors import ValidationFailed
from residents_app.extensions import db
from residents_app.oversight.report import rule_lines
from residents_app.oversight.round_facts import round_report_data
from residents_app.rounds import services as svc
from residents_app.rounds.models import Round

PLAN_VOTE_REFUSAL = ("改造方案表决属于《民法典》第二百七十八条第一款第（七）项事项（改建、重建建筑物及其附属设施），"
                     "须采用“双三分之二（鹿城规则）”或“民法典第278条（重大事项）”，不能采用较弱的“民法典第278条（一般事项）”")


@pytest.fixture
def six(factory, db, now):
    """Six units of 100.00 m² and a published plan version."""
    from residents_app.plans import services as plans

    estate = factory.estate(buildings={"1幢": [(str(n), "100.00") for n in (101, 102, 103, 201, 202, 203)]})
    committee = factory.user("committee", estate=estate)
    plan = plans.create_plan(estate, title="综合改造方案", user=committee, now=now, management_plan="物业负责")
    plans.add_item(plan, name="屋面防水", category="basic", cost_fen=1_000_000, building_ids=None, user=committee,
                   now=now)
    plans.publish_plan(plan, user=committee, now=now)
    db.session.commit()
    return estate, committee, plan


def _body(estate, plan, **kw):
    return {"estate_id": estate.id, "kind": "plan_vote", "title": "改造方案表决", "plan_version_id": plan.id,
            "opens_at": "2026-12-01T09:00:00+08:00", "closes_at": "2026-12-08T09:00:00+08:00", **kw}


def test_a_plan_vote_under_the_ordinary_rule_is_refused_naming_item_seven(client, login_as, six):
    # Under the ordinary rule 3 agree / 1 disagree / 2 absent of these 6 units would "pass"
    # (tests/core/test_matters.py); the round cannot even be created.
    estate, committee, plan = six
    login_as(client, committee)
    resp = client.post("/api/rounds", json=_body(estate, plan, rule_preset="civil_code_278_ordinary"))
    assert resp.status_code == 422
    assert resp.get_json() == {"code": "validation_failed", "status": 422, "message": "表决设置有误，请检查标出的项目",
                               "errors": {"rule_preset": PLAN_VOTE_REFUSAL}}
    assert db.session.query(Round).count() == 0
    # Without a rule named, the matter's own: Lucheng double 2/3 (item 7).
    ok = client.post("/api/rounds", json=_body(estate, plan))
    assert ok.status_code == 201
    assert (ok.get_json()["rule_preset"], ok.get_json()["item"]) == ("lucheng_double_two_thirds", 7)


def test_changing_a_draft_to_a_weaker_rule_is_refused(client, login_as, six, now):
    estate, committee, plan = six
    rnd = svc.create_round(estate.id, svc.RoundInput(kind="plan_vote", title="改造方案表决", opens_at=now,
                                                     closes_at=now + timedelta(days=7), plan_version_id=plan.id),
                           now, committee)
    db.session.commit()
    with pytest.raises(ValidationFailed) as exc:
        svc.update_round(rnd.id, svc.RoundInput(kind="plan_vote", title="改造方案表决", opens_at=now,
                                                closes_at=now + timedelta(days=7), plan_version_id=plan.id,
                                                rule_preset="civil_code_278_ordinary"), now, committee)
    assert exc.value.errors == {"rule_preset": PLAN_VOTE_REFUSAL}
    db.session.rollback()
    # The form says the same, next to the rule.
    login_as(client, committee)
    page = client.post(f"/rounds/{rnd.id}/edit", data={
        "kind": "plan_vote", "title": "改造方案表决", "rule_preset": "civil_code_278_ordinary",
        "counting_mode": "household", "plan_version_id": str(plan.id), "opens_at": "2026-12-01T09:00",
        "closes_at": "2026-12-08T09:00"})
    assert page.status_code == 422
    assert PLAN_VOTE_REFUSAL in page.get_data(as_text=True)
    assert db.session.get(Round, rnd.id).rule_preset == "lucheng_double_two_thirds"


def test_a_willingness_round_under_the_ordinary_rule_is_refused_too(six, now):
    estate, committee, _ = six
    with pytest.raises(ValidationFailed) as exc:
        svc.create_round(estate.id, svc.RoundInput(kind="willingness", title="改不改", opens_at=now,
                                                   closes_at=now + timedelta(days=7),
                                                   rule_preset="civil_code_278_ordinary"), now, committee)
    assert exc.value.errors == {"rule_preset": (
        "改造意愿征求属于《民法典》第二百七十八条第一款第（七）项事项（改建、重建建筑物及其附属设施），"
        "须采用“双三分之二（鹿城规则）”或“民法典第278条（重大事项）”，不能采用较弱的“民法典第278条（一般事项）”")}


def test_a_general_question_names_its_item_and_takes_its_rule(six, now):
    estate, committee, _ = six

    def make(**kw):
        return svc.create_round(estate.id, svc.RoundInput(kind="general", title="筹集维修资金", opens_at=now,
                                                          closes_at=now + timedelta(days=7), **kw), now, committee)

    with pytest.raises(ValidationFailed) as exc:
        make()
    assert exc.value.errors == {"matter_item": "请选择该事项属于《民法典》第二百七十八条第一款的哪一项（一至九）"}
    with pytest.raises(ValidationFailed) as exc:
        make(matter_item=6, rule_preset="lucheng_double_two_thirds")
    assert exc.value.errors == {"rule_preset": (
        "该事项属于《民法典》第二百七十八条第一款第（六）项事项（筹集建筑物及其附属设施的维修资金），"
        "须采用“民法典第278条（重大事项）”，不能采用较弱的“双三分之二（鹿城规则）”")}
    raising = make(matter_item=6)
    using = make(matter_item=5)
    assert (raising.rule_preset, raising.item) == ("civil_code_278_major", 6)
    assert (using.rule_preset, using.item) == ("civil_code_278_ordinary", 5)

    # The report cites the item named (not item 7 because the rule is the major one, nor item 9 for the rest).
    name, _ = rule_lines(round_report_data(raising, now))
    assert name == ("《民法典》第二百七十八条第一款（六）筹集建筑物及其附属设施的维修资金，"
                    "属于第六项至第八项（参与表决者四分之三以上同意）")
    name, _ = rule_lines(round_report_data(using, now))
    assert name == ("《民法典》第二百七十八条第一款（五）使用建筑物及其附属设施的维修资金，"
                    "属于第六项至第八项以外的事项（参与表决者过半数同意）")


def test_the_report_and_the_pages_cite_item_seven_for_renovation(client, login_as, six, now):
    estate, committee, plan = six
    major = svc.create_round(estate.id, svc.RoundInput(kind="plan_vote", title="方案表决", opens_at=now,
                                                       closes_at=now + timedelta(days=7), plan_version_id=plan.id,
                                                       rule_preset="civil_code_278_major"), now, committee)
    lucheng = svc.create_round(estate.id, svc.RoundInput(kind="willingness", title="改不改", opens_at=now,
                                                         closes_at=now + timedelta(days=7)), now, committee)
    db.session.commit()
    assert rule_lines(round_report_data(major, now))[0] == (
        "《民法典》第二百七十八条第一款（七）改建、重建建筑物及其附属设施，属于第六项至第八项（参与表决者四分之三以上同意）")
    assert rule_lines(round_report_data(lucheng, now))[0] == (
        "鹿城双三分之二规则（表决事项属于《民法典》第二百七十八条第一款（七）改建、重建建筑物及其附属设施）")
    login_as(client, committee)
    html = client.get(f"/rounds/{lucheng.id}").get_data(as_text=True)
    assert "表决事项：《民法典》第二百七十八条第一款第（七）项（改建、重建建筑物及其附属设施）" in html
    assert "第（九）项" not in html
