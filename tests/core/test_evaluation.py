"""The evaluation's arithmetic: weights, missing scores, exact totals, rounding shown to two places."""

from decimal import Decimal
from fractions import Fraction

import pytest

from residents_app.core import evaluation as ev

D = Decimal


def tpl():
    return ev.template_from_data([
        {"aspect": "组织实施", "items": [{"key": "1.1", "title": "方案公示", "points": "10"},
                                     {"key": "1.2", "title": "居民参与", "points": "5"}]},
        {"aspect": "工程质量", "items": [{"key": "2.1", "title": "屋面防水", "points": "2.5"}]},
    ])


def test_two_places_rounds_half_up_exactly():
    assert ev.two_places(Fraction(89995, 1000)) == "90.00"
    assert ev.two_places(Fraction(89994999, 1000000)) == "89.99"
    assert ev.two_places(Fraction(1, 3)) == "0.33"
    assert ev.two_places(Fraction(2, 3)) == "0.67"
    assert ev.two_places(Fraction(1, 200)) == "0.01"  # 0.005 -> up
    assert ev.two_places(Fraction(0)) == "0.00"
    assert ev.two_places(D("100")) == "100.00"


def test_grade_is_decided_on_the_exact_total_not_the_rounded_one():
    assert ev.grade_of(Fraction(89995, 1000)) == "良好"  # shows 90.00
    assert ev.grade_of(Fraction(90)) == "优秀"
    assert ev.grade_of(Fraction(80)) == "良好"
    assert ev.grade_of(Fraction(7999, 100)) == "合格"
    assert ev.grade_of(Fraction(60)) == "合格"
    assert ev.grade_of(Fraction(5999, 100)) == "不合格"


def test_weighted_groups_and_means_within_a_group():
    t = tpl()
    sheets = [
        ev.Sheet("张三", "resident", {"1.1": D("9"), "1.2": D("4"), "2.1": D("2.5")}),
        ev.Sheet("李四", "resident", {"1.1": D("8"), "1.2": D("5"), "2.1": D("2")}),
        ev.Sheet("社区王", "community", {"1.1": D("10"), "1.2": D("3"), "2.1": D("1")}),
        ev.Sheet("街道赵", "street", {"1.1": D("7"), "1.2": D("5"), "2.1": D("2.5")}),
    ]
    r = ev.score(t, sheets, {"resident": 50, "community": 20, "street": 30})
    # 1.1: (50*8.5 + 20*10 + 30*7)/100 = 8.35
    assert r.items["1.1"] == Fraction(835, 100)
    # 1.2: (50*4.5 + 20*3 + 30*5)/100 = 4.35
    assert r.items["1.2"] == Fraction(435, 100)
    # 2.1: (50*2.25 + 20*1 + 30*2.5)/100 = 2.075
    assert r.items["2.1"] == Fraction(2075, 1000)
    assert r.total == Fraction(14775, 1000)
    assert r.total_text == "14.78"  # 14.775 half up
    assert r.aspects == [("组织实施", Fraction(1270, 100), D("15")), ("工程质量", Fraction(2075, 1000), D("2.5"))]
    assert r.total_points == D("17.5")
    assert r.is_complete and r.missing == []


def test_a_group_that_left_an_item_blank_is_renormalised_away():
    t = tpl()
    sheets = [ev.Sheet("张三", "resident", {"1.1": D("9"), "1.2": D("4"), "2.1": D("1")}),
              ev.Sheet("街道赵", "street", {"1.1": D("6"), "1.2": D("5")})]  # 2.1 blank, not zero
    r = ev.score(t, sheets, {"resident": 50, "community": 20, "street": 30})
    # 1.1: community scored nothing -> (50*9 + 30*6)/80 = 7.875
    assert r.items["1.1"] == Fraction(63, 8)
    # 2.1: only residents -> 1
    assert r.items["2.1"] == Fraction(1)
    # 1.2: (50*4 + 30*5)/80 = 4.375
    assert r.total == Fraction(63, 8) + Fraction(35, 8) + 1
    assert r.total_text == "13.25"


def test_an_item_nobody_scored_is_missing_and_counts_zero():
    t = tpl()
    r = ev.score(t, [ev.Sheet("张三", "resident", {"1.1": D("10")})], ev.DEFAULT_GROUP_WEIGHTS)
    assert r.missing == ["1.2", "2.1"]
    assert not r.is_complete
    assert r.total == 10 and r.total_text == "10.00"


def test_a_zero_weight_group_does_not_count():
    t = tpl()
    r = ev.score(t, [ev.Sheet("社区王", "community", {"1.1": D("1"), "1.2": D("1"), "2.1": D("1")})],
                 {"resident": 70, "community": 0, "street": 30})
    assert r.missing == ["1.1", "1.2", "2.1"]


def test_one_third_shares_stay_exact():
    t = ev.template_from_data([{"aspect": "甲", "items": [{"key": "a", "title": "x", "points": "1"}]}])
    sheets = [ev.Sheet(n, "resident", {"a": D(s)}) for n, s in (("a", "1"), ("b", "0"), ("c", "0"))]
    r = ev.score(t, sheets, {"resident": 100, "community": 0, "street": 0})
    assert r.total == Fraction(1, 3) and r.total_text == "0.33"


def test_sheet_checks_bounds_and_places():
    t = tpl()
    assert ev.check_sheet(t, {"1.1": "10", "1.2": "", "2.1": "0"}) == {"1.1": D("10"), "2.1": D("0")}
    with pytest.raises(ev.TemplateError, match="超过其分值 2.5"):
        ev.check_sheet(t, {"2.1": "2.51"})
    with pytest.raises(ev.TemplateError, match="最多两位小数"):
        ev.check_sheet(t, {"1.1": "1.005"})
    with pytest.raises(ev.TemplateError, match="不小于 0"):
        ev.check_sheet(t, {"1.1": "-1"})
    with pytest.raises(ev.TemplateError, match="不是数字"):
        ev.check_sheet(t, {"1.1": "十"})
    with pytest.raises(ev.TemplateError, match="没有评价项目 9.9"):
        ev.check_sheet(t, {"9.9": "1"})


def test_group_weights_must_add_to_100():
    assert ev.check_group_weights({"resident": "50", "community": 20, "street": 30}) == \
        {"resident": 50, "community": 20, "street": 30}
    with pytest.raises(ev.TemplateError, match="之和须为 100（现为 99）"):
        ev.check_group_weights({"resident": 50, "community": 20, "street": 29})
    with pytest.raises(ev.TemplateError, match="不能为负"):
        ev.check_group_weights({"resident": 120, "community": -20, "street": 0})


def test_template_lines_round_trip_and_errors():
    t = tpl()
    text = ev.template_to_lines(t)
    assert text.splitlines()[0] == "组织实施 | 1.1 | 方案公示 | 10"
    assert ev.template_from_lines(text) == t
    with pytest.raises(ev.TemplateError, match="第 2 行"):
        ev.template_from_lines("甲 | 1 | x | 1\n乙 | 2 | y")
    with pytest.raises(ev.TemplateError, match="编号 1 重复"):
        ev.template_from_lines("甲 | 1 | x | 1\n乙 | 1 | y | 2")
    with pytest.raises(ev.TemplateError, match="须大于 0"):
        ev.template_from_lines("甲 | 1 | x | 0")


def test_shipped_sichuan_template_has_22_aspects_88_items_worth_100():
    import json
    from pathlib import Path

    import residents_app.works.acceptance as pkg

    data = json.loads((Path(pkg.__file__).parent / "evaluation_template.json").read_text(encoding="utf-8"))
    t = ev.template_from_data(data["aspects"])
    assert len(t.aspects) == 22
    assert len(t.items) == 88
    assert t.total_points == D("100")
