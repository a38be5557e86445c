"""The new-round form (issue 18 item 10): every error at its field at once, the plan version a picker, the item
menu written as 名称（类别）."""

from __future__ import annotations

import sqlalchemy as sa

from residents_app.rounds.models import Round


def test_a_bad_date_and_a_missing_title_are_listed_together(client, db, login_as, committee, estate):
    login_as(client, committee)
    resp = client.post(f"/estates/{estate.id}/rounds", data={"kind": "willingness", "title": "",
                                                             "counting_mode": "household",
                                                             "opens_at": "明天", "closes_at": "后天"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert "表决设置有误，请按各项提示修改" in html
    assert "开始时间应为 年-月-日 时:分" in html and "截止时间应为 年-月-日 时:分" in html
    assert "请填写标题" in html


def test_item_menu_in_brackets_and_an_empty_line_error_at_its_line(client, db, login_as, committee, estate):
    login_as(client, committee)
    ok = client.post(f"/estates/{estate.id}/rounds", data={
        "kind": "willingness", "title": "意愿征求", "rule_preset": "civil_code_278_major",
        "counting_mode": "household", "opens_at": "2026-12-01T09:00", "closes_at": "2026-12-15T18:00",
        "item_menu": "屋面防水（基础）\n加装电梯(提升)\n雨污分流"})
    assert ok.status_code == 302
    rnd = db.session.execute(sa.select(Round).where(Round.title == "意愿征求")).scalar_one()
    assert rnd.item_menu == [{"key": "item1", "label": "屋面防水", "category": "基础"},
                             {"key": "item2", "label": "加装电梯", "category": "提升"},
                             {"key": "item3", "label": "雨污分流", "category": ""}]
    bad = client.post(f"/estates/{estate.id}/rounds", data={
        "kind": "willingness", "title": "意愿征求二", "rule_preset": "civil_code_278_major",
        "counting_mode": "household", "opens_at": "2026-12-01T09:00", "closes_at": "2026-12-15T18:00",
        "item_menu": "屋面防水\n|基础"})
    assert bad.status_code == 422
    assert "<p class=\"bad\">第 2 行：改造项目名称不能为空</p>" in bad.get_data(as_text=True)


def test_plan_version_is_a_picker_of_the_estates_versions(client, db, login_as, committee, estate):
    from residents_app.plans.models import PlanVersion

    plan = PlanVersion(estate_id=estate.id, number=1, title="综合改造方案")
    db.session.add(plan)
    db.session.commit()
    login_as(client, committee)
    html = client.get(f"/estates/{estate.id}/rounds/new").get_data(as_text=True)
    assert '<select id="plan_version_id" name="plan_version_id">' in html
    assert f'<option value="{plan.id}">第 1 版 综合改造方案（草稿）</option>' in html
    assert 'inputmode="numeric"' not in html.split('id="plan_version_id"')[1][:200]


def test_a_closed_failed_round_never_says_it_can_still_pass(client, db, login_as, committee, live_round):
    from datetime import timedelta

    from residents_app.rounds import services as svc

    rnd = live_round()
    login_as(client, committee)
    assert "如未投票的全部同意，仍可通过" in client.get(f"/rounds/{rnd.id}").get_data(as_text=True)
    assert svc.close_round(rnd.id, rnd.closes_at + timedelta(seconds=1), "system:test") is True
    db.session.commit()
    html = client.get(f"/rounds/{rnd.id}").get_data(as_text=True)
    assert "仍可通过" not in html
    assert "表决已截止，未达到通过条件。" in html
