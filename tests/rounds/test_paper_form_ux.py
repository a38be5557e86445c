"""The paper ballot form (issue 18 item 3): no unit or choice preselected, a searchable unit field, every error at
its field on the same page with the input kept, the confirm button only for another member."""

from __future__ import annotations

import io

import sqlalchemy as sa

from residents_app.rounds.models import Ballot

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def test_form_preselects_nothing_and_offers_a_searchable_unit_list(client, db, login_as, committee, live_round, units):
    rnd = live_round()
    login_as(client, committee)
    html = client.get(f"/rounds/{rnd.id}").get_data(as_text=True)
    assert '<input id="paper-unit" name="unit_label" list="paper-units"' in html
    assert '<option value="1幢-101">' in html
    assert '<option value="">请选择</option>' in html
    form = html[html.index('id="paper"'):html.index('id="paper-submit"')]
    assert " selected" not in form and " checked" not in form


def test_missing_scan_and_choice_stay_on_the_form_with_the_unit_kept(client, db, login_as, committee, live_round,
                                                                     units):
    rnd = live_round()
    login_as(client, committee)
    resp = client.post(f"/rounds/{rnd.id}/paper", data={"unit_label": "1幢-102", "choice": ""})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert "纸质票未录入：请按提示修改后重新提交（扫描件需重新选择）" in html
    assert 'value="1幢-102"' in html
    assert 'id="paper-choice-error">请选择纸质票上勾选的意见</p>' in html
    assert 'id="paper-scan-error">' in html
    assert "录入纸质票" in html and "错误代码" not in html and "built-in method" not in html
    assert db.session.execute(sa.select(sa.func.count()).select_from(Ballot)).scalar_one() == 0


def test_an_unknown_unit_label_is_said_at_the_unit_field_and_the_choice_kept(client, db, login_as, committee,
                                                                             live_round, units):
    rnd = live_round()
    login_as(client, committee)
    resp = client.post(f"/rounds/{rnd.id}/paper", data={"unit_label": "9幢-999", "choice": "disagree",
                                                        "scan": (io.BytesIO(PNG), "scan.png")})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert 'id="paper-unit-error">“9幢-999”不在本表决名册中，请从列表中选择</p>' in html
    assert '<option value="disagree" selected>' in html


def test_a_unit_label_enters_the_ballot_and_only_another_member_sees_confirm(client, db, login_as, committee,
                                                                            committee2, live_round, units):
    rnd = live_round()
    login_as(client, committee)
    ok = client.post(f"/rounds/{rnd.id}/paper", data={"unit_label": "1幢-102", "choice": "agree",
                                                      "scan": (io.BytesIO(PNG), "scan.png")})
    assert ok.status_code == 302
    ballot = db.session.execute(sa.select(Ballot)).scalar_one()
    assert ballot.unit_id == units["1幢-102"].id and ballot.choice == "agree" and ballot.status == "pending"
    mine = client.get(f"/rounds/{rnd.id}").get_data(as_text=True)
    assert "核对无误，确认计入" not in mine and "由您录入，需另一位业委会成员确认" in mine
    client.post("/api/auth/logout")
    login_as(client, committee2)
    assert "核对无误，确认计入" in client.get(f"/rounds/{rnd.id}").get_data(as_text=True)
