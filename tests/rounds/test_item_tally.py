"""改什么: the menu items of a willingness round, chosen by the agreeing units, tallied exactly."""

from __future__ import annotations

import io
import subprocess

import openpyxl
import pytest

from residents_app.db import utcnow
from residents_app.errors import ValidationFailed
from residents_app.rounds import ballots as ballots_svc
from residents_app.rounds import services as svc
from residents_app.rounds import tally as tally_svc

MENU = [{"key": "roof", "label": "屋面防水", "category": "基础"},
        {"key": "lift", "label": "加装电梯", "category": "提升"},
        {"key": "pipes", "label": "雨污管网", "category": "基础"}]


def vote(rnd, unit, choice, items=(), when=None):
    return ballots_svc.cast_ballot(rnd.id, unit.id, unit.ownerships[0].owner_id, choice, when or utcnow(),
                                   items=list(items))


@pytest.fixture
def menu_round(db, live_round, units):
    """1幢-101 (100.00) roof+lift · 1幢-102 (100.00) roof · 2幢-201 (60.00) roof+pipes · 2幢-202 disagree ·
    1幢-103 chose lift, then abstained (its items no longer count)."""
    rnd = live_round(item_menu=MENU)
    vote(rnd, units["1幢-101"], "agree", ["roof", "lift"])
    vote(rnd, units["1幢-102"], "agree", ["roof"])
    vote(rnd, units["2幢-201"], "agree", ["pipes", "roof"])
    vote(rnd, units["2幢-202"], "disagree")
    vote(rnd, units["1幢-103"], "agree", ["lift"])
    vote(rnd, units["1幢-103"], "abstain")
    db.session.commit()
    return rnd


def test_item_tally_counts_agreeing_units_overall_and_per_building(menu_round):
    t = tally_svc.item_tally(menu_round.id)
    assert (t["agree_count"], t["agree_area"]) == (3, "260.00")
    assert [(i["key"], i["label"], i["category"], i["count"], i["area"]) for i in t["items"]] == [
        ("roof", "屋面防水", "基础", 3, "260.00"), ("lift", "加装电梯", "提升", 1, "100.00"),
        ("pipes", "雨污管网", "基础", 1, "60.00")]
    assert [(b["building_name"], b["agree_count"], b["agree_area"],
             [(c["key"], c["count"], c["area"]) for c in b["items"]]) for b in t["buildings"]] == [
        ("1幢", 2, "200.00", [("roof", 2, "200.00"), ("lift", 1, "100.00"), ("pipes", 0, "0.00")]),
        ("2幢", 1, "60.00", [("roof", 1, "60.00"), ("lift", 0, "0.00"), ("pipes", 1, "60.00")])]


def test_items_with_a_choice_other_than_agree_are_refused(db, live_round, units):
    rnd = live_round(item_menu=MENU)
    for choice in ("disagree", "abstain"):
        with pytest.raises(ValidationFailed) as exc:
            vote(rnd, units["1幢-101"], choice, ["roof"])
        assert exc.value.code == "items_need_agree"
        assert exc.value.errors == {"items": "选择“同意”以外的选项时，不能勾选改造项目"}
    assert vote(rnd, units["1幢-101"], "disagree").items == []


def test_api_refuses_items_with_disagree_422_naming_the_field(client, db, live_round, link_for, units):
    rnd = live_round(item_menu=MENU)
    token = link_for()["1幢-101"]
    owner = units["1幢-101"].owners[0]
    client.post(f"/api/ballot/{token}/identity", json={"name": owner.name, "phone_last4": owner.phone[-4:]})
    resp = client.post(f"/api/ballot/{token}/cast", json={"round_id": rnd.id, "choice": "disagree",
                                                          "items": ["roof"]})
    assert resp.status_code == 422
    assert resp.get_json() == {"code": "items_need_agree", "status": 422,
                               "message": "只有选择同意的业主才填写希望改造的项目",
                               "errors": {"items": "选择“同意”以外的选项时，不能勾选改造项目"}}
    ok = client.post(f"/api/ballot/{token}/cast", json={"round_id": rnd.id, "choice": "agree", "items": ["roof"]})
    assert ok.status_code == 201


def test_an_owner_who_disagrees_is_not_asked_which_items(client, db, live_round, link_for, units):
    rnd = live_round(item_menu=MENU)
    token = link_for()["1幢-101"]
    owner = units["1幢-101"].owners[0]
    client.post(f"/v/{token}", data={"name": owner.name, "phone_last4": owner.phone[-4:]})
    agree = client.post(f"/r/rounds/{rnd.id}", data={"step": "choose", "choice": "agree"}).get_data(as_text=True)
    assert "您希望改造哪些项目" in agree
    page = client.post(f"/r/rounds/{rnd.id}", data={"step": "choose", "choice": "disagree", "items": ["roof"]})
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "您希望改造哪些项目" not in text and "请确认您的选择" in text and "不同意改造" in text
    assert "希望改造：" not in text and 'name="items"' not in text
    done = client.post(f"/r/rounds/{rnd.id}", data={"step": "confirm", "choice": "disagree"})
    assert done.status_code == 302
    assert ballots_svc.current_ballot_for(rnd.id, units["1幢-101"].id).items == []


def test_round_page_and_api_show_the_item_tally(client, db, login_as, committee, menu_round):
    login_as(client, committee)
    html = client.get(f"/rounds/{menu_round.id}").get_data(as_text=True)
    assert "改什么：同意改造的住户希望改造的项目" in html
    assert ('<tr id="item-roof"><td>屋面防水</td><td>基础</td><td class="num">3</td>'
            '<td class="num">260.00</td></tr>') in html
    assert ('<tr><td>2幢</td><td class="num">1 / 60.00</td>\n      <td class="num">1 / 60.00</td>'
            '<td class="num">0 / 0.00</td><td class="num">1 / 60.00</td></tr>') in html
    body = client.get(f"/api/rounds/{menu_round.id}/tally").get_json()
    assert [(i["key"], i["count"], i["area"]) for i in body["item_tally"]["items"]] == [
        ("roof", 3, "260.00"), ("lift", 1, "100.00"), ("pipes", 1, "60.00")]


def test_export_has_the_item_sheet(client, db, login_as, committee, menu_round):
    login_as(client, committee)
    resp = client.get(f"/rounds/{menu_round.id}/verify/export.xlsx")
    assert resp.status_code == 200
    wb = openpyxl.load_workbook(io.BytesIO(resp.data))
    rows = list(wb["改造项目意向"].iter_rows(values_only=True))
    assert rows == [
        ("项目", "类别", "全部：户数", "全部：面积(m²)", "1幢：户数", "1幢：面积(m²)", "2幢：户数", "2幢：面积(m²)"),
        ("同意改造（合计）", None, 3, 260, 2, 200, 1, 60),
        ("屋面防水", "基础", 3, 260, 2, 200, 1, 60),
        ("加装电梯", "提升", 1, 100, 1, 100, 0, 0),
        ("雨污管网", "基础", 1, 60, 0, 0, 1, 60),
    ]
    assert wb["改造项目意向"].cell(row=3, column=4).number_format == "0.00"
    roll = {(r[0], r[1]): r for r in wb["表决名册"].iter_rows(min_row=2, values_only=True)}
    assert roll[("1幢", "101")][9] == "屋面防水、加装电梯"
    assert roll[("2幢", "202")][9] is None  # disagrees: no items


def _pdf_text(pdf: bytes, tmp_path) -> str:
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(["pdftotext", "-enc", "UTF-8", "-layout", str(path), "-"], capture_output=True, check=True)
    return " ".join(out.stdout.decode("utf-8").split())


def test_report_pdf_has_the_item_tally(client, db, login_as, committee, menu_round, tmp_path):
    svc.close_round(menu_round.id, menu_round.closes_at, committee)
    db.session.commit()
    login_as(client, committee)
    resp = client.get(f"/rounds/{menu_round.id}/report.pdf")
    assert resp.status_code == 200
    text = _pdf_text(resp.data, tmp_path)
    assert "附：改造项目意向统计（同意改造的 3 户、260.00 m² 所选，可多选）" in text
    for expected in ("屋面防水（基础） 3 / 260.00 2 / 200.00 1 / 60.00",
                     "加装电梯（提升） 1 / 100.00 1 / 100.00 0 / 0.00",
                     "雨污管网（基础） 1 / 60.00 0 / 0.00 1 / 60.00"):
        assert expected in text, expected
