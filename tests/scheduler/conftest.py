"""A three-day outage scenario shared by the in-process and the two-process tests.

T0 = Mon 2026-11-09 10:00 Beijing: the last time the scheduler ran. It comes back at T0 + 3 days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

T0 = datetime(2026, 11, 9, 2, 0, tzinfo=UTC)
BACK = T0 + timedelta(days=3)  # Thu 2026-11-12 10:00 Beijing


@dataclass
class Scenario:
    estate_id: int
    r_late: int  # open, closes T0 + 2 days (created first)
    r_early: int  # open, closes T0 + 1 day
    r_draft: int  # draft, opens T0 + 2 days, closes T0 + 10 days
    p_late: int  # posted Tue 11/3 -> ends 11/10 24:00 (created first)
    p_early: int  # posted Mon 11/2 -> ends 11/9 24:00
    p_current: int  # posted Mon 11/9 -> ends 11/16 24:00
    unit_count: int


def build_outage_scenario(factory) -> Scenario:
    from residents_app.publicity import services as pub
    from residents_app.rounds import services as rounds

    estate = factory.estate(buildings={"1幢": [("101", "100.00"), ("102", "100.00"), ("103", "100.00")],
                                       "2幢": [("201", "60.00"), ("202", "40.00")]})

    def make_round(title, opens_at, closes_at, open_it):
        rnd = rounds.create_round(estate.id, rounds.RoundInput(kind="willingness", title=title, opens_at=opens_at,
                                                               closes_at=closes_at), T0 - timedelta(days=1))
        if open_it:
            assert rounds.open_round(rnd.id, T0, "system:test") is True
        return rnd.id

    r_late = make_round("后截止", T0 - timedelta(hours=1), T0 + timedelta(days=2), True)
    r_early = make_round("先截止", T0 - timedelta(hours=1), T0 + timedelta(days=1), True)
    r_draft = make_round("停机期间开始", T0 + timedelta(days=2), T0 + timedelta(days=10), False)

    def make_pub(kind, subject_id, posted_on):
        return pub.post_publicity(estate, subject_type=kind, subject_id=subject_id, title=f"公示{posted_on}",
                                  notice_text="公示内容", posted_on=posted_on, working_days=5, actor="system:test",
                                  now=T0, backdate_reason="停机期间已在公告栏张贴，补录").id

    from residents_app.plans.models import PlanVersion

    plans = []
    for n in (1, 2):
        plan = PlanVersion(estate_id=estate.id, number=n, title=f"方案{n}", status="published")
        factory.db.session.add(plan)
        factory.db.session.flush()
        plans.append(plan.id)
    p_late = make_pub("plan_version", plans[0], date(2026, 11, 3))
    p_early = make_pub("plan_version", plans[1], date(2026, 11, 2))
    p_current = make_pub("hardship_list", estate.id, date(2026, 11, 9))
    factory.db.session.commit()
    return Scenario(estate.id, r_late, r_early, r_draft, p_late, p_early, p_current, 5)
