"""The senders behind the outbox, against local fakes of Tencent Cloud SMS and WeChat: signing, delivery per
recipient, retries with backoff, permanent failures, opt-out, quiet hours, the daily cap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from residents_app.auth.wechat_models import WechatBinding
from residents_app.notify import outbox, tencent_sms
from residents_app.notify import services as reach
from residents_app.notify.models import NotifyOptOut, OutboxDelivery, OutboxMessage

DAY = datetime(2026, 9, 1, 2, 0, tzinfo=UTC)  # Tue 10:00 Beijing


def _estate(factory, n=3):
    return factory.estate(buildings={"1幢": [(f"10{i}", "80.00") for i in range(1, n + 1)]})


def _queue(db, unit, key, now=DAY, text="【测试小区】“是否同意改造”将于 2026-09-15 20:00 截止，您家尚未表决。"):
    msg = outbox.queue(estate_id=unit.estate_id, unit_id=unit.id, text=text, title="表决提醒", dedupe_key=key, now=now)
    db.session.commit()
    return msg


def _deliveries(db, msg):
    return [(d.channel, d.recipient, d.state, d.error_code) for d in db.session.execute(
        sa.select(OutboxDelivery).where(OutboxDelivery.message_id == msg.id).order_by(OutboxDelivery.id)).scalars()]


def test_tc3_signature_matches_the_documented_example():
    """Tencent Cloud's documented example (API 3.0 签名方法 v3: CVM DescribeInstances, 2019-02-25)."""
    payload = '{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
    canonical = tencent_sms.canonical_request("cvm.tencentcloudapi.com", payload)
    assert tencent_sms.sha256_hex(payload) == "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
    assert tencent_sms.string_to_sign(1551113065, "cvm", canonical) == (
        "TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n"
        "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031")
    assert tencent_sms.authorization("AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
                                     timestamp=1551113065, service="cvm", host="cvm.tencentcloudapi.com",
                                     payload=payload) == (
        "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request, "
        "SignedHeaders=content-type;host, "
        "Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168")


def test_sms_through_the_fake_provider_records_each_recipient(db, factory, fake_sms, make_sender):
    estate = _estate(factory)
    units = estate.buildings[0].units
    msgs = [_queue(db, u, f"t:{u.id}") for u in units]
    counts = outbox.send_pending(DAY, make_sender(wechat=False))
    assert counts == {"sent": 3, "failed": 0, "retry": 0}
    assert [(m.state, m.channel, m.sent_at) for m in msgs] == [("sent", "sms", DAY)] * 3
    phones = [u.owners[0].phone for u in units]
    assert [s["phone"] for s in fake_sms.sent] == phones
    assert fake_sms.sent[0]["params"] == [msgs[0].text]
    assert fake_sms.sent[0]["session_context"] == f"outbox:{msgs[0].id}"
    assert fake_sms.sent[0]["template_id"] == "2100001" and fake_sms.sent[0]["sign"] == "某某小区业委会"
    assert _deliveries(db, msgs[0]) == [("sms", phones[0], "sent", "")]
    ref = db.session.execute(sa.select(OutboxDelivery.provider_ref).where(
        OutboxDelivery.message_id == msgs[2].id)).scalar_one()
    assert ref == fake_sms.sent[2]["serial_no"] == "2433:0000000000000003"


def test_sms_errors_invalid_number_rate_limit_unsubscribed_and_bad_signature(db, factory, fake_sms, make_sender):
    estate = _estate(factory, 4)
    u1, u2, u3, u4 = estate.buildings[0].units
    m1, m2, m3 = (_queue(db, u, f"t:{u.id}") for u in (u1, u2, u3))
    fake_sms.invalid_numbers.add(u1.owners[0].phone)
    fake_sms.limited_numbers.add(u2.owners[0].phone)
    fake_sms.blacklisted.add(u3.owners[0].phone)
    sender = make_sender(wechat=False)
    assert outbox.send_pending(DAY, sender) == {"sent": 0, "failed": 2, "retry": 1}
    # a wrong number is final, recorded with the provider's code
    assert (m1.state, m1.attempts, m1.error_code) == ("failed", 1, "sms:InvalidParameterValue.IncorrectPhoneNumber")
    # the 30-second limit is transient: tried again after the backoff
    assert (m2.state, m2.error_code, m2.next_attempt_at) == (
        "pending", "sms:LimitExceeded.PhoneNumberThirtySecondLimit", DAY + timedelta(minutes=1))
    # an unsubscribed number (replied TD) fails and becomes an opt-out: the unit now has no channel
    assert (m3.state, m3.error_code) == ("failed", "sms:FailedOperation.PhoneNumberInBlacklist")
    assert reach.opt_outs_of(u3.owners[0].id) == ["sms"]
    assert db.session.execute(sa.select(NotifyOptOut.source)).scalar_one() == "operator"
    fake_sms.limited_numbers.clear()
    assert outbox.send_pending(DAY + timedelta(seconds=30), sender) == {"sent": 0, "failed": 0, "retry": 0}
    assert outbox.send_pending(DAY + timedelta(minutes=1), sender) == {"sent": 1, "failed": 0, "retry": 0}
    assert (m2.state, m2.attempts, m2.error_code) == ("sent", 2, "")
    assert _deliveries(db, m2)[0][2] == "sent"
    # wrong credentials: the whole request is refused (signature), nothing is sent, the message waits
    m4 = _queue(db, u4, "t:fourth")
    later = DAY + timedelta(hours=1)
    assert outbox.send_pending(later, make_sender(wechat=False, secret_key="wrong")) == {
        "sent": 0, "failed": 0, "retry": 1}
    assert m4.error_code == "sms:AuthFailure.SignatureFailure" and m4.next_attempt_at == later + timedelta(minutes=1)
    fake_sms.fail_next.append("RequestLimitExceeded")
    assert outbox.send_pending(later + timedelta(minutes=1), sender)["retry"] == 1
    assert m4.error_code == "sms:RequestLimitExceeded" and m4.next_attempt_at == later + timedelta(minutes=3)
    assert outbox.send_pending(later + timedelta(minutes=3), sender)["sent"] == 1
    assert len(fake_sms.sent) == 2


def test_transient_failures_back_off_then_fail_after_max_attempts(db, factory, fake_sms, make_sender):
    unit = _estate(factory, 1).buildings[0].units[0]
    msg = _queue(db, unit, "t:1")
    fake_sms.limited_numbers.add(unit.owners[0].phone)
    sender = make_sender(wechat=False)
    at, waits = DAY, []
    for _ in range(outbox.MAX_ATTEMPTS):
        outbox.send_pending(at, sender)
        if msg.next_attempt_at is not None:
            waits.append(msg.next_attempt_at - at)
            at = msg.next_attempt_at
    assert waits == [timedelta(minutes=m) for m in (1, 2, 4, 8)]
    assert (msg.state, msg.attempts, msg.next_attempt_at) == ("failed", outbox.MAX_ATTEMPTS, None)


def _bind(db, unit, openid, quota=10, fake=None):
    db.session.add(WechatBinding(openid=openid, unit_id=unit.id, owner_id=unit.owners[0].id, created_at=DAY))
    db.session.commit()
    if fake is not None:
        fake.subscribed[openid] = quota


def test_wechat_subscribe_message_first_token_cached_and_refreshed(db, factory, fake_sms, fake_wechat, make_sender,
                                                                   wechat_clock):
    estate = _estate(factory, 3)
    u1, u2, u3 = estate.buildings[0].units
    _bind(db, u1, "o-openid-1", fake=fake_wechat)
    _bind(db, u2, "o-openid-2", fake=fake_wechat)
    sender = make_sender()
    m1, m2, m3 = (_queue(db, u, f"t:{u.id}") for u in (u1, u2, u3))
    assert outbox.send_pending(DAY, sender) == {"sent": 3, "failed": 0, "retry": 0}
    assert [(m.channel) for m in (m1, m2, m3)] == ["wechat", "wechat", "sms"]  # 103 has no WeChat: SMS
    assert fake_wechat.tokens_issued == 1  # cached for the second message
    first = fake_wechat.sent[0]
    assert (first["touser"], first["template_id"], first["page"]) == (
        "o-openid-1", "TPL-notice", f"pages/home/index?unit={u1.id}")
    assert first["data"] == {"thing1": {"value": "表决提醒"},
                             "thing2": {"value": "【测试小区】“是否同意改造”将于 20…"}}
    assert _deliveries(db, m1) == [("wechat", "o-openid-1", "sent", "")]
    assert [s["phone"] for s in fake_sms.sent] == [u3.owners[0].phone]
    # WeChat invalidates the token (another server fetched one): 40001, fetched again, the message goes
    fake_wechat.invalidate_tokens()
    m4 = _queue(db, u1, "t:again")
    assert outbox.send_pending(DAY + timedelta(minutes=5), sender)["sent"] == 1
    assert (m4.channel, fake_wechat.tokens_issued) == ("wechat", 2)
    # the cached token expires (7200 s less the 300 s margin): a new one before sending
    wechat_clock.t += 7200 - 300
    m5 = _queue(db, u2, "t:expired")
    assert outbox.send_pending(DAY + timedelta(minutes=10), sender)["sent"] == 1
    assert (m5.channel, fake_wechat.tokens_issued) == ("wechat", 3)


def test_wechat_refused_falls_back_to_sms(db, factory, fake_sms, fake_wechat, make_sender):
    unit = _estate(factory, 1).buildings[0].units[0]
    _bind(db, unit, "o-no-quota", quota=0, fake=fake_wechat)  # the user never accepted (another) subscription
    msg = _queue(db, unit, "t:1")
    assert outbox.send_pending(DAY, make_sender())["sent"] == 1
    assert msg.channel == "sms"
    assert _deliveries(db, msg) == [("wechat", "o-no-quota", "failed", "wechat:43101"),
                                    ("sms", unit.owners[0].phone, "sent", "")]


def test_opt_out_and_no_channel_skip_the_message(db, factory, fake_sms, fake_wechat, make_sender):
    u1, u2 = _estate(factory, 2).buildings[0].units
    _bind(db, u2, "o-2", fake=fake_wechat)
    reach.opt_out(u1.owners[0].id, "sms", DAY)
    reach.opt_out(u2.owners[0].id, "all", DAY)
    m1, m2 = _queue(db, u1, "t:1"), _queue(db, u2, "t:2")
    assert outbox.send_pending(DAY, make_sender()) == {"sent": 0, "failed": 0, "retry": 0, "skipped": 2}
    assert [(m.state, m.error_code) for m in (m1, m2)] == [("skipped", "no_channel")] * 2
    assert fake_sms.sent == [] and fake_wechat.sent == []
    assert reach.opt_in(u1.owners[0].id, "sms") is True
    assert reach.reach_for_units([u1.id])[u1.id].phones == [(u1.owners[0].id, u1.owners[0].phone)]


def test_quiet_hours_hold_a_message_until_eight(db, factory, fake_sms, make_sender):
    unit = _estate(factory, 1).buildings[0].units[0]
    late = datetime(2026, 9, 1, 13, 30, tzinfo=UTC)  # 21:30 Beijing
    morning = datetime(2026, 9, 2, 0, 0, tzinfo=UTC)  # 08:00 Beijing next day
    msg = _queue(db, unit, "t:late", now=late)
    assert msg.next_attempt_at == morning
    sender = make_sender(wechat=False)
    assert outbox.send_pending(late, sender)["sent"] == 0
    assert outbox.send_pending(morning - timedelta(minutes=1), sender)["sent"] == 0
    # even a message due earlier waits: nothing goes out in quiet hours
    early = _queue(db, unit, "t:early", now=datetime(2026, 9, 1, 12, 0, tzinfo=UTC))  # 20:00 Beijing
    assert early.next_attempt_at is None
    assert outbox.send_pending(late, sender)["sent"] == 0
    assert outbox.send_pending(morning, sender)["sent"] == 2
    assert fake_sms.requests == 2


def test_daily_cap_per_unit_defers_to_the_next_morning(db, factory, fake_sms, make_sender, app, monkeypatch):
    monkeypatch.setitem(app.config, "NOTIFY_DAILY_CAP", 2)
    unit = _estate(factory, 1).buildings[0].units[0]
    msgs = [_queue(db, unit, f"t:{i}") for i in range(3)]
    sender = make_sender(wechat=False)
    assert outbox.send_pending(DAY, sender) == {"sent": 2, "failed": 0, "retry": 0, "deferred": 1}
    nxt = datetime(2026, 9, 2, 0, 0, tzinfo=UTC)
    assert (msgs[2].state, msgs[2].error_code, msgs[2].next_attempt_at, msgs[2].attempts) == (
        "pending", "daily_cap", nxt, 0)
    assert outbox.send_pending(nxt, sender)["sent"] == 1
    assert db.session.execute(sa.select(sa.func.count()).select_from(OutboxMessage).where(
        OutboxMessage.state == "sent")).scalar_one() == 3


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs, the open transaction is lost."""


def _killing_sender(make_sender, *, after_provider: bool):
    sender = make_sender(wechat=False)
    real = sender.deliver

    def deliver(message, now):
        if after_provider:
            real(message, now)
        raise Killed()

    sender.deliver = deliver
    return sender


@pytest.mark.parametrize("after_provider", [True, False])
def test_killed_sender_neither_loses_nor_repeats_a_message(db, factory, fake_sms, make_sender, after_provider):
    unit = _estate(factory, 1).buildings[0].units[0]
    msg = _queue(db, unit, "t:1")
    with pytest.raises(Killed):
        outbox.send_pending(DAY, _killing_sender(make_sender, after_provider=after_provider))
    db.session.rollback()  # the dead process's open transaction
    db.session.expire_all()
    # the claim survived: held for the lease, no other sender takes it meanwhile
    assert (msg.state, msg.error_code, msg.next_attempt_at) == ("pending", "in_flight", DAY + outbox.IN_FLIGHT_LEASE)
    sender = make_sender(wechat=False)
    assert outbox.send_pending(DAY + timedelta(minutes=1), sender) == {"sent": 0, "failed": 0, "retry": 0}
    counts = outbox.send_pending(DAY + outbox.IN_FLIGHT_LEASE, sender)
    assert (msg.state, msg.channel, msg.attempts) == ("sent", "sms", 2)
    assert len(fake_sms.sent) == 1  # sent once in both cases
    assert counts == ({"sent": 1, "failed": 0, "retry": 0, "reconciled": 1} if after_provider
                      else {"sent": 1, "failed": 0, "retry": 0})
    assert _deliveries(db, msg) == [("sms", unit.owners[0].phone, "sent", "")]


def test_channel_sender_from_settings(app, monkeypatch, fake_sms):
    from residents_app.notify.senders import ChannelSender

    monkeypatch.setitem(app.config, "OUTBOX_SENDER", "channels")
    with app.app_context(), pytest.raises(RuntimeError, match="needs WECHAT_APP_ID or TENCENT_SECRET_ID"):
        outbox.get_sender()
    for key, value in {"TENCENT_SECRET_ID": fake_sms.secret_id, "TENCENT_SECRET_KEY": fake_sms.secret_key,
                       "TENCENT_SMS_SDK_APP_ID": fake_sms.sdk_app_id, "TENCENT_SMS_BASE": fake_sms.url,
                       "TENCENT_SMS_TEMPLATE_ID": "2100001"}.items():
        monkeypatch.setitem(app.config, key, value)
    with app.app_context():
        sender = outbox.get_sender()
    assert isinstance(sender, ChannelSender) and sender.wechat is None
    assert (sender.sms.base_url, sender.sms.host, sender.sms_template_id) == (
        fake_sms.url, fake_sms.url.removeprefix("http://"), "2100001")


def test_killed_midway_through_a_chunk_reconciles_the_sent_and_sends_the_rest(db, factory, fake_sms, make_sender):
    """A chunk of 5 claimed at once; the sender dies after the provider accepted the third: after the lease the
    three are recorded from the provider's receipts and the other two sent, each message exactly once."""
    units = _estate(factory, 5).buildings[0].units
    msgs = [_queue(db, u, f"t:{u.id}") for u in units]
    sender = make_sender(wechat=False)
    real, calls = sender.deliver, []

    def deliver(message, now):
        calls.append(message.id)
        real(message, now)
        if len(calls) == 3:
            raise Killed()

    sender.deliver = deliver
    with pytest.raises(Killed):
        outbox.send_pending(DAY, sender)
    db.session.rollback()
    db.session.expire_all()
    assert len(fake_sms.sent) == 3
    # the whole chunk was claimed before the first call; nothing of its outcomes was committed
    assert [(m.state, m.error_code, m.attempts) for m in msgs] == [("pending", "in_flight", 1)] * 5
    assert db.session.execute(sa.select(sa.func.count()).select_from(OutboxDelivery)).scalar_one() == 0
    counts = outbox.send_pending(DAY + outbox.IN_FLIGHT_LEASE, make_sender(wechat=False))
    assert counts == {"sent": 5, "failed": 0, "retry": 0, "reconciled": 3}
    assert [(m.state, m.error_code, m.attempts) for m in msgs] == [("sent", "", 2)] * 5
    contexts = [s["session_context"] for s in fake_sms.sent]
    assert sorted(contexts) == sorted(f"outbox:{m.id}" for m in msgs) and len(contexts) == 5
    assert [len(_deliveries(db, m)) for m in msgs] == [1] * 5


def test_claims_and_outcomes_take_two_commits_per_chunk(db, factory, fake_sms, make_sender, monkeypatch):
    units = _estate(factory, 7).buildings[0].units
    msgs = [_queue(db, u, f"t:{u.id}") for u in units]
    monkeypatch.setattr(outbox, "CLAIM_CHUNK", 3)
    commits = []
    session = db.session()

    def count(_session):
        commits.append(1)

    sa.event.listen(session, "after_commit", count)
    try:
        counts = outbox.send_pending(DAY, make_sender(wechat=False))
    finally:
        sa.event.remove(session, "after_commit", count)
    assert counts == {"sent": 7, "failed": 0, "retry": 0}
    # the batch's lookups (1), then a claim and an outcome commit for each of the chunks of 3, 3 and 1
    assert len(commits) == 1 + 2 * 3
    assert [(m.state, m.attempts) for m in msgs] == [("sent", 1)] * 7
    assert len(fake_sms.sent) == 7


def test_a_chunk_that_runs_out_of_time_releases_its_unsent_messages(db, factory, fake_sms, make_sender,
                                                                   monkeypatch):
    """A slow provider: the claims must not outlive their lease, so once CHUNK_TIME_LIMIT_S has passed the unsent
    rest of the chunk is given back as it was (attempts, error code, due time) and the run stops."""
    units = _estate(factory, 3).buildings[0].units
    m1, m2, m3 = (_queue(db, u, f"t:{u.id}") for u in units)
    # m3 was refused once before (a transient limit): it keeps its error code and its attempt count
    m3.attempts, m3.error_code = 1, "sms:LimitExceeded.PhoneNumberThirtySecondLimit"
    db.session.commit()
    clock = [1000.0]
    monkeypatch.setattr(outbox.time, "monotonic", lambda: clock[0])
    sender = make_sender(wechat=False)
    real = sender.deliver

    def slow(message, now):
        clock[0] += outbox.CHUNK_TIME_LIMIT_S + 1
        return real(message, now)

    sender.deliver = slow
    assert outbox.send_pending(DAY, sender) == {"sent": 1, "failed": 0, "retry": 0}
    assert [(m.state, m.attempts, m.error_code, m.next_attempt_at) for m in (m1, m2, m3)] == [
        ("sent", 1, "", None), ("pending", 0, "", None),
        ("pending", 1, "sms:LimitExceeded.PhoneNumberThirtySecondLimit", None)]
    sender.deliver = real
    assert outbox.send_pending(DAY, sender) == {"sent": 2, "failed": 0, "retry": 0}
    assert [(m.state, m.attempts) for m in (m1, m2, m3)] == [("sent", 1), ("sent", 1), ("sent", 2)]
    assert len(fake_sms.sent) == 3


def test_a_wechat_delivery_is_committed_at_once_so_a_crash_resends_at_most_one(db, factory, fake_sms, fake_wechat,
                                                                               make_sender):
    """WeChat cannot be asked what it accepted: each WeChat delivery is committed before the next message, so a
    sender killed midway through a chunk resends only the one message it was recording (at-least-once)."""
    u1, u2, u3 = _estate(factory, 3).buildings[0].units
    for i, unit in enumerate((u1, u2, u3), 1):
        _bind(db, unit, f"o-{i}", fake=fake_wechat)
    m1, m2, m3 = (_queue(db, u, f"t:{u.id}") for u in (u1, u2, u3))
    sender = make_sender()
    real, calls = sender.deliver, []

    def deliver(message, now):
        calls.append(message.id)
        channel = real(message, now)
        if len(calls) == 2:
            raise Killed()
        return channel

    sender.deliver = deliver
    with pytest.raises(Killed):
        outbox.send_pending(DAY, sender)
    db.session.rollback()
    db.session.expire_all()
    assert [(m.state, m.error_code) for m in (m1, m2, m3)] == [
        ("sent", ""), ("pending", "in_flight"), ("pending", "in_flight")]
    assert _deliveries(db, m1) == [("wechat", "o-1", "sent", "")]
    counts = outbox.send_pending(DAY + outbox.IN_FLIGHT_LEASE, make_sender())
    assert counts == {"sent": 2, "failed": 0, "retry": 0}
    assert [(m.state, m.channel) for m in (m1, m2, m3)] == [("sent", "wechat")] * 3
    assert [s["touser"] for s in fake_wechat.sent] == ["o-1", "o-2", "o-2", "o-3"]
    assert fake_sms.sent == []
