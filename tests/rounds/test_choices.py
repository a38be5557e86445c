"""The management mode is a choice (issue 13 item 2): options 物业服务企业 / 准物业 / 自治 / 信托制物业 (an editable
list), the ordinary rule of art. 278 item 4; the option that meets it is decided, none: 未决定. Shown on the round
page, in the API and in the PDF.

The estate: 1幢 101, 102, 103 (100.00 m² each), 2幢 201 (60.00), 202 (40.00): 5 households, 400.00 m².
"""

from __future__ import annotations

import json
import subprocess
from datetime import timedelta

import sqlalchemy as sa

from residents_app.extensions import db
from residents_app.oversight.round_facts import round_report_data
from residents_app.rounds import ballots
from residents_app.rounds import services as svc
from residents_app.rounds.models import Round


def _pdf_text(client, round_id, tmp_path) -> str:
    resp = client.get(f"/rounds/{round_id}/report.pdf")
    assert resp.status_code == 200
    path = tmp_path / "r.pdf"
    path.write_bytes(resp.data)
    out = subprocess.run(["pdftotext", "-enc", "UTF-8", "-layout", str(path), "-"], capture_output=True, check=True)
    return " ".join(out.stdout.decode().split())


def _vote_and_close(rnd, units, now, choices):
    for label, choice in choices.items():
        unit = units[label]
        ballots.cast_ballot(rnd.id, unit.id, unit.owners[0].id, choice, now + timedelta(hours=1))
    assert svc.close_round(rnd.id, rnd.closes_at, None)
    db.session.commit()


def test_the_form_offers_the_four_modes_and_takes_an_edited_list(client, login_as, committee, estate):
    login_as(client, committee)
    form = client.get(f"/estates/{estate.id}/rounds/new").get_data(as_text=True)
    assert "物业服务企业\n准物业\n自治\n信托制物业</textarea>" in form
    resp = client.post(f"/estates/{estate.id}/rounds", data={
        "kind": "management_mode", "title": "改造后管理模式", "rule_preset": "", "counting_mode": "household",
        "options": "物业服务企业\n自治\n业主委托专业公司托管\n", "opens_at": "2026-12-01T09:00",
        "closes_at": "2026-12-08T09:00"})
    assert resp.status_code == 302
    rnd = db.session.execute(sa.select(Round).where(Round.title == "改造后管理模式")).scalar_one()
    assert rnd.options == [{"key": "property_company", "label": "物业服务企业"},
                           {"key": "self_managed", "label": "自治"},
                           {"key": "option3", "label": "业主委托专业公司托管"}, {"key": "abstain", "label": "弃权"}]
    assert (rnd.rule_preset, rnd.item) == ("civil_code_278_ordinary", 4)
    one = client.post(f"/estates/{estate.id}/rounds", data={
        "kind": "management_mode", "title": "只有一个选项", "counting_mode": "household", "options": "自治",
        "opens_at": "2026-12-01T09:00", "closes_at": "2026-12-08T09:00"})
    assert one.status_code == 422
    assert "管理模式表决至少要有两个选项（每行一个）" in one.get_data(as_text=True)
    api = client.post("/api/rounds", json={"estate_id": estate.id, "kind": "willingness", "title": "改不改",
                                           "options": ["同意", "反对"], "opens_at": "2026-12-01T09:00:00+08:00",
                                           "closes_at": "2026-12-08T09:00:00+08:00"})
    assert (api.status_code, api.get_json()["errors"]) == (422, {"options": "只有管理模式表决可以设置选项"})


def test_self_management_chosen_by_more_than_half_is_decided(client, login_as, committee, make_round, units, now,
                                                            tmp_path):
    rnd = make_round(kind="management_mode", title="管理模式表决")
    assert rnd.rule_preset == "civil_code_278_ordinary"
    # Turnout 4 of 5 households, 360.00 of 400.00 m²; 自治 3 of 4 and 300.00 of 360.00 m².
    _vote_and_close(rnd, units, now, {"1幢-101": "self_managed", "1幢-102": "self_managed",
                                      "1幢-103": "self_managed", "2幢-201": "property_company"})
    outcome = svc.round_outcome(rnd.id)
    assert (outcome["passed"], outcome["decided"], outcome["decided_label"]) == (True, "self_managed", "自治")

    login_as(client, committee)
    html = client.get(f"/rounds/{rnd.id}").get_data(as_text=True)
    assert "最终结果：<span class=\"ok\">已决定采用「自治」</span>" in html
    assert "表决事项：《民法典》第二百七十八条第一款第（四）项（选聘和解聘物业服务企业或者其他管理人）" in html

    t = client.get(f"/api/rounds/{rnd.id}/tally").get_json()
    assert t["decided_label"] == "自治"
    assert t["figures"] == {"total_count": 5, "total_area": "400.00", "voted_count": 4, "voted_area": "360.00"}
    assert [(o["label"], o["count"], o["area"], o["meets_rule"]) for o in t["choice"]["options"]] == [
        ("物业服务企业", 1, "60.00", False), ("准物业", 0, "0.00", False), ("自治", 3, "300.00", True),
        ("信托制物业", 0, "0.00", False)]
    assert "passed" not in t
    assert client.get(f"/api/rounds/{rnd.id}").get_json()["decided_label"] == "自治"

    data = round_report_data(db.session.get(Round, rnd.id), rnd.closes_at)
    assert [(c.name, c.actual, c.margin, c.met) for c in data.conditions] == [
        ("参与面积 ≥ 总面积的 2/3", "360.00 m²（90.00%）", "超出 93.33 m²", True),
        ("参与户数 ≥ 总户数的 2/3", "4 户（80.00%）", "恰好达到", True),
        ("「物业服务企业」选择面积 > 参与面积的 1/2", "60.00 m²（16.66%）", "还差 240.01 m²", False),
        ("「物业服务企业」选择户数 > 参与户数的 1/2", "1 户（25.00%）", "还差 3 户", False),
        ("「准物业」选择面积 > 参与面积的 1/2", "0.00 m²（0.00%）", "还差 360.01 m²", False),
        ("「准物业」选择户数 > 参与户数的 1/2", "0 户（0.00%）", "还差 5 户", False),
        ("「自治」选择面积 > 参与面积的 1/2", "300.00 m²（83.33%）", "超出 119.99 m²", True),
        ("「自治」选择户数 > 参与户数的 1/2", "3 户（75.00%）", "恰好达到", True),
        ("「信托制物业」选择面积 > 参与面积的 1/2", "0.00 m²（0.00%）", "还差 360.01 m²", False),
        ("「信托制物业」选择户数 > 参与户数的 1/2", "0 户（0.00%）", "还差 5 户", False),
    ]
    text = _pdf_text(client, rnd.id, tmp_path)
    for expected in ("表决结果：决定采用「自治」", "各选项的选择情况",
                     "第一款（四）选聘和解聘物业服务企业或者其他管理人"):
        assert expected in text, expected
    assert "同意改造居民房号汇总表" not in text


def test_exactly_half_is_undecided_everywhere(client, login_as, committee, make_round, units, now, tmp_path):
    rnd = make_round(kind="management_mode", title="管理模式表决")
    # 自治 2 of 4 households: exactly half is not more than half.
    _vote_and_close(rnd, units, now, {"1幢-101": "self_managed", "1幢-102": "self_managed",
                                      "1幢-103": "property_company", "2幢-201": "abstain"})
    outcome = svc.round_outcome(rnd.id)
    assert (outcome["passed"], outcome["decided"], outcome["decided_label"]) == (False, None, "未决定")
    login_as(client, committee)
    html = client.get(f"/rounds/{rnd.id}").get_data(as_text=True)
    assert "最终结果：<span class=\"bad\">未决定</span>" in html
    assert "没有任何选项达到表决规则，需重新表决。" in html
    assert client.get(f"/api/rounds/{rnd.id}/tally").get_json()["decided_label"] == "未决定"
    assert client.get(f"/api/rounds/{rnd.id}").get_json()["decided_label"] == "未决定"
    text = _pdf_text(client, rnd.id, tmp_path)
    assert "表决结果：未决定（没有任何选项达到表决规则，需重新表决）" in text
    assert "还差 1 户" in text


def test_the_log_recount_of_a_choice_round_checks_the_decided_option(db, make_round, units, now):
    from residents_app.rounds.recount import recount_round

    rnd = make_round(kind="management_mode", title="管理模式表决")
    _vote_and_close(rnd, units, now, {"1幢-101": "self_managed", "1幢-102": "self_managed",
                                      "1幢-103": "self_managed", "2幢-201": "property_company"})
    assert recount_round(rnd) == []  # nobody "agrees" in a choice: no agreeing-units mismatch either
    # Tamper with the stored decision: the log still says 自治.
    stored = dict(svc.round_outcome(rnd.id)["tally"])
    stored["choice"] = {**stored["choice"], "decided": "property_company", "decided_label": "物业服务企业"}
    db.session.execute(sa.text("UPDATE round_result SET tally = :t WHERE round_id = :r"),
                       {"t": json.dumps(stored, ensure_ascii=False), "r": rnd.id})
    db.session.expire_all()
    problems = recount_round(db.session.get(Round, rnd.id))
    assert [(p.code, p.message) for p in problems] == [
        ("result_mismatch", "保存的决定为“物业服务企业”，按日志重新计票为“自治”")]
