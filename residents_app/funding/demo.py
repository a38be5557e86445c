"""Demo data of plans and money, added to the demo estate by `flask demo load` (safe to run twice)."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

# name, category, cost in fen, building name (None = whole estate)
DEMO_ITEMS = (
    ("雨污分流管网改造", "required", 98_000_000, None),
    ("外墙立面整治", "basic", 126_000_000, None),
    ("屋面防水", "basic", 42_000_000, None),
    ("停车位与充电桩", "improvement", 36_000_000, None),
    ("3幢加装电梯", "upgrade", 68_000_000, "3幢"),
)
PLEDGED_UNITS = 40
PAID_UNITS = 25


def extend_demo(estate, now) -> list[str]:
    """A published plan with items of every category (one for a single building), hardship
    treatment, pledges from 40 units and payments from 25 (one corrected by a reversing entry)."""
    from residents_app.auth.models import User
    from residents_app.core.calendar import beijing_date
    from residents_app.extensions import db
    from residents_app.formatting import format_yuan
    from residents_app.funding import services
    from residents_app.plans import services as plan_svc
    from residents_app.plans.models import PlanVersion

    if db.session.execute(sa.select(PlanVersion.id).where(PlanVersion.estate_id == estate.id)).first():
        return ["演示改造方案已存在，未改动"]
    committee = db.session.execute(
        sa.select(User).where(User.estate_id == estate.id, User.role == "committee").order_by(User.id)
    ).scalars().first()
    if committee is None:
        return ["演示改造方案未创建：没有业委会账户"]
    buildings = {b.name: b for b in estate.buildings}
    plan = plan_svc.create_plan(
        estate, title="示范小区综合改造方案", user=committee, now=now,
        budget_summary="工程总预算 370 万元，含设计、监理与审计费用，以审计决算为准。",
        funding_plan="政府补助按每平方米不超过 400 元；居民按项目类别出资 0%/10%/30%/70%；困难户由街道、社区减免。",
        management_plan="改造完成后引入物业服务，业委会监督；设施维修资金按年归集，账目每季度公开。")
    for name, category, cost, building in DEMO_ITEMS:
        ids = [buildings[building].id] if building and building in buildings else None
        plan_svc.add_item(plan, name=name, category=category, cost_fen=cost, building_ids=ids, user=committee,
                          now=now)
    plan_svc.update_plan(plan, user=committee, now=now, pledge_window=(now, now + timedelta(days=30)))
    units = services.estate_units(estate.id)
    hardship = [u for u in units if u.is_hardship]
    for i, unit in enumerate(hardship):
        if i % 2 == 0:
            services.set_hardship(estate, unit, mode="exempt", covered_by="街道", note="低保户", user=committee,
                                  now=now)
        else:
            services.set_hardship(estate, unit, mode="partial", subsidy_fen=100_000, covered_by="社区",
                                  note="重病家庭", user=committee, now=now)
    plan_svc.publish_plan(plan, user=committee, now=now)
    owed = services.owed_by_unit(plan)
    owing = [u for u in units if owed[u.id] > 0]
    for unit in owing[:PLEDGED_UNITS]:
        services.sign_pledge(plan, unit, unit.owners[0], now=now)
    for n, unit in enumerate(owing[:PAID_UNITS]):
        services.record_payment(estate, unit_id=unit.id, amount_fen=owed[unit.id],
                                method=("bank", "wechat", "cash")[n % 3], paid_on=beijing_date(now),
                                reference=f"DEMO-{n + 1:03d}", user=committee, now=now)
    if owing:
        wrong = services.record_payment(estate, unit_id=owing[-1].id, amount_fen=1_000_000, method="cash",
                                        paid_on=beijing_date(now), reference="DEMO-ERR", user=committee, now=now)
        services.reverse_payment(wrong, reason="金额录错（多录一个零）", user=committee, now=now)
    summary = services.funding_summary(estate.id)
    return [f"演示改造方案第 {plan.number} 版已发布：{len(DEMO_ITEMS)} 个项目，居民出资 "
            f"{format_yuan(sum(owed.values()))} 元；{min(PLEDGED_UNITS, len(owing))} 户已签承诺书，"
            f"自筹到位 {services.format_ratio(summary['ratio'])}"]
