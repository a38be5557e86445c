"""The rule follows the matter; a management mode is a choice; a satisfaction round is a survey (pure core)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from residents_app.core import choices, matters, survey
from residents_app.core import thresholds as th

# ---- which rule a matter takes ------------------------------------------------------------------


def _six(areas=("100.00",) * 6):
    return [th.RollEntry(i, 1, Decimal(a), (i,)) for i, a in enumerate(areas, start=1)]


def test_three_of_six_pass_the_ordinary_rule_which_a_plan_vote_may_not_use():
    # 3 agree / 1 disagree / 2 absent of 6: turnout 4/6 = 2/3, agree 3/4 > 1/2 -> "passed" under the ordinary
    # rule; the renovation rule (Lucheng: 3/6 < 2/3) says no. So a plan vote may not use the ordinary rule.
    ballots = {1: "agree", 2: "agree", 3: "agree", 4: "disagree"}
    assert th.tally(_six(), ballots, matters.ORDINARY).passed is True
    assert th.tally(_six(), ballots, matters.LUCHENG).passed is False
    assert matters.rule_refusal("plan_vote", 7, matters.ORDINARY) == (
        "改造方案表决属于《民法典》第二百七十八条第一款第（七）项事项（改建、重建建筑物及其附属设施），"
        "须采用“双三分之二（鹿城规则）”或“民法典第278条（重大事项）”，不能采用较弱的“民法典第278条（一般事项）”")
    assert matters.rule_refusal("plan_vote", 7, matters.LUCHENG) is None
    assert matters.rule_refusal("plan_vote", 7, matters.MAJOR) is None


@pytest.mark.parametrize(("kind", "named", "item"), [
    ("willingness", None, 7), ("plan_vote", 3, 7), ("management_mode", None, 4), ("general", 5, 5),
    ("general", None, None), ("satisfaction", None, None)])
def test_the_kind_fixes_the_item(kind, named, item):
    assert matters.matter_item(kind, named) == item


@pytest.mark.parametrize(("item", "allowed", "default"), [
    (7, (matters.LUCHENG, matters.MAJOR), matters.LUCHENG),
    (6, (matters.MAJOR,), matters.MAJOR),
    (8, (matters.MAJOR,), matters.MAJOR),
    (4, (matters.ORDINARY, matters.MAJOR, matters.LUCHENG), matters.ORDINARY),
    (5, (matters.ORDINARY, matters.MAJOR, matters.LUCHENG), matters.ORDINARY),
    (9, (matters.ORDINARY, matters.MAJOR, matters.LUCHENG), matters.ORDINARY)])
def test_allowed_and_default_rules_per_item(item, allowed, default):
    assert matters.allowed_presets(item) == allowed
    assert matters.default_preset(item) == default


def test_raising_maintenance_funds_refuses_lucheng_naming_item_six():
    assert matters.rule_refusal("general", 6, matters.LUCHENG) == (
        "该事项属于《民法典》第二百七十八条第一款第（六）项事项（筹集建筑物及其附属设施的维修资金），"
        "须采用“民法典第278条（重大事项）”，不能采用较弱的“双三分之二（鹿城规则）”")
    assert matters.item_line(4) == "《民法典》第二百七十八条第一款第（四）项（选聘和解聘物业服务企业或者其他管理人）"


# ---- the management mode: a choice --------------------------------------------------------------

MODES = [*choices.DEFAULT_MODES, ("abstain", "弃权")]


def _decide(ballots, areas=("100.00",) * 6):
    return choices.choice_tally(_six(areas), ballots, MODES, matters.ORDINARY)


def test_the_option_with_more_than_half_of_the_participants_is_decided():
    c = _decide({1: "self_managed", 2: "self_managed", 3: "self_managed", 4: "property_company"})
    assert (c.decided, c.decided_label) == ("self_managed", "自治")
    d = c.to_dict()
    assert [(o["label"], o["count"], o["area"], o["meets_rule"]) for o in d["options"]] == [
        ("物业服务企业", 1, "100.00", False), ("准物业", 0, "0.00", False), ("自治", 3, "300.00", True),
        ("信托制物业", 0, "0.00", False)]


def test_exactly_half_decides_nothing():
    c = _decide({1: "self_managed", 2: "self_managed", 3: "property_company", 4: "property_company"})
    assert (c.decided, c.decided_label) == (None, "未决定")
    # Abstaining takes part: 2 of 4 is exactly half again.
    c = _decide({1: "self_managed", 2: "self_managed", 3: "property_company", 4: "abstain"})
    assert c.decided is None
    # One more voter for 自治: 3 of 5 > 1/2.
    c = _decide({1: "self_managed", 2: "self_managed", 3: "property_company", 4: "abstain", 5: "self_managed"})
    assert c.decided == "self_managed"


def test_area_exactly_half_decides_nothing_though_persons_agree():
    # 3 of 5 persons choose 自治 but hold 200.00 of the 400.00 m² taking part: exactly half the area.
    areas = ("100.00", "100.00", "100.00", "60.00", "40.00", "100.00")
    c = _decide({1: "property_company", 2: "property_company", 3: "self_managed", 4: "self_managed",
                 5: "self_managed"}, areas)
    assert c.decided is None
    option = next(o for o in c.to_dict()["options"] if o["key"] == "self_managed")
    assert [(x["key"], x["met"]) for x in option["conditions"]] == [
        ("turnout_area", True), ("turnout_count", True), ("agree_area", False), ("agree_count", True)]
    assert option["margin_area"] == "0.01"


def test_turnout_below_two_thirds_decides_nothing():
    c = _decide({1: "trust_property", 2: "trust_property", 3: "trust_property"})  # 3 of 6 took part
    assert c.decided is None


def test_edited_option_list_keeps_known_keys_and_appends_abstaining():
    assert choices.option_keys(["自治", "委托专业公司托管"]) == [
        {"key": "self_managed", "label": "自治"}, {"key": "option2", "label": "委托专业公司托管"},
        {"key": "abstain", "label": "弃权"}]


# ---- satisfaction: a survey ---------------------------------------------------------------------

def test_survey_figures_are_exact():
    options = [("agree", "满意"), ("disagree", "不满意"), ("abstain", "说不清")]
    s = survey.summarize(6, [("agree", 5), ("agree", 4), ("disagree", 2), ("abstain", None)], options)
    assert s == {
        "total_count": 6, "response_count": 4, "response_rate": "66.66%",
        "questions": [
            {"key": "choice", "title": "总体满意度", "responses": 4, "distribution": [
                {"key": "agree", "label": "满意", "count": 2, "share": "50.00%"},
                {"key": "disagree", "label": "不满意", "count": 1, "share": "25.00%"},
                {"key": "abstain", "label": "说不清", "count": 1, "share": "25.00%"}]},
            {"key": "rating", "title": "评分（1 到 5 分，5 分最满意）", "responses": 3, "average": "3.67",
             "distribution": [{"score": 5, "count": 1, "share": "33.33%"}, {"score": 4, "count": 1, "share": "33.33%"},
                              {"score": 3, "count": 0, "share": "0.00%"}, {"score": 2, "count": 1, "share": "33.33%"},
                              {"score": 1, "count": 0, "share": "0.00%"}]},
        ],
    }
    assert "passed" not in repr(s)


def test_empty_survey_has_no_average_and_no_rate():
    s = survey.summarize(0, [], [("agree", "满意")])
    assert (s["response_rate"], s["questions"][1]["average"]) == ("", None)
