"""Publicity services with the time passed in: periods, documents, objections, mediation, status."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from residents_app.audit.models import AuditEvent
from residents_app.errors import Conflict, DomainError, NotFound, ValidationFailed
from residents_app.publicity import holidays, services
from residents_app.publicity.models import Publicity

from .conftest import PDF, PNG, POSTED_NOW, post_hardship


def events(db, kind):
    return db.session.execute(sa.select(AuditEvent).where(AuditEvent.kind == kind).order_by(AuditEvent.id)
                              ).scalars().all()


def test_post_computes_the_period_and_snapshots_unit_numbers(db, estate):
    pub = post_hardship(estate)
    assert pub.last_day == date(2026, 10, 12)
    assert pub.ends_at == datetime(2026, 10, 12, 16, 0, tzinfo=UTC)
    assert pub.status == "posted"
    assert pub.unit_list_title == "困难群众房号名单"
    assert pub.unit_labels == ["1幢-102", "2幢-1001"]
    assert services.period_text(pub) == "公示期：2026-09-30 至 2026-10-12（5个工作日）"
    ev = events(db, "publicity.posted")
    assert len(ev) == 1 and ev[0].chain == estate.id and ev[0].data["last_day"] == "2026-10-12"


def test_unit_labels_sort_numerically(db, estate):
    # "2幢-1001" must come after "2幢-201" when both are listed
    units = {u.label: u for b in estate.buildings for u in b.units}
    units["2幢-201"].is_hardship = True
    db.session.flush()
    pub = post_hardship(estate)
    assert pub.unit_labels == ["1幢-102", "2幢-201", "2幢-1001"]


def test_a_2027_period_is_refused_then_works_after_the_admin_enters_2027(db, estate):
    with pytest.raises(DomainError) as err:
        post_hardship(estate, posted_on=date(2026, 12, 31), now=datetime(2026, 12, 30, 2, tzinfo=UTC))
    assert err.value.code == "calendar_not_covered" and err.value.status == 409
    assert "2027 年" in err.value.message and "/admin/calendar" in err.value.message
    assert db.session.execute(sa.select(sa.func.count()).select_from(Publicity)).scalar_one() == 0
    now = datetime(2026, 12, 1, 2, tzinfo=UTC)
    with pytest.raises(Conflict, match="还没有录入任何"):
        holidays.declare_year(2027, actor="user:1:admin", now=now)
    holidays.set_override(date(2027, 1, 1), False, "元旦", actor="user:1:admin", now=now)
    # Entered but not declared complete: still refused.
    with pytest.raises(DomainError, match="2027"):
        post_hardship(estate, posted_on=date(2026, 12, 31), now=datetime(2026, 12, 30, 2, tzinfo=UTC))
    holidays.declare_year(2027, actor="user:1:admin", now=now)
    pub = post_hardship(estate, posted_on=date(2026, 12, 31), now=datetime(2026, 12, 30, 2, tzinfo=UTC))
    assert pub.last_day == date(2027, 1, 8)  # 1/1 holiday, weekend, 1/4 .. 1/8
    assert [e.data["year"] for e in events(db, "calendar.year_declared")] == [2027]


def test_validation_messages_name_the_field(db, estate):
    with pytest.raises(ValidationFailed) as err:
        services.post_publicity(estate, subject_type="hardship_list", subject_id=estate.id, title="",
                                notice_text="", posted_on=date(2026, 9, 29), working_days=5, actor="a",
                                now=POSTED_NOW)
    assert set(err.value.errors) == {"title", "notice_text"}
    with pytest.raises(ValidationFailed) as err:
        post_hardship(estate, working_days=0)
    assert err.value.errors == {"working_days": "0"} and "1 至 60" in err.value.message
    with pytest.raises(ValidationFailed) as err:
        post_hardship(estate, posted_on=date(2026, 9, 21))  # 8 days before today
    assert "posted_on" in err.value.errors
    # 7 days: allowed, with the reason a past posting day needs (issue 13 item 8)
    assert post_hardship(estate, posted_on=date(2026, 9, 22), backdate_reason="补录").posted_on == date(2026, 9, 22)


def test_one_active_publicity_per_subject(db, estate):
    first = post_hardship(estate)
    with pytest.raises(Conflict) as err:
        post_hardship(estate)
    assert err.value.code == "publicity_exists" and f"#{first.id}" in err.value.message


def test_subjects_of_another_estate_are_refused(db, estate, factory):
    from residents_app.plans.models import PlanVersion

    other = factory.estate(buildings={"1幢": [("101", "50.00")]})
    plan = PlanVersion(estate_id=other.id, number=1, title="方案", status="published")
    db.session.add(plan)
    db.session.flush()
    with pytest.raises(ValidationFailed) as err:
        services.post_publicity(estate, subject_type="plan_version", subject_id=plan.id, title="t",
                                notice_text="n", posted_on=date(2026, 9, 29), actor="a", now=POSTED_NOW)
    assert err.value.errors == {"subject_id": str(plan.id)}
    with pytest.raises(ValidationFailed):
        services.post_publicity(estate, subject_type="hardship_list", subject_id=other.id, title="t",
                                notice_text="n", posted_on=date(2026, 9, 29), actor="a", now=POSTED_NOW)
    with pytest.raises(ValidationFailed) as err:
        services.post_publicity(estate, subject_type="bogus", subject_id=1, title="t",
                                notice_text="n", posted_on=date(2026, 9, 29), actor="a", now=POSTED_NOW)
    assert "subject_type" in err.value.errors


def test_plan_version_subject(db, estate):
    from residents_app.plans.models import PlanVersion

    plan = PlanVersion(estate_id=estate.id, number=2, title="屋面与管网改造", status="draft")
    db.session.add(plan)
    db.session.flush()
    with pytest.raises(Conflict, match="尚未发布"):
        services.post_publicity(estate, subject_type="plan_version", subject_id=plan.id, title="方案公示",
                                notice_text="n", posted_on=date(2026, 9, 29), actor="a", now=POSTED_NOW)
    plan.status = "published"
    pub = services.post_publicity(estate, subject_type="plan_version", subject_id=plan.id, title="方案公示",
                                  notice_text="n", posted_on=date(2026, 9, 29), actor="a", now=POSTED_NOW)
    assert pub.outcome_lines == ["改造方案第 2 版：屋面与管网改造"] and pub.unit_labels == []


def test_documents_are_checked_by_content(db, estate):
    pub = post_hardship(estate)
    doc = services.add_document(pub, "../../名单.pdf", PDF, actor="a", now=POSTED_NOW)
    assert (doc.filename, doc.content_type, doc.size_bytes) == ("名单.pdf", "application/pdf", len(PDF))
    with pytest.raises(ValidationFailed, match="不是 PDF、PNG 或 JPEG"):
        services.add_document(pub, "virus.pdf", b"MZ\x90\x00", actor="a", now=POSTED_NOW)
    with pytest.raises(ValidationFailed, match="超过 10 MB"):
        services.add_document(pub, "big.pdf", b"%PDF-" + b"0" * (10 * 1024 * 1024), actor="a", now=POSTED_NOW)
    assert services.add_document(pub, "照片.png", PNG, actor="a", now=POSTED_NOW).content_type == "image/png"


def test_objection_window_and_completion_rules(db, estate, units):
    pub = post_hardship(estate)
    unit = units["1幢-101"]
    owner = unit.owners[0]
    # Before the posting day: not started. 2026-09-28 23:59 Beijing
    with pytest.raises(Conflict, match="尚未开始"):
        services.raise_objection(pub, unit=unit, owner=owner, text="x",
                                 photo=None, now=datetime(2026, 9, 28, 15, 59, tzinfo=UTC))
    last_second = datetime(2026, 10, 12, 15, 59, 59, tzinfo=UTC)  # 23:59:59 Beijing on the last day
    obj = services.raise_objection(pub, unit=unit, owner=owner, text="名单漏了 1幢-103", photo=PNG, now=last_second)
    assert obj.status == "open" and obj.photo_type == "image/png"
    with pytest.raises(Conflict, match="已结束"):
        services.raise_objection(pub, unit=unit, owner=owner, text="晚了",
                                 photo=None, now=datetime(2026, 10, 12, 16, 0, tzinfo=UTC))
    after = datetime(2026, 10, 13, 1, 0, tzinfo=UTC)
    assert pub.reasons_not_complete(after) == ["还有 1 条异议尚未处理（须先协商调解并记录结果）"]
    assert pub.reasons_not_complete(last_second) == [
        "公示期尚未届满（截至 2026-10-12 24:00）", "还有 1 条异议尚未处理（须先协商调解并记录结果）"]
    with pytest.raises(Conflict) as err:
        services.complete_publicity(pub, actor="a", now=after)
    assert err.value.code == "publicity_not_completable"
    services.mediate(obj, outcome="answered", notes="电话沟通", answer="1幢-103 未申请，经核实不符合条件",
                     actor="user:1:c", now=after)
    assert pub.reasons_not_complete(after) == []
    services.complete_publicity(pub, actor="user:1:c", now=after)
    assert pub.status == "completed" and pub.completed_at == after
    assert [e.kind for e in events(db, "objection.raised")] == ["objection.raised"]
    assert events(db, "objection.mediated")[0].data["outcome"] == "answered"
    assert len(events(db, "publicity.completed")) == 1


def test_objection_input_is_validated(db, estate, units, factory):
    pub = post_hardship(estate)
    unit = units["1幢-101"]
    with pytest.raises(ValidationFailed, match="请写明异议内容"):
        services.raise_objection(pub, unit=unit, owner=unit.owners[0], text="  ", photo=None, now=POSTED_NOW)
    with pytest.raises(ValidationFailed, match="5000"):
        services.raise_objection(pub, unit=unit, owner=unit.owners[0], text="字" * 5001, photo=None, now=POSTED_NOW)
    with pytest.raises(ValidationFailed, match="JPEG 或 PNG"):
        services.raise_objection(pub, unit=unit, owner=unit.owners[0], text="x", photo=PDF, now=POSTED_NOW)
    other = factory.estate(buildings={"1幢": [("101", "50.00")]})
    ou = other.buildings[0].units[0]
    with pytest.raises(NotFound):
        services.raise_objection(pub, unit=ou, owner=ou.owners[0], text="x", photo=None, now=POSTED_NOW)


def test_mediation_rules(db, estate, units):
    pub = post_hardship(estate)
    unit = units["1幢-101"]
    obj = services.raise_objection(pub, unit=unit, owner=unit.owners[0], text="x", photo=None, now=POSTED_NOW)
    with pytest.raises(ValidationFailed) as err:
        services.mediate(obj, outcome="answered", notes="", answer="", actor="a", now=POSTED_NOW)
    assert set(err.value.errors) == {"notes", "answer"}
    with pytest.raises(ValidationFailed) as err:
        services.mediate(obj, outcome="answered", notes="n", answer="a", action="extend", extra_days=2,
                         reason="r", actor="a", now=POSTED_NOW)
    assert err.value.errors == {"action": "只有异议成立时才能延长或重新公示"}
    with pytest.raises(ValidationFailed, match="理由"):
        services.mediate(obj, outcome="upheld", notes="n", action="extend", extra_days=2, reason="",
                         actor="a", now=POSTED_NOW)
    assert obj.status == "open"


def test_upheld_objection_extends_by_working_days(db, estate, units):
    pub = post_hardship(estate)
    unit = units["1幢-101"]
    obj = services.raise_objection(pub, unit=unit, owner=unit.owners[0], text="漏报", photo=None, now=POSTED_NOW)
    at = datetime(2026, 10, 9, 2, tzinfo=UTC)
    services.mediate(obj, outcome="upheld", notes="核实属实，补充名单", action="extend", extra_days=3,
                     reason="补充 1幢-103 后延长公示", actor="user:1:c", now=at)
    # from 10/12: 10/13, 10/14, 10/15
    assert (pub.status, pub.last_day) == ("extended", date(2026, 10, 15))
    assert pub.ends_at == datetime(2026, 10, 15, 16, 0, tzinfo=UTC)
    ch = pub.changes[0]
    assert (ch.kind, ch.old_last_day, ch.new_last_day, ch.objection_id, ch.extra_working_days) == (
        "extend", date(2026, 10, 12), date(2026, 10, 15), obj.id, 3)
    assert services.period_text(pub) == "公示期：2026-09-30 至 2026-10-15（5个工作日，另延长3个工作日）"
    assert events(db, "publicity.extended")[0].data["reason"] == "补充 1幢-103 后延长公示"


def test_upheld_objection_restarts_from_today(db, estate, units):
    pub = post_hardship(estate)
    unit = units["1幢-101"]
    obj = services.raise_objection(pub, unit=unit, owner=unit.owners[0], text="名单有误", photo=None, now=POSTED_NOW)
    at = datetime(2026, 10, 9, 2, tzinfo=UTC)  # Fri 10/9 Beijing
    services.mediate(obj, outcome="upheld", notes="名单重做", action="restart", reason="名单更正后重新公示",
                     actor="user:1:c", now=at)
    # posted 10/9 (does not count): 10/10 (make-up Sat), 10/12, 10/13, 10/14, 10/15
    assert (pub.posted_on, pub.last_day) == (date(2026, 10, 9), date(2026, 10, 15))
    assert pub.changes[0].kind == "restart" and pub.changes[0].old_posted_on == date(2026, 9, 29)
    assert services.period_text(pub) == "公示期：2026-10-10 至 2026-10-15（5个工作日）"


def test_resident_can_withdraw_only_their_own(db, estate, units):
    pub = post_hardship(estate)
    mine, theirs = units["1幢-101"], units["1幢-102"]
    obj = services.raise_objection(pub, unit=mine, owner=mine.owners[0], text="x", photo=None, now=POSTED_NOW)
    with pytest.raises(NotFound):
        services.withdraw_own_objection(obj, unit=theirs, owner=theirs.owners[0], now=POSTED_NOW)
    services.withdraw_own_objection(obj, unit=mine, owner=mine.owners[0], now=POSTED_NOW)
    assert obj.status == "withdrawn"
    with pytest.raises(Conflict, match="已处理"):
        services.withdraw_own_objection(obj, unit=mine, owner=mine.owners[0], now=POSTED_NOW)


def test_publicity_status_for_the_plans_feature(db, estate, units):
    assert services.publicity_status("hardship_list", estate.id, POSTED_NOW) == {
        "posted": False, "ended": False, "open_objections": 0,
        "reasons_not_complete": ["该困难群众名单尚未公示"], "publicity_id": None}
    pub = post_hardship(estate)
    unit = units["1幢-101"]
    services.raise_objection(pub, unit=unit, owner=unit.owners[0], text="x", photo=None, now=POSTED_NOW)
    st = services.publicity_status("hardship_list", estate.id, POSTED_NOW)
    assert st == {"posted": True, "ended": False, "open_objections": 1, "publicity_id": pub.id,
                  "reasons_not_complete": ["公示期尚未届满（截至 2026-10-12 24:00）",
                                           "还有 1 条异议尚未处理（须先协商调解并记录结果）"]}
    services.mediate(pub.objections[0], outcome="withdrawn", notes="当面沟通后撤回", actor="a", now=POSTED_NOW)
    end = datetime(2026, 10, 12, 16, 0, tzinfo=UTC)
    assert services.publicity_status("hardship_list", estate.id, end)["reasons_not_complete"] == [
        "公示期已届满，等待系统结束公示（每分钟自动处理）"]
    assert services.end_publicity_if_due(pub.id, end) is True
    assert services.publicity_status("hardship_list", estate.id, end) == {
        "posted": True, "ended": True, "open_objections": 0, "reasons_not_complete": [], "publicity_id": pub.id}


def test_calendar_import_file(db):
    now = datetime(2026, 11, 23, 2, tzinfo=UTC)
    with pytest.raises(ValidationFailed) as err:
        holidays.parse_year_file(2027, "2027-01-01,休,元旦\n2026-12-31,休\n2027-02-30,休\n2027-02-20,上\n")
    assert err.value.errors == {"第2行": "日期 2026-12-31 不在 2027 年",
                                "第3行": "日期“2027-02-30”无效，应为 YYYY-MM-DD",
                                "第4行": "“上”无效，应为 休 或 班"}
    n = holidays.import_year(2027, "# 2027\n2027-01-01,休,元旦\n2027-02-20,班,春节调休\n", actor="cli", now=now)
    assert n == 2
    info = holidays.calendar_overview(now)
    assert info["next_year"] == 2027 and info["next_year_missing"] is False
    assert [(y.year, y.source, y.override_count) for y in info["years"]][-2:] == [(2026, "package", 0),
                                                                                   (2027, "admin", 2)]


def test_round_result_lists_agreeing_unit_numbers_only(db, estate, units):
    from datetime import timedelta

    from residents_app.rounds import ballots
    from residents_app.rounds import services as rounds

    opens = datetime(2026, 9, 20, 2, tzinfo=UTC)
    closes = datetime(2026, 9, 28, 2, tzinfo=UTC)
    rnd = rounds.create_round(estate.id, rounds.RoundInput(kind="willingness", title="是否同意改造",
                                                           opens_at=opens, closes_at=closes), opens)
    assert rounds.open_round(rnd.id, opens, "a") is True
    for label in ("2幢-1001", "1幢-101", "1幢-103", "2幢-201"):
        u = units[label]
        ballots.cast_ballot(rnd.id, u.id, u.owners[0].id, "agree", opens + timedelta(hours=1))
    u = units["1幢-102"]
    ballots.cast_ballot(rnd.id, u.id, u.owners[0].id, "disagree", opens + timedelta(hours=1))
    with pytest.raises(Conflict, match="尚未结束"):
        services.post_publicity(estate, subject_type="round_result", subject_id=rnd.id, title="表决结果公示",
                                notice_text="n", posted_on=date(2026, 9, 29), actor="a", now=POSTED_NOW)
    assert rounds.close_round(rnd.id, closes, "a") is True
    with pytest.raises(ValidationFailed, match="不少于 5 个工作日") as err:
        services.post_publicity(estate, subject_type="round_result", subject_id=rnd.id, title="表决结果公示",
                                notice_text="n", posted_on=date(2026, 9, 29), working_days=4, actor="a",
                                now=POSTED_NOW)
    assert err.value.errors == {"working_days": "4"}
    pub = services.post_publicity(estate, subject_type="round_result", subject_id=rnd.id, title="表决结果公示",
                                  notice_text="经统计，本次征求结果如下。", posted_on=date(2026, 9, 29), actor="a",
                                  now=POSTED_NOW)
    assert pub.unit_list_title == "同意改造居民房号汇总表"
    assert pub.unit_labels == ["1幢-101", "1幢-103", "2幢-201", "2幢-1001"]  # natural order of numbers
    assert pub.outcome_lines[0] == "是否同意改造：表决结果 通过"
    # 4 of 5 households; 90 + 70 + 60 + 50 = 270.00 of 350.00 m²
    assert pub.outcome_lines[1] == ("同意 4 户 / 共 5 户；同意户的产权面积 270.00 m² / 总面积 350.00 m²；"
                                    "参与表决 5 户")
    names = {o.name for u in units.values() for o in u.owners}
    phones = {o.phone for u in units.values() for o in u.owners}
    text = " ".join(pub.unit_labels + pub.outcome_lines)
    assert not any(n in text for n in names) and not any(p in text for p in phones)
