"""Public receipt check: tied to the ballot's audit entry; "counted as cast" only once the round is closed."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from residents_app.audit.models import AuditEvent
from residents_app.rounds import ballots


def test_counted_as_cast_after_close(client, voted_round):
    code = voted_round.receipts["1幢-101"]
    resp = client.get(f"/audit/receipt/{code}")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert "已按所投计入：同意改造，2026-09-01 11:00" in html
    assert "外立面及屋面改造意愿征求" in html
    # No unit number and no name on the public page.
    assert "1幢" not in html and "业主" not in html.replace("业主姓名", "")


def _entry(db, code):
    from residents_app.rounds.models import Ballot

    ballot = db.session.execute(sa.select(Ballot).where(Ballot.receipt_code == code)).scalar_one()
    return db.session.execute(sa.select(AuditEvent).where(AuditEvent.subject_type == "ballot",
                                                          AuditEvent.subject_id == str(ballot.id))).scalar_one()


def test_receipt_is_written_into_the_ballot_entry(db, voted_round):
    code = voted_round.receipts["1幢-101"]
    ev = _entry(db, code)
    assert ev.kind == "ballot.cast"
    assert (ev.data["choice"], ev.data["receipt"]) == ("agree", code)


def test_a_deferred_entry_is_shown_as_being_written_until_sealed(app, client, db, voted_round, now, monkeypatch):
    """An online ballot's entry waits in audit_pending until the sealer runs: the check says so, then (sealed)
    gives its place in the chain."""
    from residents_app.audit.services import pending_count, seal_pending
    from residents_app.registry.models import Unit
    from residents_app.rounds import services as rs

    monkeypatch.setitem(app.config, "AUDIT_DEFER_ON_SQLITE", True)  # the views defer on PostgreSQL only
    r2 = rs.create_round(voted_round.estate_id, rs.RoundInput(kind="general", matter_item=7, title="进行中",
                                                              opens_at=now,
                                                              closes_at=now + timedelta(days=30)), now, voted_round.c1)
    rs.open_round(r2.id, now, voted_round.c1)
    unit = db.session.get(Unit, voted_round.unit_ids["1幢-102"])
    b = ballots.cast_ballot(r2.id, unit.id, unit.owners[0].id, "agree", now + timedelta(hours=1), defer_audit=True)
    code = b.receipt_code
    db.session.commit()
    assert pending_count(voted_round.estate_id) == 1
    body = client.get(f"/api/audit/receipt/{code}").get_json()
    assert (body["state"], body["headline"], body["seq"], body["entry_hash"]) == (
        "recorded_pending", "您的投票已记录，正在写入审计日志", 0, "")
    html = client.get(f"/audit/receipt/{code}").get_data(as_text=True)
    assert "正在写入" in html and "日志哈希" not in html
    assert seal_pending().sealed == 1
    body = client.get(f"/api/audit/receipt/{code}").get_json()
    ev = _entry(db, code)
    assert (body["state"], body["seq"], body["entry_hash"]) == ("recorded_round_open", ev.seq, ev.hash)


def test_superseded_vote_says_so(client, voted_round):
    html = client.get(f"/audit/receipt/{voted_round.receipts['first_202']}").get_data(as_text=True)
    assert "该次投票已被本户后来的投票替代" in html
    html = client.get(f"/audit/receipt?code={voted_round.receipts['last_202'].upper()}").get_data(as_text=True)
    assert "已按所投计入：不同意改造，2026-09-08 09:30" in html


def test_open_round_does_not_say_counted(client, db, voted_round, now):
    from residents_app.registry.models import Unit
    from residents_app.rounds import ballots
    from residents_app.rounds import services as rs

    r2 = rs.create_round(voted_round.estate_id, rs.RoundInput(kind="general", matter_item=7, title="进行中",
                                                              opens_at=now,
                                                              closes_at=now + timedelta(days=30)), now, voted_round.c1)
    rs.open_round(r2.id, now, voted_round.c1)
    unit = db.session.get(Unit, voted_round.unit_ids["1幢-102"])
    b = ballots.cast_ballot(r2.id, unit.id, unit.owners[0].id, "agree", now + timedelta(hours=1))
    html = client.get(f"/audit/receipt/{b.receipt_code}").get_data(as_text=True)
    assert "您的投票已记入审计日志" in html
    assert "已按所投计入" not in html
    assert "表决尚未结束" in html


def test_bad_and_unknown_codes(client, voted_round):
    resp = client.get("/audit/receipt/xyz")
    assert resp.status_code == 422
    assert "回执码应为 20 位，由数字 0-9 和字母 a-f 组成" in resp.get_data(as_text=True)
    resp = client.get("/audit/receipt/" + "0" * 20)
    assert resp.status_code == 404
    assert "没有找到该回执码对应的投票记录" in resp.get_data(as_text=True)
    assert client.get("/audit/receipt").status_code == 200


def test_tampered_entry_is_reported(client, db, voted_round, tamper):
    code = voted_round.receipts["1幢-101"]
    t = AuditEvent.__table__
    tamper(sa.update(t).where(t.c.id == _entry(db, code).id).values(data={"round_id": voted_round.id,
                                                                           "choice": "disagree"}))
    html = client.get(f"/audit/receipt/{code}").get_data(as_text=True)
    assert "审计日志校验异常，请联系街道办事处" in html
    assert "已按所投计入" not in html


def test_receipt_api(client, voted_round):
    resp = client.get(f"/api/audit/receipt/{voted_round.receipts['1幢-101']}")
    body = resp.get_json()
    assert resp.status_code == 200
    assert (body["state"], body["headline"], body["round_closed"]) == (
        "counted_as_cast", "已按所投计入：同意改造，2026-09-01 11:00", True)
    bad = client.get("/api/audit/receipt/nothex")
    assert bad.status_code == 422
    assert bad.get_json()["code"] == "invalid_receipt"
    assert bad.get_json()["errors"] == {"code": "回执码格式不正确"}


def test_chain_api_is_scoped(client, login_as, factory, voted_round, tamper):
    login_as(client, voted_round.street)
    body = client.get(f"/api/audit/estates/{voted_round.estate_id}/chain").get_json()
    assert body["ok"] is True and body["broken"] is None and body["entry_count"] == body["head_seq"]
    t = AuditEvent.__table__
    target = db_first_ballot_event(voted_round)
    tamper(sa.update(t).where(t.c.id == target.id).values(data={"choice": "disagree"}))
    body = client.get(f"/api/audit/estates/{voted_round.estate_id}/chain").get_json()
    assert body["ok"] is False
    assert (body["broken"]["seq"], body["broken"]["id"], body["broken"]["problem"]) == (
        target.seq, target.id, "hash_mismatch")
    other = factory.user("street", office=factory.street_office(code="ELSEWHERE"))
    client.post("/logout")
    login_as(client, other)
    assert client.get(f"/api/audit/estates/{voted_round.estate_id}/chain").status_code == 404


def test_chain_api_needs_login(client, voted_round):
    resp = client.get(f"/api/audit/estates/{voted_round.estate_id}/chain")
    assert resp.status_code == 401
    assert resp.get_json()["code"] == "unauthorized"


def db_first_ballot_event(voted_round):
    from residents_app.extensions import db

    return db.session.execute(sa.select(AuditEvent).where(AuditEvent.chain == voted_round.estate_id,
                                                          AuditEvent.kind == "ballot.cast")
                              .order_by(AuditEvent.seq).limit(1)).scalar_one()
