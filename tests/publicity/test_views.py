"""Publicity over HTTP: committee pages, the public board, resident pages, the calendar admin page."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime

import sqlalchemy as sa

from residents_app.publicity.models import CalendarYear, Objection, Publicity

from .conftest import PDF, PNG, post_hardship

FORM = {"subject_type": "hardship_list", "title": "困难群众名单公示", "notice_text": "以下住户列入困难群众名单。",
        "posted_on": "2026-09-29", "working_days": "5"}


def post_form(client, estate, **changes):
    data = {**FORM, "subject_id": str(estate.id), **changes}
    return client.post(f"/estates/{estate.id}/publicity", data=data, content_type="multipart/form-data")


def test_committee_posts_with_a_document_and_sees_the_period(client, login_as, estate, committee, clock, db):
    login_as(client, committee)
    resp = post_form(client, estate, documents=[(io.BytesIO(PDF), "公示书.pdf")])
    assert resp.status_code == 302
    pub = db.session.execute(sa.select(Publicity)).scalar_one()
    assert resp.headers["Location"].endswith(f"/publicity/{pub.id}")
    assert (pub.last_day, len(pub.documents)) == (date(2026, 10, 12), 1)
    page = client.get(f"/publicity/{pub.id}").get_data(as_text=True)
    assert "公示期：2026-09-30 至 2026-10-12（5个工作日）" in page
    assert "公示期尚未届满（截至 2026-10-12 24:00）" in page
    listing = client.get(f"/estates/{estate.id}/publicity").get_data(as_text=True)
    assert "困难群众名单公示" in listing and "公示中" in listing
    doc = pub.documents[0]
    got = client.get(f"/publicity/{pub.id}/documents/{doc.id}")
    assert got.status_code == 200 and got.data == PDF and got.mimetype == "application/pdf"


def test_bad_input_gets_a_chinese_message_not_a_500(client, login_as, estate, committee, clock, db):
    login_as(client, committee)
    resp = post_form(client, estate, posted_on="2026-13-01")
    assert resp.status_code == 422 and "张贴日期“2026-13-01”无效" in resp.get_data(as_text=True)
    resp = post_form(client, estate, working_days="五")
    assert resp.status_code == 422 and "公示天数须为整数" in resp.get_data(as_text=True)
    resp = post_form(client, estate, documents=[(io.BytesIO(b"MZ\x90\x00rest"), "名单.pdf")])
    assert resp.status_code == 422 and "Windows 可执行程序" in resp.get_data(as_text=True)
    clock.set(datetime(2026, 12, 30, 2, tzinfo=UTC))
    resp = post_form(client, estate, posted_on="2026-12-31")
    assert resp.status_code == 409
    assert "工作日历尚未包含 2027 年" in resp.get_data(as_text=True)
    assert db.session.execute(sa.select(sa.func.count()).select_from(Publicity)).scalar_one() == 0


def test_scoping(client, login_as, estate, factory, clock, db):
    pub = post_hardship(estate)
    other = factory.estate(buildings={"1幢": [("101", "50.00")]})
    outsider = factory.user("committee", estate=other)
    street = factory.user("street", estate=estate)
    db.session.commit()
    login_as(client, outsider)
    assert client.get(f"/publicity/{pub.id}").status_code == 404
    assert client.get(f"/estates/{estate.id}/publicity").status_code == 404
    assert client.post(f"/publicity/{pub.id}/complete").status_code == 404
    client.post("/logout")
    login_as(client, street)
    assert client.get(f"/publicity/{pub.id}").status_code == 200
    assert post_form(client, estate).status_code == 403
    client.post("/logout")
    anon = client.get(f"/publicity/{pub.id}")
    assert anon.status_code == 302 and "/login" in anon.headers["Location"]


def test_public_board_without_login_shows_unit_numbers_only(client, estate, units, clock, db):
    pub = post_hardship(estate)
    from residents_app.publicity import services

    doc = services.add_document(pub, "名单.pdf", PDF, actor="a", now=clock.now)
    resp = client.get(f"/p/{estate.code}")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert "公示期：2026-09-30 至 2026-10-12（5个工作日）" in html
    assert "1幢-102、2幢-1001" in html
    for u in units.values():
        for o in u.owners:
            assert o.name not in html and o.phone not in html and o.phone[-4:] not in html
    assert f"/p/{estate.code}/documents/{doc.token}" in html
    assert client.get(f"/p/{estate.code}/documents/{doc.token}").data == PDF
    qr = client.get(f"/p/{estate.code}/qr.svg")
    assert qr.status_code == 200 and qr.mimetype == "image/svg+xml" and b"<svg" in qr.data
    assert client.get("/p/NOPE").status_code == 404
    assert "@page { size: A4" in html


def test_board_does_not_serve_another_estates_document(client, estate, factory, clock, db):
    from residents_app.publicity import services

    pub = post_hardship(estate)
    doc = services.add_document(pub, "名单.pdf", PDF, actor="a", now=clock.now)
    other = factory.estate(buildings={"1幢": [("101", "50.00")]})
    db.session.commit()
    assert client.get(f"/p/{other.code}/documents/{doc.token}").status_code == 404


def test_resident_raises_an_objection_with_a_photo(client, estate, units, clock, sign_in_resident, db,
                                                   login_as, committee):
    pub = post_hardship(estate)
    sign_in_resident(client, units["1幢-101"])
    page = client.get("/r/publicity").get_data(as_text=True)
    assert "困难群众名单公示" in page and "对此公示提出异议" in page
    resp = client.post("/r/objections", data={"publicity_id": str(pub.id), "text": "1幢-103 也应列入",
                                              "photo": (io.BytesIO(PNG), "现场.png")},
                       content_type="multipart/form-data")
    assert resp.status_code == 302
    obj = db.session.execute(sa.select(Objection)).scalar_one()
    assert (obj.unit_id, obj.text, obj.photo_type, obj.status) == (units["1幢-101"].id, "1幢-103 也应列入",
                                                                   "image/png", "open")
    mine = client.get("/r/objections").get_data(as_text=True)
    assert "1幢-103 也应列入" in mine and "待处理" in mine
    # The committee sees it, cannot complete, mediates, then completes after the end.
    client2 = client.application.test_client()
    login_as(client2, committee)
    detail = client2.get(f"/publicity/{pub.id}").get_data(as_text=True)
    assert "还有 1 条异议尚未处理" in detail and "1幢-101" in detail
    assert client2.get(f"/publicity/{pub.id}/objections/{obj.id}/photo").data == PNG
    clock.set(datetime(2026, 10, 13, 1, tzinfo=UTC))
    refused = client2.post(f"/publicity/{pub.id}/complete")
    assert refused.status_code == 409 and "还有 1 条异议尚未处理" in refused.get_data(as_text=True)
    resp = client2.post(f"/publicity/{pub.id}/objections/{obj.id}/mediate",
                        data={"outcome": "answered", "notes": "上门沟通", "answer": "1幢-103 未提出申请"})
    assert resp.status_code == 302
    assert client2.post(f"/publicity/{pub.id}/complete").status_code == 302
    db.session.refresh(pub)
    assert pub.status == "completed"
    answered = client.get("/r/objections").get_data(as_text=True)
    assert "已答复" in answered and "1幢-103 未提出申请" in answered


def test_resident_cannot_object_to_another_estate_or_after_the_end(client, estate, units, factory, clock,
                                                                   sign_in_resident, db):
    pub = post_hardship(estate)
    other = factory.estate(buildings={"1幢": [("101", "50.00")]})
    other_pub = post_hardship(other)
    db.session.commit()
    sign_in_resident(client, units["1幢-101"])
    resp = client.post("/r/objections", data={"publicity_id": str(other_pub.id), "text": "x"})
    assert resp.status_code == 404
    resp = client.post("/r/objections", data={"publicity_id": "abc", "text": "x"})
    assert resp.status_code == 422 and "请选择要提出异议的公示" in resp.get_data(as_text=True)
    resp = client.post("/r/objections", data={"publicity_id": str(pub.id), "text": "x",
                                              "photo": (io.BytesIO(PDF), "a.png")},
                       content_type="multipart/form-data")
    assert resp.status_code == 422 and "照片" in resp.get_data(as_text=True)
    clock.set(datetime(2026, 10, 12, 16, 0, tzinfo=UTC))
    resp = client.post("/r/objections", data={"publicity_id": str(pub.id), "text": "晚了"})
    assert resp.status_code == 409 and "该公示已结束" in resp.get_data(as_text=True)
    assert db.session.execute(sa.select(sa.func.count()).select_from(Objection)).scalar_one() == 0


def test_resident_pages_need_a_unit_session(client):
    assert client.get("/r/publicity").headers["Location"].endswith("/r/expired")
    assert client.get("/r/objections").headers["Location"].endswith("/r/expired")


def test_admin_calendar_page_warns_and_accepts_2027(client, login_as, admin, committee, clock, db):
    login_as(client, committee)
    assert client.get("/admin/calendar").status_code == 404
    client.post("/logout")
    login_as(client, admin)
    clock.set(datetime(2026, 11, 23, 2, tzinfo=UTC))
    page = client.get("/admin/calendar").get_data(as_text=True)
    assert "明年（2027 年）的节假日安排尚未录入" in page
    assert "<td>2026</td>" in page and "<td>2004–2023</td>" in page and "内置数据（chinesecalendar）" in page
    assert client.post("/admin/calendar/years", data={"year": "2027"}).status_code == 409
    resp = client.post("/admin/calendar/overrides", data={"day": "2027-01-01", "kind": "rest", "note": "元旦"})
    assert resp.status_code == 302
    assert client.post("/admin/calendar/overrides", data={"day": "2027-01-xx", "kind": "rest"}).status_code == 422
    assert client.post("/admin/calendar/overrides", data={"day": "2027-01-02", "kind": "?"}).status_code == 422
    assert client.post("/admin/calendar/years", data={"year": "2027"}).status_code == 302
    assert db.session.get(CalendarYear, 2027) is not None
    page = client.get("/admin/calendar").get_data(as_text=True)
    assert "明年（2027 年）" not in page and "管理员录入" in page and "元旦" in page


def test_status_api(client, login_as, estate, committee, factory, clock, db):
    pub = post_hardship(estate)
    db.session.commit()
    login_as(client, committee)
    resp = client.get(f"/api/publicity/status?subject_type=hardship_list&subject_id={estate.id}")
    assert resp.status_code == 200
    assert resp.get_json()["posted"] is True and resp.get_json()["publicity_id"] == pub.id
    bad = client.get("/api/publicity/status?subject_type=x&subject_id=1&extra=1")
    assert bad.status_code == 422 and bad.get_json()["code"] == "validation_failed"
    other = factory.estate(buildings={"1幢": [("101", "50.00")]})
    post_hardship(other)
    db.session.commit()
    assert client.get(f"/api/publicity/status?subject_type=hardship_list&subject_id={other.id}").status_code == 404


def test_calendar_cli_import(app, db, tmp_path):
    path = tmp_path / "2027.csv"
    path.write_text("2027-01-01,休,元旦\n2027-02-20,班\n", encoding="utf-8")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["calendar", "import-year", "2027", str(path)])
    assert result.exit_code == 0, result.output
    assert "已导入 2027 年 2 个日期，2027 年已确认完整" in result.output
    years = runner.invoke(args=["calendar", "years"])
    assert years.exit_code == 0 and "2027\tadmin\t调整 2 天" in years.output and "2026\tpackage" in years.output
    bad = tmp_path / "bad.csv"
    bad.write_text("2027-01-01,maybe\n", encoding="utf-8")
    result = runner.invoke(args=["calendar", "import-year", "2028", str(bad)])
    assert result.exit_code == 1 and "不在 2028 年" in result.output


def test_committee_publishes_a_closed_round_result_from_the_select(client, login_as, estate, units, committee,
                                                                    clock, db):
    from datetime import timedelta

    from residents_app.rounds import ballots
    from residents_app.rounds import services as rounds

    opens = datetime(2026, 9, 20, 2, tzinfo=UTC)
    rnd = rounds.create_round(estate.id, rounds.RoundInput(kind="willingness", title="是否同意改造",
                                                           opens_at=opens, closes_at=opens + timedelta(days=7)), opens)
    rounds.open_round(rnd.id, opens, "a")
    for label in ("1幢-101", "2幢-201"):
        ballots.cast_ballot(rnd.id, units[label].id, units[label].owners[0].id, "agree", opens + timedelta(hours=1))
    db.session.commit()
    login_as(client, committee)
    page = client.get(f"/estates/{estate.id}/publicity").get_data(as_text=True)
    assert f'value="hardship_list:{estate.id}"' in page and f'value="round_result:{rnd.id}"' not in page
    rounds.close_round(rnd.id, opens + timedelta(days=7), "a")
    db.session.commit()
    page = client.get(f"/estates/{estate.id}/publicity").get_data(as_text=True)
    assert f'<option value="round_result:{rnd.id}">表决结果：是否同意改造（#{rnd.id}）</option>' in page
    resp = client.post(f"/estates/{estate.id}/publicity", data={**FORM, "subject": f"round_result:{rnd.id}"})
    assert resp.status_code == 302
    pub = db.session.execute(sa.select(Publicity)).scalar_one()
    assert (pub.subject_type, pub.subject_id, pub.unit_labels) == ("round_result", rnd.id, ["1幢-101", "2幢-201"])
    board = client.get(f"/p/{estate.code}").get_data(as_text=True)
    assert "同意改造居民房号汇总表（共 2 户）" in board and "1幢-101、2幢-201" in board
    assert "是否同意改造：表决结果 未通过" in board  # 2 of 5 households
    bad = client.post(f"/estates/{estate.id}/publicity", data={**FORM, "subject": "bogus:1"})
    assert bad.status_code == 422 and "subject_type" in bad.get_data(as_text=True)
