"""Proxy ballots need a second committee member, and conflict with the owner's own ballot (issue 13, item 10).

Estate: 1幢 101/102/103 (100.00 m² each), 2幢 201 (60.00) and 202 (40.00): 5 households, 400.00 m².
"""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from residents_app.audit.models import AuditEvent
from residents_app.errors import Conflict, ValidationFailed
from residents_app.oversight.round_facts import round_flags
from residents_app.rounds import ballots as ballots_svc
from residents_app.rounds import services as svc
from residents_app.rounds import tally as tally_svc
from residents_app.rounds.models import Ballot, CurrentBallot, ProxyMandate, RoundResult

PDF = b"%PDF-1.4 mandate"
H = timedelta(hours=1)


def owner_of(unit):
    return unit.ownerships[0].owner_id


def figures(rnd, now):
    f = tally_svc.compute_tally(rnd.id, now).to_dict()["figures"]
    return f["voted_count"], f["voted_area"], f["agree_count"], f["agree_area"]


def proxy_ballot(rnd, unit, choice, when, user, name="李四"):
    evidence = ballots_svc.store_file(rnd.id, "mandate", PDF, "application/pdf", when, user)
    m = ballots_svc.record_mandate(rnd.id, unit.id, owner_of(unit), name, "13900000000", evidence, when, user)
    return ballots_svc.cast_proxy_ballot(m.id, choice, when, user)


def test_a_proxy_ballot_counts_only_after_a_second_member_confirms(db, make_round, units, now, committee,
                                                                   committee2):
    rnd = make_round()
    u = units["1幢-101"]
    b = proxy_ballot(rnd, u, "agree", now + H, committee)
    assert (b.status, b.entered_by_id, b.confirmed_by_id) == ("pending", committee.id, None)
    assert figures(rnd, now + H) == (0, "0.00", 0, "0.00")
    assert db.session.get(CurrentBallot, (rnd.id, u.id)) is None
    with pytest.raises(Conflict) as exc:
        ballots_svc.confirm_proxy_ballot(b.id, now + 2 * H, committee)
    assert (exc.value.status, exc.value.code) == (409, "same_user_confirm")
    assert exc.value.message == "录入人不能确认自己录入的委托代理票，请由另一位业委会成员确认"
    assert figures(rnd, now + 2 * H) == (0, "0.00", 0, "0.00")
    ballots_svc.confirm_proxy_ballot(b.id, now + 2 * H, committee2)
    assert (b.status, b.confirmed_by_id, b.confirmed_at) == ("counted", committee2.id, now + 2 * H)
    assert figures(rnd, now + 2 * H) == (1, "100.00", 1, "100.00")
    with pytest.raises(Conflict) as exc:
        ballots_svc.confirm_proxy_ballot(b.id, now + 3 * H, committee2)
    assert exc.value.code == "proxy_not_pending"
    kinds = list(db.session.execute(sa.select(AuditEvent.kind).where(
        AuditEvent.subject_type == "ballot", AuditEvent.subject_id == str(b.id)).order_by(AuditEvent.seq)).scalars())
    assert kinds == ["ballot.proxy_entered", "ballot.cast"]


def test_a_proxy_against_the_owners_online_ballot_is_a_conflict_resolved_with_a_reason(
        db, make_round, units, now, committee, committee2):
    rnd = make_round()
    u = units["2幢-201"]
    online = ballots_svc.cast_ballot(rnd.id, u.id, owner_of(u), "disagree", now + H)
    assert figures(rnd, now + H) == (1, "60.00", 0, "0.00")
    b = proxy_ballot(rnd, u, "agree", now + 2 * H, committee)
    ballots_svc.confirm_proxy_ballot(b.id, now + 3 * H, committee2)
    # The owner's own ballot stands until the committee decides.
    assert (b.status, online.status) == ("conflict", "counted")
    assert b.status_label == "委托代理票与业主本人的投票冲突，待处理"
    assert db.session.get(CurrentBallot, (rnd.id, u.id)).ballot_id == online.id
    assert figures(rnd, now + 3 * H) == (1, "60.00", 0, "0.00")
    with pytest.raises(ValidationFailed) as exc:
        ballots_svc.resolve_conflict(b.id, "proxy", " ", now + 4 * H, committee)
    assert exc.value.errors == {"reason": "请填写理由"}
    with pytest.raises(ValidationFailed) as exc:
        ballots_svc.resolve_conflict(b.id, "paper", "x", now + 4 * H, committee)
    assert exc.value.errors == {"keep": "只能是 proxy 或 online"}
    ballots_svc.resolve_conflict(b.id, "proxy", "业主书面说明由受托人代为表决", now + 4 * H, committee)
    db.session.expire_all()
    assert (db.session.get(Ballot, b.id).status, db.session.get(Ballot, online.id).status) == ("counted",
                                                                                              "superseded")
    assert db.session.get(CurrentBallot, (rnd.id, u.id)).ballot_id == b.id
    assert figures(rnd, now + 4 * H) == (1, "60.00", 1, "60.00")


def test_keeping_the_owners_own_ballot_rejects_the_proxy(db, make_round, units, now, committee, committee2):
    rnd = make_round()
    u = units["2幢-202"]
    online = ballots_svc.cast_ballot(rnd.id, u.id, owner_of(u), "agree", now + H)
    b = proxy_ballot(rnd, u, "disagree", now + 2 * H, committee)
    ballots_svc.confirm_proxy_ballot(b.id, now + 3 * H, committee2)
    ballots_svc.resolve_conflict(b.id, "online", "业主本人已投票，以本人为准", now + 4 * H, committee2)
    assert (b.status, b.resolution_reason, online.status) == ("rejected", "业主本人已投票，以本人为准", "counted")
    assert figures(rnd, now + 4 * H) == (1, "40.00", 1, "40.00")


def test_the_stored_result_leaves_out_unconfirmed_and_conflicting_proxies(db, make_round, units, now, committee,
                                                                          committee2):
    rnd = make_round()
    closes = rnd.closes_at
    confirmed = proxy_ballot(rnd, units["1幢-101"], "agree", now + H, committee)
    ballots_svc.confirm_proxy_ballot(confirmed.id, now + H, committee2)
    proxy_ballot(rnd, units["1幢-102"], "agree", now + H, committee)  # never confirmed
    u = units["2幢-201"]
    ballots_svc.cast_ballot(rnd.id, u.id, owner_of(u), "disagree", now + H)
    conflict = proxy_ballot(rnd, u, "agree", now + 2 * H, committee)
    ballots_svc.confirm_proxy_ballot(conflict.id, now + 2 * H, committee2)  # never resolved
    assert svc.close_round(rnd.id, closes, None)
    stored = db.session.get(RoundResult, rnd.id)
    f = stored.tally["figures"]
    assert (f["voted_count"], f["voted_area"], f["agree_count"], f["agree_area"]) == (2, "160.00", 1, "100.00")
    assert stored.agreeing_unit_labels == ["1幢-101"]
    flag = next(fl for fl in round_flags(rnd) if fl.kind == "proxy")
    assert flag.title == "委托代理投票"
    assert flag.detail == ("3 张委托代理票，请核对书面委托书；1 张尚无第二名业委会成员确认（不计入）；"
                           "1 张与业主本人的投票冲突，待处理（不计入）")
    assert flag.unit_labels == ["1幢-101", "1幢-102", "2幢-201"]


def test_a_mandate_after_the_deadline_is_refused(db, make_round, units, now, committee):
    rnd = make_round()
    u = units["1幢-101"]
    evidence = ballots_svc.store_file(rnd.id, "mandate", PDF, "application/pdf", now, committee)
    with pytest.raises(Conflict) as exc:
        ballots_svc.record_mandate(rnd.id, u.id, owner_of(u), "李四", "", evidence, rnd.closes_at, committee)
    assert exc.value.code == "vote_window_closed"


def _confirm_forms(html: str) -> list[str]:
    return re.findall(r'action="(/rounds/\d+/(?:proxy|paper)/\d+/confirm)"', html)


def test_pages_show_the_confirm_button_only_to_another_member(client, db, login_as, committee, committee2,
                                                               live_round, units):
    rnd = live_round()
    u = units["1幢-103"]
    login_as(client, committee)
    client.post(f"/rounds/{rnd.id}/mandates", data={
        "unit_owner": f"{u.id}:{owner_of(u)}", "proxy_name": "王五", "proxy_phone": "13900002222",
        "evidence": (io.BytesIO(PDF), "mandate.pdf")})
    m = db.session.execute(sa.select(ProxyMandate)).scalar_one()
    resp = client.post(f"/rounds/{rnd.id}/mandates/{m.id}/cast", data={"choice": "agree"})
    assert resp.status_code == 302
    b = db.session.execute(sa.select(Ballot).where(Ballot.channel == "proxy")).scalar_one()
    assert b.status == "pending"
    client.post(f"/rounds/{rnd.id}/paper", data={"unit_id": units["1幢-102"].id, "choice": "agree",
                                                 "scan": (io.BytesIO(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64), "f.png")})
    paper = db.session.execute(sa.select(Ballot).where(Ballot.channel == "paper")).scalar_one()
    page = client.get(f"/rounds/{rnd.id}").get_data(as_text=True)
    assert _confirm_forms(page) == []
    assert page.count("由您录入，需另一位业委会成员确认") == 2
    assert "委托代理（受托人 王五）" in page
    refused = client.post(f"/rounds/{rnd.id}/proxy/{b.id}/confirm")
    assert refused.status_code == 409
    assert "录入人不能确认自己录入的委托代理票" in refused.get_data(as_text=True)
    assert client.post(f"/rounds/{rnd.id}/proxy/{paper.id}/confirm").status_code == 404

    client.post("/api/auth/logout")
    login_as(client, committee2)
    page = client.get(f"/rounds/{rnd.id}").get_data(as_text=True)
    assert _confirm_forms(page) == [f"/rounds/{rnd.id}/proxy/{b.id}/confirm",
                                    f"/rounds/{rnd.id}/paper/{paper.id}/confirm"]
    assert client.post(f"/rounds/{rnd.id}/proxy/{b.id}/confirm").status_code == 302
    db.session.expire_all()
    assert db.session.get(Ballot, b.id).status == "counted"
    f = tally_svc.compute_tally(rnd.id).to_dict()["figures"]
    assert (f["agree_count"], f["agree_area"]) == (1, "100.00")
