"""The demo plan: every category, one building-only item, pledges and payments; loading twice adds nothing."""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa

from residents_app.funding import demo
from residents_app.funding import services as funding_svc
from residents_app.funding.models import Payment
from residents_app.plans import services as plan_svc
from residents_app.plans.models import PlanVersion


def test_extend_demo_builds_a_published_plan_once(factory, db, now):
    buildings = {f"{b}幢": [(f"{f}0{n}", f"{80 + n}.{f}0") for f in range(1, 4) for n in range(1, 5)]
                 for b in range(1, 5)}
    estate = factory.estate(buildings=buildings)
    factory.user("committee", estate=estate)
    hardship = estate.buildings[1].units[1]
    hardship.is_hardship = True
    lines = demo.extend_demo(estate, now)
    plan = plan_svc.current_plan(estate.id)
    assert plan.status == "published"
    assert sorted({i.category for i in plan.items}) == ["basic", "improvement", "required", "upgrade"]
    assert [i.scope_label for i in plan.items if i.scope == "buildings"] == ["3幢"]
    c = funding_svc.compute_plan(plan)
    assert c.units[hardship.id].owed_fen == 0 and c.units[hardship.id].covered_by == "街道"
    assert len(funding_svc.pledges_of(plan)) == 40
    payments = db.session.execute(sa.select(Payment).order_by(Payment.id)).scalars().all()
    regular = [p for p in payments if p.reference.startswith("DEMO-0")]
    assert len(regular) == 25 and all(p.amount_fen == c.units[p.unit_id].owed_fen for p in regular)
    wrong, reversal = payments[-2:]
    assert (wrong.amount_fen, reversal.amount_fen, reversal.reverses_id) == (1_000_000, -1_000_000, wrong.id)
    summary = funding_svc.funding_summary(estate.id)
    assert summary["counted_fen"] == sum(p.amount_fen for p in regular) == summary["paid_fen"]
    assert sum(c.units[u.id].owed_fen for u in funding_svc.estate_units(estate.id)) == c.owed_total_fen
    assert lines[0].startswith("演示改造方案第 1 版已发布：5 个项目")
    assert demo.extend_demo(estate, now) == ["演示改造方案已存在，未改动"]
    assert db.session.execute(sa.select(sa.func.count()).select_from(PlanVersion)
                              .where(PlanVersion.estate_id == estate.id)).scalar() == 1
    assert sum(u.title_area_m2 for u in funding_svc.estate_units(estate.id)) == c.estate_area_m2 > Decimal(0)
