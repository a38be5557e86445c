"""No backdating (issue 13 item 8): a round result is not posted before the day it exists (the round's close,
Beijing time); a posting day before today needs a reason, which is stored and flagged on the verification desk."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from residents_app.errors import ValidationFailed
from residents_app.publicity import services

# The window ends 2026-09-08 15:30 UTC (23:30 Beijing); the closing job runs 2026-09-08 16:10 UTC, which is
# already 2026-09-09 00:10 in Beijing: the result exists from 2026-09-09, though the UTC date is still the 8th.
OPENS = datetime(2026, 9, 1, 2, 0, tzinfo=UTC)
CLOSES = datetime(2026, 9, 8, 15, 30, tzinfo=UTC)
CLOSED = datetime(2026, 9, 8, 16, 10, tzinfo=UTC)
SEP_9_10AM = datetime(2026, 9, 9, 2, 0, tzinfo=UTC)
SEP_11_10AM = datetime(2026, 9, 11, 2, 0, tzinfo=UTC)


@pytest.fixture
def closed_round(db, estate, units):
    from residents_app.rounds import ballots
    from residents_app.rounds import services as rounds

    rnd = rounds.create_round(estate.id, rounds.RoundInput(kind="willingness", title="改造意愿征求", opens_at=OPENS,
                                                           closes_at=CLOSES), OPENS)
    rounds.open_round(rnd.id, OPENS)
    unit = units["1幢-101"]
    ballots.cast_ballot(rnd.id, unit.id, unit.owners[0].id, "agree", OPENS)
    assert rounds.close_round(rnd.id, CLOSED)
    db.session.commit()
    return rnd


def post_result(estate, rnd, *, posted_on, now, reason=""):
    return services.post_publicity(estate, subject_type="round_result", subject_id=rnd.id, title="意愿征求结果公示",
                                   notice_text="经统计，结果如下。", posted_on=posted_on, working_days=5,
                                   actor="user:1:c", now=now, backdate_reason=reason)


def test_result_cannot_be_posted_before_the_beijing_close_day(db, estate, closed_round):
    with pytest.raises(ValidationFailed) as err:
        post_result(estate, closed_round, posted_on=date(2026, 9, 8), now=SEP_9_10AM, reason="前一天已张贴")
    assert err.value.code == "posted_before_result"
    assert err.value.message == "表决「改造意愿征求」的结果于 2026-09-09 产生，公示张贴日期 2026-09-08 不能早于该日"
    assert err.value.errors == {"posted_on": err.value.message}
    pub = post_result(estate, closed_round, posted_on=date(2026, 9, 9), now=SEP_9_10AM)
    assert (pub.posted_on, pub.backdate_reason, pub.is_backdated) == (date(2026, 9, 9), "", False)
    # posted Wed 9/9: 9/10, 9/11, 9/14, 9/15, 9/16
    assert pub.last_day == date(2026, 9, 16)


def test_a_past_posting_day_needs_a_reason_and_is_flagged(db, estate, closed_round):
    from residents_app.oversight.round_facts import round_flags

    with pytest.raises(ValidationFailed) as err:
        post_result(estate, closed_round, posted_on=date(2026, 9, 9), now=SEP_11_10AM)
    assert err.value.code == "backdate_reason_required"
    assert err.value.message == "张贴日期 2026-09-09 早于今天（2026-09-11），补录公示须写明理由"
    assert err.value.errors == {"backdate_reason": err.value.message}
    with pytest.raises(ValidationFailed):
        post_result(estate, closed_round, posted_on=date(2026, 9, 9), now=SEP_11_10AM, reason="   ")
    assert {f.kind for f in round_flags(closed_round)} == set()

    pub = post_result(estate, closed_round, posted_on=date(2026, 9, 9), now=SEP_11_10AM,
                      reason=" 9月9日已在小区公告栏张贴，系统录入延后 ")
    assert (pub.backdate_reason, pub.is_backdated) == ("9月9日已在小区公告栏张贴，系统录入延后", True)
    flags = [f for f in round_flags(closed_round) if f.kind == "backdated_publicity"]
    assert [(f.title, f.detail) for f in flags] == [(
        "结果公示补录（张贴日期早于录入日期）",
        "公示「意愿征求结果公示」张贴日期 2026-09-09，2026-09-11 10:00 录入，"
        "补录理由：9月9日已在小区公告栏张贴，系统录入延后")]
    from residents_app.audit.models import AuditEvent, AuditPending

    rows = [e.data for m in (AuditEvent, AuditPending) for e in db.session.query(m).filter_by(kind="publicity.posted")]
    assert [r["backdate_reason"] for r in rows] == ["9月9日已在小区公告栏张贴，系统录入延后"]


def test_posting_today_or_later_needs_no_reason(db, estate, closed_round):
    pub = post_result(estate, closed_round, posted_on=date(2026, 9, 14), now=SEP_11_10AM)
    assert (pub.backdate_reason, pub.is_backdated) == ("", False)


def test_backdated_hardship_list_needs_a_reason_too(db, estate):
    from tests.publicity.conftest import POSTED_NOW

    with pytest.raises(ValidationFailed) as err:
        services.post_publicity(estate, subject_type="hardship_list", subject_id=estate.id, title="名单",
                                notice_text="n", posted_on=date(2026, 9, 28), actor="a", now=POSTED_NOW)
    assert err.value.message == "张贴日期 2026-09-28 早于今天（2026-09-29），补录公示须写明理由"


def test_desk_page_and_publicity_page_show_the_backdating(client, login_as, factory, db, estate, closed_round):
    pub = post_result(estate, closed_round, posted_on=date(2026, 9, 9), now=SEP_11_10AM, reason="录入延后")
    street = factory.user("street", office=estate.street_office)
    committee = factory.user("committee", estate=estate)
    db.session.commit()
    login_as(client, street)
    page = client.get(f"/rounds/{closed_round.id}/verify").get_data(as_text=True)
    assert "结果公示补录（张贴日期早于录入日期）" in page
    assert "补录理由：录入延后" in page
    login_as(client, committee)
    page = client.get(f"/publicity/{pub.id}").get_data(as_text=True)
    assert "补录：2026-09-11 10:00 录入，张贴日期早于录入日期；理由：录入延后" in page


def test_form_passes_the_reason(client, login_as, factory, db, estate, closed_round, clock):
    committee = factory.user("committee", estate=estate)
    db.session.commit()
    login_as(client, committee)
    clock.set(SEP_11_10AM)
    form = {"subject": f"round_result:{closed_round.id}", "title": "结果公示", "notice_text": "内容",
            "posted_on": "2026-09-09", "working_days": "5"}
    resp = client.post(f"/estates/{estate.id}/publicity", data=form)
    assert resp.status_code == 422
    resp = client.post(f"/estates/{estate.id}/publicity", data={**form, "backdate_reason": "录入延后"})
    assert resp.status_code == 302
