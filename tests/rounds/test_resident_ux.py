"""Resident pages over HTTP (issue 18): error pages in a resident's words, the identity mismatch said once with
the tries left, closed rounds on the home page with their result, withdrawals asking once more."""

from __future__ import annotations

from datetime import timedelta

from residents_app.rounds import services as svc


def sign_in(client, token, unit):
    owner = unit.owners[0]
    return client.post(f"/v/{token}", data={"name": owner.name, "phone_last4": owner.phone[-4:]})


def test_a_resident_404_says_what_to_do_without_a_code_or_staff_link(client, db, link_for, units):
    sign_in(client, link_for()["1幢-101"], units["1幢-101"])
    page = client.get("/r/rounds/999999")
    text = page.get_data(as_text=True)
    assert page.status_code == 404
    assert "not_found" not in text and "错误代码" not in text and "/login" not in text
    assert "请回到本户首页重新进入" in text
    assert 'href="/r/home"' in text and "返回本户首页" in text


def test_an_unknown_receipt_page_without_session_says_scan_again(client, db):
    page = client.get("/r/does-not-exist")
    text = page.get_data(as_text=True)
    assert page.status_code == 404
    assert "请用手机重新扫描业委会发给您的二维码" in text and "/login" not in text and "not_found" not in text


def test_staff_404_keeps_the_code_behind_technical_details(client, db):
    text = client.get("/no-such-page").get_data(as_text=True)
    assert "<summary>技术细节</summary><p>错误代码：not_found（404）</p>" in text


def test_identity_mismatch_is_said_once_with_tries_left(client, db, link_for):
    token = link_for()["1幢-101"]
    text = client.post(f"/v/{token}", data={"name": "张三", "phone_last4": "0000"}).get_data(as_text=True)
    assert text.count("与本户登记信息不符") == 1
    assert "还可以再试 4 次" in text
    assert "与登记信息不符</p>" not in text


def test_home_shows_closed_rounds_with_their_result(client, db, live_round, link_for, units):
    rnd = live_round()
    token = link_for()["1幢-101"]
    sign_in(client, token, units["1幢-101"])
    assert "已结束的征求 / 表决" not in client.get("/r/home").get_data(as_text=True)
    assert svc.close_round(rnd.id, rnd.closes_at + timedelta(seconds=1), "system:test") is True
    db.session.commit()
    home = client.get("/r/home").get_data(as_text=True)
    assert "已结束的征求 / 表决" in home
    assert "结果：未通过" in home
    closed = client.get(f"/r/rounds/{rnd.id}").get_data(as_text=True)
    assert '<strong>结果：未通过</strong>' in closed


def test_open_round_card_says_go_vote(client, db, live_round, link_for, units):
    live_round()
    sign_in(client, link_for()["1幢-101"], units["1幢-101"])
    assert '<span class="go">去投票</span>' in client.get("/r/home").get_data(as_text=True)


MENU = [{"key": "sewer", "label": "雨污分流", "category": "必选"},
        {"key": "roof", "label": "屋面防水", "category": "基础"}]


def test_vote_page_puts_the_choices_first_and_folds_the_rule(client, db, live_round, link_for, units):
    rnd = live_round(item_menu=MENU)
    sign_in(client, link_for()["1幢-101"], units["1幢-101"])
    html = client.get(f"/r/rounds/{rnd.id}").get_data(as_text=True)
    assert '<p class="muted step" id="step">第 1 步 / 共 3 步 · 1幢-101</p>' in html
    assert html.index('id="choice-agree"') < html.index('<details class="rule">')
    assert "<details class=\"rule\" open>" not in html


def test_required_item_is_included_not_ticked_and_still_counted(client, db, live_round, link_for, units):
    from residents_app.rounds.models import Ballot, CurrentBallot

    rnd = live_round(item_menu=MENU)
    sign_in(client, link_for()["1幢-101"], units["1幢-101"])
    items = client.post(f"/r/rounds/{rnd.id}", data={"step": "choose", "choice": "agree"}).get_data(as_text=True)
    assert "第 2 步 / 共 3 步" in items
    assert "同意改造即包含以下必选项目：<strong>雨污分流</strong>" in items
    assert 'id="item-sewer"' not in items and 'id="item-roof"' in items
    assert '<input type="hidden" name="items" value="sewer">' in items
    confirm = client.post(f"/r/rounds/{rnd.id}", data={"step": "items", "choice": "agree", "items": ["sewer"]})
    assert "第 3 步 / 共 3 步" in confirm.get_data(as_text=True)
    client.post(f"/r/rounds/{rnd.id}", data={"step": "confirm", "choice": "agree", "items": ["sewer"]})
    cur = db.session.get(CurrentBallot, (rnd.id, units["1幢-101"].id))
    assert db.session.get(Ballot, cur.ballot_id).items == ["sewer"]


def test_disagree_skips_the_items_and_confirms_at_step_two_of_two(client, db, live_round, link_for, units):
    rnd = live_round(item_menu=MENU)
    sign_in(client, link_for()["1幢-101"], units["1幢-101"])
    html = client.post(f"/r/rounds/{rnd.id}", data={"step": "choose", "choice": "disagree"}).get_data(as_text=True)
    assert "第 2 步 / 共 2 步" in html and "请确认您的选择" in html


def test_home_links_the_pledge(client, db, link_for, units):
    sign_in(client, link_for()["1幢-101"], units["1幢-101"])
    assert '<li><a href="/r/pledge">出资承诺书</a></li>' in client.get("/r/home").get_data(as_text=True)


def test_one_receipt_page_one_wording_hashes_folded(client, db, live_round, link_for, units):
    import re

    rnd = live_round()
    sign_in(client, link_for()["1幢-101"], units["1幢-101"])
    done = client.post(f"/r/rounds/{rnd.id}", data={"step": "confirm", "choice": "agree"})
    code = re.search(r'id="receipt-code">([0-9a-f]{20})<', client.get(done.headers["Location"]).get_data(as_text=True)
                     ).group(1)
    mine = client.get(f"/receipt?code={code}").get_data(as_text=True)
    public = client.get(f"/audit/receipt/{code}").get_data(as_text=True)
    assert mine == public
    assert re.search(r'id="receipt-result">已计入：同意改造，\d{4}-\d{2}-\d{2} \d{2}:\d{2}</p>', mine)
    assert "尚未结束：截止前改票的，以最后一次为准" in mine
    tech = mine[mine.index('<details class="tech" id="receipt-tech">'):mine.index("</details>")]
    assert "<summary>技术细节</summary>" in tech and "日志位置：" in tech
    assert "日志位置" not in mine.replace(tech, "")


def test_home_offers_the_choices_and_the_next_page_confirms(client, db, live_round, link_for, units):
    rnd = live_round()
    sign_in(client, link_for()["1幢-101"], units["1幢-101"])
    home = client.get("/r/home").get_data(as_text=True)
    assert (f'<button type="submit" name="choice" value="disagree" class="secondary choice-button" '
            f'id="quick-{rnd.id}-disagree">不同意改造</button>') in home
    confirm = client.post(f"/r/rounds/{rnd.id}", data={"step": "choose", "choice": "disagree"}).get_data(as_text=True)
    assert "请确认您的选择" in confirm and 'id="confirm-rule">本次表决规则：' in confirm


def test_objection_form_shows_each_publicity_with_its_deadline_in_full(client, db, estate, link_for, units):
    from residents_app.db import utcnow
    from residents_app.formatting import to_local
    from residents_app.publicity import services as pub_svc

    sign_in(client, link_for()["1幢-101"], units["1幢-101"])
    now = utcnow()
    pub = pub_svc.post_publicity(estate, subject_type="hardship_list", subject_id=estate.id,
                                 title="困难群众名单公示", notice_text="名单见下", posted_on=to_local(now).date(),
                                 actor="system:test", now=now)
    db.session.commit()
    html = client.get("/r/objections").get_data(as_text=True)
    assert f'id="publicity-{pub.id}"' in html and f"异议截止：{pub.last_day.isoformat()}" in html
