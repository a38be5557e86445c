"""Resident pages over HTTP: QR entry, identity, one question per screen, receipt."""

from __future__ import annotations

import re

import sqlalchemy as sa

from residents_app.rounds import links
from residents_app.rounds.models import CurrentBallot, IdentityFailure


def sign_in(client, token, unit):
    owner = unit.owners[0]
    return client.post(f"/v/{token}", data={"name": owner.name, "phone_last4": owner.phone[-4:]})


def test_unknown_and_revoked_links_get_a_clear_page(client, db, link_for, units):
    resp = client.get("/v/nonsense-token")
    assert resp.status_code == 404
    assert "这个二维码链接无效" in resp.get_data(as_text=True)
    tokens = link_for()
    from residents_app.db import utcnow

    links.revoke_link(units["1幢-101"].id, utcnow())
    resp = client.get(f"/v/{tokens['1幢-101']}")
    assert resp.status_code == 404
    assert "已经被业委会收回" in resp.get_data(as_text=True)


def test_identity_check_logs_failures_without_token_and_signs_in(client, db, link_for, units, caplog):
    tokens = link_for()
    token = tokens["1幢-101"]
    page = client.get(f"/v/{token}")
    assert page.status_code == 200
    assert "1幢-101" in page.get_data(as_text=True)
    bad = client.post(f"/v/{token}", data={"name": "张三", "phone_last4": "0000"})
    assert bad.status_code == 422
    assert "姓名或手机号后 4 位与本户登记信息不符" in bad.get_data(as_text=True)
    assert db.session.execute(sa.select(sa.func.count()).select_from(IdentityFailure)).scalar_one() == 1
    assert token not in caplog.text
    bad2 = client.post(f"/v/{token}", data={"name": "张三", "phone_last4": "12ab"})
    assert "请填写登记手机号的后 4 位数字" in bad2.get_data(as_text=True)
    ok = sign_in(client, token, units["1幢-101"])
    assert ok.status_code == 302 and ok.headers["Location"].endswith("/r/home")
    assert client.get(f"/v/{token}").headers["Location"].endswith("/r/home")


def test_identity_is_rate_limited(client, db, link_for):
    token = link_for()["1幢-102"]
    codes = [client.post(f"/v/{token}", data={"name": "x", "phone_last4": "0000"}).status_code
             for _ in range(11)]
    # the 6th failure within 15 minutes locks the link; the 11th request per minute hits the limiter
    assert codes[:5] == [422] * 5
    assert codes[5:10] == [429] * 5
    assert codes[10] == 429


def test_vote_flow_with_item_menu_receipt_and_change(client, db, live_round, link_for, units):
    rnd = live_round(item_menu=[{"key": "roof", "label": "屋面防水", "category": "基础"},
                                {"key": "lift", "label": "加装电梯", "category": "提升"}])
    token = link_for()["1幢-101"]
    sign_in(client, token, units["1幢-101"])
    home = client.get("/r/home").get_data(as_text=True)
    assert "是否同意改造" in home and "尚未投票" in home and "/r/plan" in home
    page = client.get(f"/r/rounds/{rnd.id}").get_data(as_text=True)
    assert "双三分之二（鹿城规则）" in page and "三分之二以上" in page
    missing = client.post(f"/r/rounds/{rnd.id}", data={"step": "choose"})
    assert missing.status_code == 422 and "请先选择一项" in missing.get_data(as_text=True)
    items = client.post(f"/r/rounds/{rnd.id}", data={"step": "choose", "choice": "agree"}).get_data(as_text=True)
    assert "您希望改造哪些项目" in items and "加装电梯" in items
    confirm = client.post(f"/r/rounds/{rnd.id}", data={"step": "items", "choice": "agree", "items": ["roof"]})
    text = confirm.get_data(as_text=True)
    assert "请确认您的选择" in text and "同意改造" in text and "希望改造：屋面防水" in text
    done = client.post(f"/r/rounds/{rnd.id}", data={"step": "confirm", "choice": "agree", "items": ["roof"]})
    assert done.status_code == 302
    receipt_page = client.get(done.headers["Location"]).get_data(as_text=True)
    code = re.search(r'id="receipt-code">([0-9a-f]{20})<', receipt_page).group(1)
    check = client.get(f"/receipt?code={code}").get_data(as_text=True)
    assert re.search(r"已计入：同意改造，\d{4}-\d{2}-\d{2} \d{2}:\d{2}", check)
    client.post(f"/r/rounds/{rnd.id}", data={"step": "confirm", "choice": "disagree"})
    check = client.get(f"/receipt?code={code}").get_data(as_text=True)
    assert "已被后来的投票替代：同意改造" in check
    cur = db.session.get(CurrentBallot, (rnd.id, units["1幢-101"].id))
    assert cur.choice == "disagree"


def test_receipt_errors(client, db):
    assert "回执码应为 20 位" in client.get("/receipt?code=abc").get_data(as_text=True)
    resp = client.get("/receipt?code=" + "f" * 20)
    assert resp.status_code == 404 and "没有找到该回执码对应的投票" in resp.get_data(as_text=True)


def test_resident_pages_need_a_session_and_see_only_their_unit(client, db, factory, live_round, link_for, units):
    rnd = live_round()
    assert client.get(f"/r/rounds/{rnd.id}").headers["Location"].endswith("/r/expired")
    other = factory.estate(buildings={"A": [("1", "50.00")]})
    from residents_app.db import utcnow
    from residents_app.rounds import links

    other_token = links.issue_links(other.id, utcnow())[0][1]
    unit = other.buildings[0].units[0]
    sign_in(client, other_token, unit)
    assert client.get(f"/r/rounds/{rnd.id}").status_code == 404


def test_closed_window_shows_a_page_not_an_error(client, db, live_round, link_for, units):
    rnd = live_round()
    token = link_for()["2幢-201"]
    sign_in(client, token, units["2幢-201"])
    from datetime import timedelta

    from residents_app.db import utcnow

    rnd.closes_at = utcnow() - timedelta(seconds=1)
    rnd.opens_at = utcnow() - timedelta(days=1)
    db.session.flush()
    resp = client.post(f"/r/rounds/{rnd.id}", data={"step": "confirm", "choice": "agree"})
    assert resp.status_code == 200
    assert "投票已截止" in resp.get_data(as_text=True)
    assert db.session.get(CurrentBallot, (rnd.id, units["2幢-201"].id)) is None
