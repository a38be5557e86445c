"""Committee pages over HTTP: scoping, create, tally with margins, paper ballots, roll export, QR links."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import openpyxl
import sqlalchemy as sa

from residents_app.db import utcnow
from residents_app.formatting import to_local
from residents_app.rounds import ballots as ballots_svc
from residents_app.rounds import services as svc
from residents_app.rounds import tally as tally_svc
from residents_app.rounds.models import Ballot, Round

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def vote(rnd, unit, choice):
    return ballots_svc.cast_ballot(rnd.id, unit.id, unit.ownerships[0].owner_id, choice, utcnow())


def test_other_estates_rounds_are_404_and_street_office_reads_only(client, db, factory, login_as, live_round,
                                                                    estate):
    rnd = live_round()
    outsider = factory.user("committee", estate=factory.estate(buildings={"A": [("1", "10.00")]}))
    db.session.commit()
    login_as(client, outsider)
    assert client.get(f"/rounds/{rnd.id}").status_code == 404
    assert client.get(f"/estates/{estate.id}/rounds").status_code == 404
    assert client.get(f"/api/rounds/{rnd.id}/tally").status_code == 404
    client.post("/api/auth/logout")
    from residents_app.registry.models import StreetOffice

    street = factory.user("street", office=db.session.get(StreetOffice, estate.street_office_id))
    login_as(client, street)
    assert client.get(f"/rounds/{rnd.id}").status_code == 200
    resp = client.post(f"/rounds/{rnd.id}/extend", data={"closes_at": "2030-01-01T10:00", "reason": "x"})
    assert resp.status_code == 403
    assert "只有本小区业委会可以进行此操作" in resp.get_data(as_text=True)


def test_create_round_by_form_with_errors_then_success(client, db, login_as, committee, estate):
    login_as(client, committee)
    bad = client.post(f"/estates/{estate.id}/rounds", data={
        "kind": "willingness", "title": "", "rule_preset": "lucheng_double_two_thirds",
        "counting_mode": "household", "opens_at": "2026-12-01T09:00", "closes_at": "2026-11-30T09:00"})
    text = bad.get_data(as_text=True)
    assert bad.status_code == 422
    assert "请填写标题" in text and "截止时间必须晚于开始时间" in text
    bad_date = client.post(f"/estates/{estate.id}/rounds", data={"kind": "general", "title": "x",
                                                                 "opens_at": "明天", "closes_at": ""})
    assert bad_date.status_code == 422 and "开始时间应为 年-月-日 时:分" in bad_date.get_data(as_text=True)
    ok = client.post(f"/estates/{estate.id}/rounds", data={
        "kind": "willingness", "title": "老旧小区改造意愿征求", "rule_preset": "civil_code_278_major",
        "counting_mode": "person", "opens_at": "2026-12-01T09:00", "closes_at": "2026-12-15T18:00",
        "item_menu": "屋面防水|基础\n加装电梯|提升", "results_visibility": "hidden"})
    assert ok.status_code == 302
    rnd = db.session.execute(sa.select(Round).where(Round.title == "老旧小区改造意愿征求")).scalar_one()
    assert to_local(rnd.opens_at).strftime("%Y-%m-%d %H:%M") == "2026-12-01 09:00"
    assert rnd.item_menu == [{"key": "item1", "label": "屋面防水", "category": "基础"},
                             {"key": "item2", "label": "加装电梯", "category": "提升"}]
    assert client.get(f"/rounds/{rnd.id}/edit").status_code == 200


def test_tally_page_shows_conditions_margins_and_non_voters(client, db, login_as, committee, live_round, units):
    rnd = live_round()
    vote(rnd, units["1幢-101"], "agree")
    vote(rnd, units["2幢-201"], "agree")
    vote(rnd, units["2幢-202"], "disagree")
    login_as(client, committee)
    text = client.get(f"/rounds/{rnd.id}").get_data(as_text=True)
    # 160.00 of 400.00 m² (need 266.67: 106.67 more); 2 of 5 households (need 4: 2 more)
    assert "还差 106.67 m²" in text
    assert "还差 2 户" in text
    assert "还差 <strong>2 户 / 106.67 m²</strong>" in text
    assert "如未投票的全部同意，仍可通过" in text
    assert 'style="width: 40.00%"' in text  # agree households 2 / 5
    assert 'style="left: 66.66%"' in text   # the 2/3 line
    # The non-voters: their number here (and per building in the table), their list on a page of its own.
    assert '尚未投票 <strong id="not-voted-count">2</strong> 户' in text
    row = re.search(r"<tr><td>1幢</td>.*?</tr>", text, re.S).group(0)
    assert re.findall(r'<td class="num">([^<]*)</td>', row)[:4] == ["3", "300.00", "1", "2"]  # units, m², voted, not
    assert f'href="/rounds/{rnd.id}/non-voters"' in text and "102、103" not in text
    listing = client.get(f"/rounds/{rnd.id}/non-voters").get_data(as_text=True)
    assert "<strong>1幢</strong>：102、103" in listing and '<strong id="non-voters-total">2</strong> 户' in listing
    assert "<strong>2幢</strong>" not in listing


def test_hidden_results_show_only_turnout_until_close(client, db, login_as, committee, live_round, units):
    rnd = live_round(results_visibility="hidden")
    vote(rnd, units["1幢-101"], "agree")
    login_as(client, committee)
    text = client.get(f"/rounds/{rnd.id}").get_data(as_text=True)
    assert "截止前隐藏结果" in text and 'id="agree-count"' not in text
    body = client.get(f"/api/rounds/{rnd.id}/tally").get_json()
    assert body["hidden"] is True and "agree_count" not in body["figures"]
    assert body["figures"]["voted_count"] == 1


def test_paper_ballot_entry_with_scan_and_second_member(client, db, factory, login_as, committee, committee2,
                                                        live_round, units):
    rnd = live_round()
    login_as(client, committee)
    unit = units["1幢-103"]
    exe = client.post(f"/rounds/{rnd.id}/paper", data={"unit_id": unit.id, "choice": "agree",
                                                      "scan": (io.BytesIO(b"MZ\x90\x00" * 20), "scan.png")})
    assert exe.status_code == 422
    assert "纸质票扫描件的内容是Windows 可执行程序" in exe.get_data(as_text=True)
    ok = client.post(f"/rounds/{rnd.id}/paper", data={"unit_id": unit.id, "choice": "agree",
                                                     "scan": (io.BytesIO(PNG), "scan.png")})
    assert ok.status_code == 302
    paper = db.session.execute(sa.select(Ballot).where(Ballot.channel == "paper")).scalar_one()
    assert client.get(f"/rounds/{rnd.id}/files/{paper.scan_file_id}").data == PNG
    same = client.post(f"/rounds/{rnd.id}/paper/{paper.id}/confirm")
    assert same.status_code == 409 and "录入人不能确认自己录入的纸质票" in same.get_data(as_text=True)
    client.post("/api/auth/logout")
    login_as(client, committee2)
    assert client.post(f"/rounds/{rnd.id}/paper/{paper.id}/confirm").status_code == 302
    db.session.expire_all()
    assert db.session.get(Ballot, paper.id).status == "counted"
    assert tally_svc.compute_tally(rnd.id).figures.agree_count == 1


def test_roll_exports_neutralise_formulas(client, db, login_as, committee, estate, units, live_round):
    units["1幢-101"].owners[0].name = "=HYPERLINK(\"x\")"
    db.session.commit()
    rnd = live_round()
    login_as(client, committee)
    rows = list(csv.reader(io.StringIO(client.get(f"/rounds/{rnd.id}/roll.csv").data.decode("utf-8-sig"))))
    assert rows[0] == ["楼栋", "房号", "产权面积(m²)", "业主"]
    assert rows[1] == ["1幢", "101", "100.00", "'=HYPERLINK(\"x\")"]
    assert len(rows) == 6
    wb = openpyxl.load_workbook(io.BytesIO(client.get(f"/rounds/{rnd.id}/roll.xlsx").data))
    ws = wb.active
    assert [c.value for c in ws[2]] == ["1幢", "101", 100, "'=HYPERLINK(\"x\")"]


def test_qr_sheet_and_csv_of_links(client, db, app, login_as, committee, estate):
    login_as(client, committee)
    b1 = next(b for b in estate.buildings if b.name == "1幢")
    app.config["PUBLIC_BASE_URL"] = "https://vote.example.cn"
    try:
        sheet = client.post(f"/estates/{estate.id}/links/sheet", data={"building_id": b1.id}).get_data(as_text=True)
        assert sheet.count('class="qr-card"') == 3
        assert sheet.count("data:image/svg+xml") == 3
        assert "用微信扫码" in sheet
        again = client.post(f"/estates/{estate.id}/links/sheet", data={"building_id": b1.id}).get_data(as_text=True)
        assert again.count('class="qr-card"') == 0
        resp = client.post(f"/estates/{estate.id}/links.csv", data={})
        rows = list(csv.reader(io.StringIO(resp.data.decode("utf-8-sig"))))
        assert [r[:2] for r in rows] == [["楼栋", "房号"], ["2幢", "201"], ["2幢", "202"]]
        assert re.fullmatch(r"https://vote\.example\.cn/v/[A-Za-z0-9_-]{27}", rows[1][2])
        reissued = client.post(f"/estates/{estate.id}/links.csv", data={"reissue": "1"})
        assert len(list(csv.reader(io.StringIO(reissued.data.decode("utf-8-sig"))))) == 6
    finally:
        app.config["PUBLIC_BASE_URL"] = ""
    assert client.get(f"/estates/{estate.id}/links").get_data(as_text=True).count("有效") == 5
    bad = client.post(f"/estates/{estate.id}/links/sheet", data={"building_id": "999999"})
    assert bad.status_code == 422 and "请选择本小区的楼栋" in bad.get_data(as_text=True)


def test_extend_and_open_from_pages(client, db, login_as, committee, estate):
    login_as(client, committee)
    t = utcnow()
    rnd = svc.create_round(estate.id, svc.RoundInput(kind="general", matter_item=7, title="测试",
                                                     opens_at=t - timedelta(minutes=5),
                                                     closes_at=t + timedelta(days=3)), t, committee)
    assert client.post(f"/rounds/{rnd.id}/open").status_code == 302
    assert client.post(f"/rounds/{rnd.id}/open").status_code == 302
    assert rnd.status == "open"
    early = client.post(f"/rounds/{rnd.id}/close")
    assert early.status_code == 422 and "截止时间未到" in early.get_data(as_text=True)
    new = to_local(rnd.closes_at + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    no_reason = client.post(f"/rounds/{rnd.id}/extend", data={"closes_at": new, "reason": ""})
    assert no_reason.status_code == 409 and "延长截止时间必须填写理由" in no_reason.get_data(as_text=True)
    assert client.post(f"/rounds/{rnd.id}/extend", data={"closes_at": new, "reason": "春节"}).status_code == 302
    db.session.expire_all()
    assert [e.reason for e in db.session.get(Round, rnd.id).extensions] == ["春节"]


def test_conflict_and_proxy_through_pages(client, db, login_as, committee, committee2, live_round, units):
    rnd = live_round()
    u = units["2幢-201"]
    online = vote(rnd, u, "disagree")
    db.session.commit()
    login_as(client, committee)
    client.post(f"/rounds/{rnd.id}/paper", data={"unit_id": u.id, "choice": "agree",
                                                 "scan": (io.BytesIO(PNG), "form.png")})
    paper = db.session.execute(sa.select(Ballot).where(Ballot.channel == "paper")).scalar_one()
    client.post("/api/auth/logout")
    login_as(client, committee2)
    client.post(f"/rounds/{rnd.id}/paper/{paper.id}/confirm")
    page = client.get(f"/rounds/{rnd.id}").get_data(as_text=True)
    assert "线上与纸质冲突，待处理" in page
    no_reason = client.post(f"/rounds/{rnd.id}/conflicts/{paper.id}", data={"keep": "online", "reason": ""})
    assert no_reason.status_code == 422 and "处理冲突必须填写理由" in no_reason.get_data(as_text=True)
    client.post(f"/rounds/{rnd.id}/conflicts/{paper.id}", data={"keep": "online", "reason": "业主电话确认以线上为准"})
    db.session.expire_all()
    assert db.session.get(Ballot, paper.id).status == "rejected"
    assert db.session.get(Ballot, online.id).status == "counted"

    owner_id = units["2幢-202"].ownerships[0].owner_id
    wrong = client.post(f"/rounds/{rnd.id}/mandates", data={
        "unit_owner": f"{units['2幢-202'].id}:{owner_id}", "proxy_name": "李四",
        "evidence": (io.BytesIO(b"<html>x</html>"), "mandate.pdf")})
    assert wrong.status_code == 422 and "委托书的内容是网页（HTML/SVG/XML）文件" in wrong.get_data(as_text=True)
    client.post(f"/rounds/{rnd.id}/mandates", data={
        "unit_owner": f"{units['2幢-202'].id}:{owner_id}", "proxy_name": "李四", "proxy_phone": "13900001111",
        "evidence": (io.BytesIO(b"%PDF-1.4 mandate"), "mandate.pdf")})
    from residents_app.rounds.models import ProxyMandate

    m = db.session.execute(sa.select(ProxyMandate)).scalar_one()
    assert client.post(f"/rounds/{rnd.id}/mandates/{m.id}/cast", data={"choice": "agree"}).status_code == 302
    proxy = db.session.execute(sa.select(Ballot).where(Ballot.channel == "proxy")).scalar_one()
    # Issue 13 item 10: entered by one member, it waits for another (committee) to confirm it.
    assert (proxy.unit_id, proxy.proxy_name, proxy.status) == (units["2幢-202"].id, "李四", "pending")
    client.post("/api/auth/logout")
    login_as(client, committee)
    assert client.post(f"/rounds/{rnd.id}/proxy/{proxy.id}/confirm").status_code == 302
    db.session.expire_all()
    assert db.session.get(Ballot, proxy.id).status == "counted"
    assert "委托代理（李四）" in client.get(f"/rounds/{rnd.id}").get_data(as_text=True)
