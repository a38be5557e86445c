"""The reminders the scheduler sends on its own (issue 17 item 5), each a Chinese template with the entry link:
round opening, 48 h / 24 h before close, objection answered, pledge window closing, settlement due."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from residents_app.funding.models import Settlement, SettlementUnitLine
from residents_app.notify.models import OutboxMessage
from residents_app.notify.templates import TEMPLATES, render
from residents_app.plans.models import PlanVersion
from residents_app.publicity import services as pub_services
from residents_app.rounds import services as rounds
from residents_app.scheduler import jobs

OPENS = datetime(2026, 9, 1, 1, 0, tzinfo=UTC)  # 09:00 Beijing


def _msgs(db, like):
    return db.session.execute(sa.select(OutboxMessage).where(OutboxMessage.dedupe_key.like(like))
                              .order_by(OutboxMessage.unit_id)).scalars().all()


def test_every_template_renders_with_the_entry_link(app, monkeypatch):
    assert set(TEMPLATES) == {"round_opened", "round_closing_48h", "round_closing_24h", "publicity_posted",
                              "objection_answered", "pledge_window_closing", "settlement_due", "complaint_answered"}
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", "https://gaizao.example.cn/")
    with app.app_context():
        msg = render("complaint_answered", estate="幸福小区", unit="1幢-101", subject="夜间施工噪音",
                     answer="已要求施工单位 22:00 后停工" + "。" * 80)
    assert msg.title == "投诉已答复"
    assert msg.text == ("【幸福小区】您家（1幢-101）关于“夜间施工噪音”的投诉已有答复：已要求施工单位 22:00 后停工"
                        + "。" * 42 + "… 详情：https://gaizao.example.cn/r/home")


def test_opening_notice_48h_and_24h_reminders(db, factory):
    estate = factory.estate(buildings={"1幢": [("101", "100.00"), ("102", "80.00")]})
    closes = OPENS + timedelta(days=5)
    rnd = rounds.create_round(estate.id, rounds.RoundInput(kind="willingness", title="是否同意改造",
                                                           opens_at=OPENS, closes_at=closes), OPENS)
    db.session.commit()
    run = jobs.tick(OPENS)
    assert [a["kind"] for a in run.actions] == ["round_opened", "round_opening_notices_queued"]
    opened = _msgs(db, f"round:{rnd.id}:opened:%")
    assert [(m.title, m.text) for m in opened][0] == (
        "表决开始", f"【{estate.name}】“是否同意改造”已开始表决，截止时间 2026-09-06 09:00。"
                    "您家（1幢-101）可扫描本户二维码或在小程序中参与。")
    assert len(opened) == 2
    assert jobs.tick(OPENS + timedelta(hours=1)).actions == []
    # a round opened more than 12 hours before the scheduler sees it (an outage): no stale opening notice
    late = rounds.create_round(estate.id, rounds.RoundInput(kind="general", matter_item=7, title="是否更换门禁",
                                                            opens_at=OPENS, closes_at=closes), OPENS)
    rounds.open_round(late.id, OPENS, "a")
    db.session.commit()
    assert jobs.tick(OPENS + timedelta(hours=12, seconds=1)).actions == []
    assert _msgs(db, f"round:{late.id}:opened:%") == []


def test_a_round_closing_within_a_day_gets_no_two_days_left(db, factory):
    estate = factory.estate(buildings={"1幢": [("101", "100.00")]})
    closes = OPENS + timedelta(hours=20)
    rnd = rounds.create_round(estate.id, rounds.RoundInput(kind="general", matter_item=7, title="是否安装充电桩",
                                                           opens_at=OPENS, closes_at=closes), OPENS)
    db.session.commit()
    assert [a["kind"] for a in jobs.tick(OPENS).actions] == [
        "round_opened", "round_opening_notices_queued", "round_reminders_queued"]
    assert _msgs(db, f"round:{rnd.id}:closing48:%") == []
    assert len(_msgs(db, f"round:{rnd.id}:closing:%")) == 1


def test_objection_answered_is_told_once(db, factory):
    estate = factory.estate(buildings={"1幢": [("101", "100.00")]})
    now = datetime(2026, 11, 2, 2, tzinfo=UTC)
    pub = pub_services.post_publicity(estate, subject_type="hardship_list", subject_id=estate.id,
                                      title="困难群众名单公示", notice_text="n", posted_on=date(2026, 11, 2),
                                      actor="a", now=now)
    unit = estate.buildings[0].units[0]
    obj = pub_services.raise_objection(pub, unit=unit, owner=unit.owners[0], text="有误", photo=None, now=now)
    pub_services.mediate(obj, outcome="answered", notes="沟通", answer="经核实，名单无误", actor="a",
                         now=now + timedelta(hours=3))
    db.session.commit()
    run = jobs.tick(now + timedelta(hours=4))
    assert {"kind": "objection_answers_queued", "count": 1} in run.actions
    [msg] = _msgs(db, "objection:%")
    assert (msg.unit_id, msg.title, msg.text) == (
        unit.id, "异议已答复",
        f"【{estate.name}】您家（1幢-101）对“困难群众名单公示”提出的异议已有答复：经核实，名单无误")
    assert jobs.tick(now + timedelta(hours=5)).actions == []


def test_pledge_window_closing_and_settlement_due(db, factory):
    estate = factory.estate(buildings={"1幢": [("101", "100.00"), ("102", "80.00")]})
    u101, u102 = estate.buildings[0].units
    closes = datetime(2026, 11, 20, 16, 0, tzinfo=UTC)  # 21-11 00:00 Beijing
    plan = PlanVersion(estate_id=estate.id, number=1, title="综合改造方案", status="published",
                       pledge_opens_at=closes - timedelta(days=10), pledge_closes_at=closes)
    db.session.add(plan)
    db.session.flush()
    from residents_app.funding.models import Pledge

    db.session.add(Pledge(plan_version_id=plan.id, unit_id=u101.id, amount_fen=100,
                          signed_by_owner_id=u101.owners[0].id, signed_at=closes - timedelta(days=5)))
    db.session.commit()
    run = jobs.tick(closes - timedelta(hours=47))
    assert run.actions == [{"kind": "pledge_reminders_queued", "count": 1}]
    [msg] = _msgs(db, f"plan:{plan.id}:pledge_closing:%")
    assert (msg.unit_id, msg.text) == (
        u102.id,
        f"【{estate.name}】“综合改造方案”的出资承诺将于 2026-11-21 00:00 截止，您家（1幢-102）尚未签署承诺书，"
        "请及时签署。")
    # the settlement is final: 1幢-102 owes 123.45 yuan, 1幢-101 gets a refund (no message)
    final_at = closes + timedelta(days=60)
    settlement = Settlement(plan_version_id=plan.id, finalised_at=final_at)
    db.session.add(settlement)
    db.session.flush()
    db.session.add_all([
        SettlementUnitLine(settlement_id=settlement.id, unit_id=u101.id, planned_owed_fen=100, final_owed_fen=50,
                           paid_fen=100, difference_fen=-50),
        SettlementUnitLine(settlement_id=settlement.id, unit_id=u102.id, planned_owed_fen=0, final_owed_fen=12345,
                           paid_fen=0, difference_fen=12345)])
    db.session.commit()
    run = jobs.tick(final_at + timedelta(hours=1))
    assert {"kind": "settlement_notices_queued", "count": 1} in run.actions
    [due] = _msgs(db, f"settlement:{settlement.id}:due:%")
    assert (due.unit_id, due.title, due.text) == (
        u102.id, "决算补缴通知",
        f"【{estate.name}】“综合改造方案”已完成决算，您家（1幢-102）应补缴 123.45 元，请按通知缴入专用账户。")
    assert jobs.tick(final_at + timedelta(hours=2)).actions == []
