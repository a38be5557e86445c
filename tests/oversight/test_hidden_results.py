"""Hidden until close means hidden: before the close every surface shows turnout only; after it, the results."""

from __future__ import annotations

import io
import subprocess
from datetime import timedelta

import pytest
from openpyxl import load_workbook

from residents_app.extensions import db
from residents_app.oversight import dashboards
from residents_app.registry.models import Unit
from residents_app.rounds import ballots
from residents_app.rounds import services as rs
from residents_app.rounds.models import Round

TURNOUT = "已投 3 户 / 共 6 户（50.00%）；已投面积 300.80 m² / 556.85 m²（54.01%）"


@pytest.fixture
def hidden(db, voted_round, now):
    """In the estate of voted_round (6 units, 556.85 m²), a willingness round with results hidden until the close:
    1幢-101 agree (roof) +1h · 1幢-102 agree +2h, changed to disagree +3h · 2幢-101 disagree +4h."""
    closes = now + timedelta(days=7)
    rnd = rs.create_round(voted_round.estate_id, rs.RoundInput(
        kind="willingness", title="隐藏结果的意愿征求", opens_at=now, closes_at=closes, results_visibility="hidden",
        item_menu=[{"key": "roof", "label": "屋面防水", "category": "基础"}]), now, voted_round.c1)
    assert rs.open_round(rnd.id, now, voted_round.c1)

    def cast(label, choice, hours, items=()):
        unit = db.session.get(Unit, voted_round.unit_ids[label])
        return ballots.cast_ballot(rnd.id, unit.id, unit.owners[0].id, choice, now + timedelta(hours=hours),
                                   items=list(items))

    receipts = {"101": cast("1幢-101", "agree", 1, ["roof"]).receipt_code,
                "102_first": cast("1幢-102", "agree", 2).receipt_code}
    receipts["102_last"] = cast("1幢-102", "disagree", 3).receipt_code
    cast("2幢-101", "disagree", 4)
    db.session.commit()
    return rnd, closes, receipts


def close(rnd, closes):
    assert rs.close_round(rnd.id, closes, None)
    db.session.commit()


def test_verification_desk(client, login_as, voted_round, hidden):
    rnd, closes, _ = hidden
    login_as(client, voted_round.street)
    html = client.get(f"/rounds/{rnd.id}/verify").get_data(as_text=True)
    assert f'<p id="turnout"><strong>参与情况：</strong>{TURNOUT}</p>' in html
    assert html.count("<td>已投票</td>") == 3
    for absent in ("同意改造</td>", "不同意改造", 'id="conditions"', 'id="verdict"', "中间结果", "同意面积 ≥"):
        assert absent not in html, absent
    close(rnd, closes)
    html = client.get(f"/rounds/{rnd.id}/verify").get_data(as_text=True)
    assert 'id="turnout"' not in html and "<td>已投票</td>" not in html
    assert html.count("<td>同意改造</td>") == 1 and html.count("<td>不同意改造</td>") == 2
    assert 'id="conditions"' in html and "表决结果：未通过" in html


def _workbook_text(data: bytes) -> str:
    wb = load_workbook(io.BytesIO(data))
    return "\n".join(str(v) for ws in wb for row in ws.iter_rows(values_only=True) for v in row if v is not None)


def test_desk_export(client, login_as, voted_round, hidden):
    rnd, closes, _ = hidden
    login_as(client, voted_round.street)
    data = client.get(f"/rounds/{rnd.id}/verify/export.xlsx").data
    wb = load_workbook(io.BytesIO(data))
    assert wb.sheetnames == ["表决名册", "投票记录"]
    roll = {(r[0], r[1]): r for r in wb["表决名册"].iter_rows(min_row=2, values_only=True)}
    assert [roll[("1幢", "101")][4], roll[("1幢", "102")][4], roll[("1幢", "201")][4]] == ["已投票", "已投票", "未投票"]
    assert [r[1] for r in wb["投票记录"].iter_rows(min_row=2, values_only=True)] == ["（截止前隐藏）"] * 4
    text = _workbook_text(data)
    assert "同意改造" not in text and "屋面防水" not in text
    close(rnd, closes)
    data = client.get(f"/rounds/{rnd.id}/verify/export.xlsx").data
    wb = load_workbook(io.BytesIO(data))
    assert wb.sheetnames == ["表决名册", "投票记录", "改造项目意向"]
    roll = {(r[0], r[1]): r for r in wb["表决名册"].iter_rows(min_row=2, values_only=True)}
    assert [roll[("1幢", "101")][4], roll[("1幢", "102")][4], roll[("1幢", "101")][9]] == [
        "同意改造", "不同意改造", "屋面防水"]


def test_estate_and_district_dashboards(client, login_as, voted_round, hidden, now):
    rnd, closes, _ = hidden
    login_as(client, voted_round.street)
    html = client.get(f"/estates/{voted_round.estate_id}/dashboard").get_data(as_text=True)
    card = html.split(f'id="round-{rnd.id}"')[1].split("</article>")[0]
    assert "已投票 3 / 6 户" in card and "截止前隐藏结果，仅显示参与情况" in card
    for absent in ('class="bar-row"', "通过", "同意", "还差"):
        assert absent not in card, absent
    # The district view (issue 19: no round cards or charts there, one row per estate) shows turnout only.
    html = client.get("/district").get_data(as_text=True)
    assert f'id="round-{rnd.id}"' not in html
    row = html.split(f'id="estate-{voted_round.estate_id}"')[1].split("</tr>")[0]
    assert "50.00%（3 / 6 户）" in row
    for absent in ('class="bar-row"', "通过", "同意", "还差"):
        assert absent not in row, absent
    card = dashboards.round_card(db.session.get(Round, rnd.id), now + timedelta(days=1))
    assert (card.bars, card.results_hidden, card.passed) == ([], True, False)
    close(rnd, closes)
    card = dashboards.round_card(db.session.get(Round, rnd.id), closes)
    assert card.results_hidden is False
    assert [(b.label, b.value_text) for b in card.bars] == [
        ("同意面积 ≥ 总面积的 2/3", "88.50 m²（15.89%）"), ("同意户数 ≥ 总户数的 2/3", "1 户（16.66%）")]


def _pdf_text(pdf: bytes, tmp_path) -> str:
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(["pdftotext", "-enc", "UTF-8", "-layout", str(path), "-"], capture_output=True, check=True)
    return " ".join(out.stdout.decode("utf-8").split())


def test_report_pdf(client, login_as, voted_round, hidden, tmp_path):
    rnd, closes, _ = hidden
    login_as(client, voted_round.street)
    text = _pdf_text(client.get(f"/rounds/{rnd.id}/report.pdf").data, tmp_path)
    assert "三、参与情况（本表决设置为截止前隐藏结果）" in text and TURNOUT in text
    for absent in ("表决条件核算", "表决结果：", "同意改造居民房号汇总表", "1幢-101", "改造项目意向", "同意面积 ≥"):
        assert absent not in text, absent
    close(rnd, closes)
    text = _pdf_text(client.get(f"/rounds/{rnd.id}/report.pdf").data, tmp_path)
    for present in ("表决条件核算", "表决结果：未通过", "同意改造居民房号汇总表（共 1 户，仅列房号）", "1幢-101",
                    "附：改造项目意向统计（同意改造的 1 户、88.50 m² 所选，可多选）"):
        assert present in text, present
    assert "参与情况（本表决设置为截止前隐藏结果）" not in text


def test_round_page_and_tally_api(client, login_as, voted_round, hidden):
    rnd, closes, _ = hidden
    login_as(client, voted_round.c1)
    html = client.get(f"/rounds/{rnd.id}").get_data(as_text=True)
    assert "截止前隐藏结果" in html and 'id="item-tally"' not in html and 'id="agree-count"' not in html
    body = client.get(f"/api/rounds/{rnd.id}/tally").get_json()
    assert body["hidden"] is True and "item_tally" not in body and "conditions" not in body
    close(rnd, closes)
    html = client.get(f"/rounds/{rnd.id}").get_data(as_text=True)
    assert 'id="item-tally"' in html and '<strong id="agree-count">1</strong>' in html
    body = client.get(f"/api/rounds/{rnd.id}/tally").get_json()
    assert [(i["key"], i["count"], i["area"]) for i in body["item_tally"]["items"]] == [("roof", 1, "88.50")]


def test_receipts_say_recorded_until_the_close(client, voted_round, hidden, now):
    rnd, closes, codes = hidden
    for code in codes.values():
        info = ballots.check_receipt(code)
        assert (info["status"], info["status_label"], info["counted"]) == ("recorded", "已记录", False)
        html = client.get(f"/receipt?code={code}").get_data(as_text=True)
        assert "已记录：" in html and "已计入" not in html and "替代" not in html
        api = client.get(f"/api/ballot/receipt/{code}").get_json()
        assert (api["status"], api["counted"]) == ("recorded", False)
        chain = client.get(f"/api/audit/receipt/{code}").get_json()
        assert chain["state"] == "recorded_round_open" and "计入" not in chain["headline"]
    close(rnd, closes)
    assert ballots.check_receipt(codes["101"])["status"] == "counted"
    assert ballots.check_receipt(codes["102_first"])["status"] == "superseded"
    assert "已被后来的投票替代：同意改造" in client.get(f"/receipt?code={codes['102_first']}").get_data(as_text=True)
    assert client.get(f"/api/audit/receipt/{codes['102_last']}").get_json()["state"] == "counted_as_cast"
