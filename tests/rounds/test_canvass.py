"""Canvassing the non-voters from a round's committee page: reminders queued once per unit and day, delivery per
unit from the fake SMS provider, quiet hours, the door-to-door list with masked phones, contact attempts."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from residents_app.audit.models import AuditEvent
from residents_app.auth.wechat_models import WechatBinding
from residents_app.notify import outbox
from residents_app.notify import services as reach
from residents_app.notify.models import OutboxMessage
from residents_app.rounds import ballots, canvass, canvass_views
from residents_app.rounds import services as svc
from residents_app.rounds.canvass_models import CanvassContact
from tests.notify import conftest as fakes

# The local fakes of the providers (tests/notify/conftest.py), as fixtures of this module too.
fake_sms, fake_wechat = fakes.fake_sms, fakes.fake_wechat
make_sender, wechat_clock = fakes.make_sender, fakes.wechat_clock

OPENS = datetime(2026, 9, 1, 1, 0, tzinfo=UTC)  # 09:00 Beijing
AT = datetime(2026, 9, 1, 2, 0, tzinfo=UTC)  # 10:00 Beijing
LATE = datetime(2026, 9, 1, 13, 30, tzinfo=UTC)  # 21:30 Beijing
MORNING = datetime(2026, 9, 2, 0, 0, tzinfo=UTC)  # 08:00 Beijing


@pytest.fixture
def big(db, factory):
    """120 units in 4 buildings, a committee, an open round in which the 60 even-numbered units voted."""
    estate = factory.estate(buildings={f"{b}幢": [(f"{100 + i}", "80.00") for i in range(1, 31)]
                                       for b in range(1, 5)})
    committee = factory.user("committee", estate=estate)
    rnd = svc.create_round(estate.id, svc.RoundInput(kind="willingness", title="是否同意改造", opens_at=OPENS,
                                                     closes_at=OPENS + timedelta(days=14)), OPENS, committee)
    assert svc.open_round(rnd.id, OPENS, committee)
    units = [u for b in estate.buildings for u in b.units]
    voted = units[1::2]
    for u in voted:
        ballots.cast_ballot(rnd.id, u.id, u.owners[0].id, "agree", OPENS + timedelta(minutes=5))
    db.session.commit()
    return estate, committee, rnd, units, [u for u in units if u not in voted]


def _clock(monkeypatch, at):
    monkeypatch.setattr(canvass_views, "utcnow", lambda: at)


def _canvass_count(db, rnd):
    return db.session.execute(sa.select(sa.func.count()).select_from(OutboxMessage).where(
        OutboxMessage.dedupe_key.like(f"round:{rnd.id}:canvass:%"))).scalar_one()


def test_canvass_120_units_60_voted(db, client, login_as, big, monkeypatch, fake_sms, fake_wechat, make_sender):
    estate, committee, rnd, units, missing = big
    assert len(missing) == 60
    # one of the non-voters bound the mini-program: reminded by WeChat, the others by SMS
    db.session.add(WechatBinding(openid="o-wx-101", unit_id=missing[0].id, owner_id=missing[0].owners[0].id,
                                 created_at=OPENS))
    fake_wechat.subscribed["o-wx-101"] = 5
    db.session.commit()
    login_as(client, committee)
    _clock(monkeypatch, AT)
    page = client.get(f"/rounds/{rnd.id}")
    assert 'id="canvass-link"' in page.get_data(as_text=True)
    resp = client.post(f"/rounds/{rnd.id}/canvass/remind", follow_redirects=True)
    html = resp.get_data(as_text=True)
    assert "已排队提醒 60 户；今天已提醒过 0 户；0 户无可用渠道" in html
    assert _canvass_count(db, rnd) == 60
    queued_units = set(db.session.execute(sa.select(OutboxMessage.unit_id).where(
        OutboxMessage.dedupe_key.like(f"round:{rnd.id}:canvass:%"))).scalars())
    assert queued_units == {u.id for u in missing}
    # a second click queues none
    html = client.post(f"/rounds/{rnd.id}/canvass/remind", follow_redirects=True).get_data(as_text=True)
    assert "已排队提醒 0 户；今天已提醒过 60 户" in html
    assert _canvass_count(db, rnd) == 60
    # the click that queued is on the audit chain, the empty second one is not
    logged = db.session.execute(sa.select(AuditEvent.actor, AuditEvent.data).where(
        AuditEvent.kind == "round.canvass_reminders_queued")).all()
    assert logged == [(f"user:{committee.id}:{committee.username}",
                       {"queued": 60, "already": 0, "no_channel": 0, "building_id": None})]
    msg = db.session.execute(sa.select(OutboxMessage).where(OutboxMessage.unit_id == missing[0].id)).scalar_one()
    assert msg.text == (f"【{estate.name}】“是否同意改造”将于 2026-09-15 09:00 截止，"
                        "您家（1幢-101）尚未表决。请扫描本户二维码或在小程序中参与。")
    assert msg.next_attempt_at is None  # 10:00 Beijing: not held
    # delivery recorded from the fake provider, shown per unit
    assert outbox.send_pending(AT + timedelta(minutes=1), make_sender(), batch=500) == {
        "sent": 60, "failed": 0, "retry": 0}
    assert sorted(s["phone"] for s in fake_sms.sent) == sorted(u.owners[0].phone for u in missing[1:])
    assert [(m["touser"], m["data"]["thing1"]["value"]) for m in fake_wechat.sent] == [
        ("o-wx-101", "表决提醒：是否同意改造")]
    html = client.get(f"/rounds/{rnd.id}/canvass").get_data(as_text=True)
    assert 'id="non-voter-count">60<' in html
    assert html.count("已送达（短信 2026-09-01 10:01）") == 59
    assert html.count("已送达（微信 2026-09-01 10:01）") == 1
    # a second reminder round the same day: still none queued; the next day: 60 again
    _clock(monkeypatch, AT + timedelta(days=1))
    html = client.post(f"/rounds/{rnd.id}/canvass/remind", follow_redirects=True).get_data(as_text=True)
    assert "已排队提醒 60 户" in html and _canvass_count(db, rnd) == 120


def test_one_building_and_quiet_hours(db, client, login_as, big, monkeypatch):
    estate, committee, rnd, units, missing = big
    login_as(client, committee)
    _clock(monkeypatch, LATE)
    b2 = estate.buildings[1]
    html = client.post(f"/rounds/{rnd.id}/canvass/remind", data={"building_id": str(b2.id)},
                       follow_redirects=True).get_data(as_text=True)
    assert "已排队提醒 15 户" in html
    msgs = db.session.execute(sa.select(OutboxMessage).order_by(OutboxMessage.id)).scalars().all()
    assert {m.unit_id for m in msgs} == {u.id for u in missing if u.building_id == b2.id}
    # queued at 21:30 Beijing: held for 08:00 the next morning, and the page says so
    assert {m.next_attempt_at for m in msgs} == {MORNING}
    assert html.count("待发送（2026-09-02 08:00 发送）") == 15
    assert outbox.send_pending(LATE)["sent"] == 0
    assert outbox.send_pending(MORNING)["sent"] == 15


def test_door_list_masks_phones_and_contacts_are_recorded(db, client, login_as, big, monkeypatch):
    estate, committee, rnd, units, missing = big
    unreachable = missing[:3]
    unreachable[0].owners[0].phone = "13800000102"
    for u in unreachable:
        reach.opt_out(u.owners[0].id, "all", AT)
    db.session.commit()
    login_as(client, committee)
    _clock(monkeypatch, AT)
    html = client.post(f"/rounds/{rnd.id}/canvass/remind", follow_redirects=True).get_data(as_text=True)
    assert "已排队提醒 57 户；今天已提醒过 0 户；3 户无可用渠道" in html
    _clock(monkeypatch, AT + timedelta(minutes=30))
    resp = client.post(f"/rounds/{rnd.id}/canvass/contacts",
                       data={"unit_id": str(unreachable[0].id), "kind": "visit", "note": "不在家，已留字条"})
    assert resp.status_code == 302
    client.post(f"/rounds/{rnd.id}/canvass/contacts", data={"unit_id": str(unreachable[1].id), "kind": "call"})
    doors = client.get(f"/rounds/{rnd.id}/canvass/doors").get_data(as_text=True)
    rows = re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td>\s*<td>(.*?)</td><td>(.*?)</td>\s*<td>(.*?)</td>", doors)
    owner = unreachable[0].owners[0]
    assert rows == [
        ("1幢", "101", owner.name, "138****0102", "上门 2026-09-01 10:30（不在家，已留字条）"),
        ("1幢", "103", unreachable[1].owners[0].name, canvass.mask_phone(unreachable[1].owners[0].phone),
         "电话 2026-09-01 10:30"),
        ("1幢", "105", unreachable[2].owners[0].name, canvass.mask_phone(unreachable[2].owners[0].phone), "—"),
    ]
    assert "13800000102" not in doors
    page = client.get(f"/rounds/{rnd.id}/canvass").get_data(as_text=True)
    assert "上门 2026-09-01 10:30（不在家，已留字条）" in page
    contacts = db.session.execute(sa.select(CanvassContact.kind, CanvassContact.actor)).all()
    assert contacts == [("visit", f"user:{committee.id}:{committee.username}"),
                        ("call", f"user:{committee.id}:{committee.username}")]
    # wrong input: one error shape, never a 500
    bad = client.post(f"/rounds/{rnd.id}/canvass/contacts", data={"unit_id": str(unreachable[0].id), "kind": "fax"},
                      headers={"Accept": "application/json"})
    assert (bad.status_code, bad.get_json()["errors"]) == (422, {"kind": "应为上门、电话或留言"})
    voted_elsewhere = client.post(f"/rounds/{rnd.id}/canvass/contacts", data={"unit_id": "999999", "kind": "call"},
                                  headers={"Accept": "application/json"})
    assert voted_elsewhere.status_code == 404


def test_only_the_committee_of_the_estate_may_remind(db, client, login_as, big, factory, monkeypatch):
    estate, committee, rnd, units, missing = big
    street = factory.user("street", estate=estate)
    db.session.commit()
    login_as(client, street)
    _clock(monkeypatch, AT)
    assert client.get(f"/rounds/{rnd.id}/canvass").status_code == 200
    resp = client.post(f"/rounds/{rnd.id}/canvass/remind", headers={"Accept": "application/json"})
    assert resp.status_code == 403
    assert _canvass_count(db, rnd) == 0
    # after the deadline nothing is queued
    client.post("/logout")
    login_as(client, committee)
    _clock(monkeypatch, rnd.closes_at)
    resp = client.post(f"/rounds/{rnd.id}/canvass/remind", headers={"Accept": "application/json"})
    assert (resp.status_code, resp.get_json()["code"]) == (409, "round_not_open")


def test_service_counts_and_building_outside_the_round(db, big):
    estate, committee, rnd, units, missing = big
    assert canvass.queue_reminders(rnd.id, AT) == {"queued": 60, "already": 0, "no_channel": 0}
    assert canvass.queue_reminders(rnd.id, AT + timedelta(hours=1)) == {"queued": 0, "already": 60, "no_channel": 0}
    from residents_app.errors import NotFound

    with pytest.raises(NotFound):
        canvass.queue_reminders(rnd.id, AT, building_id=999999)
