"""Owed amounts per unit saved when a plan version is published (funding/owed.py, issue 19 item 1).

The default world (tests/plan_world.py): 1幢-101 60 m², 1幢-102 40 m², 2幢-101 100 m²; items 1,000,000 fen each at
0/10/30/70 %: the estate-wide 400,000 fen by area (120,000 / 80,000 / 200,000) plus the elevator's 700,000 fen over
1幢's 100 m² (420,000 / 280,000).
"""

from __future__ import annotations

import sqlalchemy as sa

from residents_app.funding import owed
from residents_app.funding import services as funding_svc
from residents_app.funding.owed import UnitOwed
from residents_app.plans import services as plan_svc


def saved_rows(db, plan) -> dict:
    """{unit label: (share, covered, offset, owed)} as saved for this version."""
    from residents_app.registry.models import Unit

    rows = db.session.execute(sa.select(UnitOwed).where(UnitOwed.plan_version_id == plan.id)).scalars()
    return {db.session.get(Unit, r.unit_id).label: (r.share_fen, r.covered_fen, r.offset_fen, r.owed_fen)
            for r in rows}


def recomputed(plan) -> dict:
    from residents_app.extensions import db
    from residents_app.registry.models import Unit

    return {db.session.get(Unit, k).label: (u.share_fen, u.covered_fen, u.offset_fen, u.owed_fen)
            for k, u in funding_svc.compute_plan(plan).units.items()}


def test_publishing_saves_each_units_owed_amount(world, db):
    draft = world.plan(publish=False)
    assert saved_rows(db, draft) == {}  # a draft has none
    plan_svc.publish_plan(draft, user=world.committee, now=world.now)
    # in the publishing transaction already, before its commit
    assert saved_rows(db, draft) == {"1幢-101": (540_000, 0, 0, 540_000), "1幢-102": (360_000, 0, 0, 360_000),
                                     "2幢-101": (200_000, 0, 0, 200_000)}
    db.session.commit()
    assert saved_rows(db, draft) == recomputed(draft)
    assert owed.check_plan(draft) == []
    assert owed.saved(draft) is not None
    assert funding_svc.funding_summary(world.estate.id)["owed_fen"] == 1_100_000


def test_the_summary_pledges_and_api_read_the_saved_amounts(world, db):
    plan = world.plan(pledge_closes_at=world.later(days=10))
    # a row changed behind the application's back: what is read is the saved amount (verify reports it)
    db.session.execute(sa.update(UnitOwed).where(UnitOwed.plan_version_id == plan.id,
                                                 UnitOwed.unit_id == world.u201.id).values(owed_fen=199_999))
    db.session.commit()
    summary = funding_svc.funding_summary(world.estate.id)
    assert (summary["owed_fen"], summary["owing_units"]) == (540_000 + 360_000 + 199_999, 3)
    assert [(r["unit"].label, r["missing_fen"]) for r in funding_svc.units_owing(world.estate.id)] == [
        ("1幢-101", 540_000), ("1幢-102", 360_000), ("2幢-101", 199_999)]
    pledge = funding_svc.sign_pledge(plan, world.u201, world.owner(world.u201), now=world.later(hours=1))
    assert pledge.amount_fen == 199_999


def test_hardship_set_after_publishing_is_still_subtracted(world, db):
    plan = world.plan()
    funding_svc.set_hardship(world.estate, world.u102, mode="exempt", covered_by="街道", user=world.committee,
                             now=world.now)
    funding_svc.set_hardship(world.estate, world.u201, mode="partial", subsidy_fen=50_000, covered_by="慈善",
                             user=world.committee, now=world.now)
    # not committed yet: the saved rows are stale, so readers compute live
    assert owed.saved(plan) is None
    assert funding_svc.funding_summary(world.estate.id)["owed_fen"] == 540_000 + 0 + 150_000
    db.session.commit()
    assert saved_rows(db, plan) == {"1幢-101": (540_000, 0, 0, 540_000), "1幢-102": (360_000, 360_000, 0, 0),
                                    "2幢-101": (200_000, 50_000, 0, 150_000)}
    assert owed.saved(plan) is not None
    assert funding_svc.funding_summary(world.estate.id)["owed_fen"] == 690_000
    st = funding_svc.unit_statement(plan, world.u201)
    assert (st["share_fen"], st["covered_fen"], st["owed_fen"]) == (200_000, 50_000, 150_000)
    assert owed.check_plan(plan) == []
    funding_svc.clear_hardship(world.estate, world.u102, user=world.committee, now=world.now)
    db.session.commit()
    assert saved_rows(db, plan)["1幢-102"] == (360_000, 0, 0, 360_000)
    assert funding_svc.funding_summary(world.estate.id)["owed_fen"] == 1_050_000


def test_a_new_contribution_rule_rewrites_the_version_in_force(world, db):
    plan = world.plan()
    funding_svc.set_contribution_rule(world.office.id, pct={"required": 0, "basic": 20, "improvement": 30,
                                                            "upgrade": 70}, cap_fen_per_m2=40_000,
                                      user=world.street, now=world.now)
    db.session.commit()
    # estate-wide 200,000 + 300,000 by area, the elevator as before
    assert saved_rows(db, plan) == {"1幢-101": (570_000, 0, 0, 570_000), "1幢-102": (380_000, 0, 0, 380_000),
                                    "2幢-101": (250_000, 0, 0, 250_000)}
    assert owed.check_plan(plan) == []


def test_a_new_version_published_gets_its_own_rows(world, db):
    v1 = world.plan()
    v2 = plan_svc.new_version(v1, user=world.committee, now=world.now)
    parking = next(i for i in v2.items if i.name == "停车位改造")
    plan_svc.update_item(parking, name=parking.name, category="improvement", cost_fen=2_000_000,
                         user=world.committee, now=world.now)
    plan_svc.update_plan(v2, change_summary="停车位改造费用调整为 20,000 元", user=world.committee, now=world.now)
    plan_svc.publish_plan(v2, user=world.committee, now=world.now)
    db.session.commit()
    # estate-wide 100,000 + 600,000 by area: 210,000 / 140,000 / 350,000; the elevator as before
    assert saved_rows(db, v2) == {"1幢-101": (630_000, 0, 0, 630_000), "1幢-102": (420_000, 0, 0, 420_000),
                                  "2幢-101": (350_000, 0, 0, 350_000)}
    assert saved_rows(db, v1) == {"1幢-101": (540_000, 0, 0, 540_000), "1幢-102": (360_000, 0, 0, 360_000),
                                  "2幢-101": (200_000, 0, 0, 200_000)}
    assert funding_svc.funding_summary(world.estate.id)["owed_fen"] == 1_400_000
    assert owed.check_saved_owed([world.estate.id]) == []


def test_verify_names_the_unit_whose_saved_amount_differs(app, world, db):
    plan = world.plan()
    db.session.execute(sa.update(UnitOwed).where(UnitOwed.plan_version_id == plan.id,
                                                 UnitOwed.unit_id == world.u102.id).values(owed_fen=1))
    db.session.execute(sa.delete(UnitOwed).where(UnitOwed.plan_version_id == plan.id,
                                                 UnitOwed.unit_id == world.u201.id))
    db.session.commit()
    subject = f"方案第 1 版（#{plan.id}）各户应缴金额"
    assert [(p.chain, p.describe(), p.code) for p in owed.check_saved_owed(None)] == [
        (world.estate.id, f"{subject}：房屋 1幢-102（#{world.u102.id}） 应缴保存为 1 分，重算为 360000 分",
         "owed_mismatch"),
        (world.estate.id, f"{subject}：房屋 2幢-101（#{world.u201.id}） 没有保存金额，重算应缴 200000 分",
         "owed_missing_unit")]
    result = app.test_cli_runner().invoke(args=["audit", "verify"])
    assert result.exit_code == 1, result.output
    assert (f"{subject}：房屋 1幢-102（#{world.u102.id}） 应缴保存为 1 分，重算为 360000 分（owed_mismatch）"
            in result.output)
    assert f"房屋 2幢-101（#{world.u201.id}） 没有保存金额，重算应缴 200000 分（owed_missing_unit）" in result.output
    assert "1幢-101" not in result.output
    # rewriting the estate's rows (what the next change's commit does) repairs them
    owed.refresh([world.estate.id])
    db.session.commit()
    assert owed.check_saved_owed(None) == []
    assert app.test_cli_runner().invoke(args=["audit", "verify"]).exit_code == 0


def test_a_funding_source_counted_after_publishing_is_offset_in_the_saved_rows(world, db):
    from residents_app.funding import sources

    plan = world.plan()
    src = sources.add_source(world.estate, kind="unit_donation", amount_fen=110_000, provider="某某公司",
                             decision_note="业委会决议接受捐赠", user=world.committee, now=world.now)
    db.session.commit()
    assert saved_rows(db, plan)["2幢-101"] == (200_000, 0, 0, 200_000)  # no evidence yet: it does not count
    sources.attach_evidence(src, filename="协议.pdf", data=b"%PDF-1.4\n% receipt\n", user=world.committee,
                            now=world.now)
    db.session.commit()
    # an estate-wide source: 110,000 fen by area over 60 / 40 / 100 m²
    assert saved_rows(db, plan) == {"1幢-101": (540_000, 0, 33_000, 507_000), "1幢-102": (360_000, 0, 22_000, 338_000),
                                    "2幢-101": (200_000, 0, 55_000, 145_000)}
    assert funding_svc.funding_summary(world.estate.id)["owed_fen"] == 990_000
    assert owed.check_plan(plan) == []
    sources.withdraw_source(src, reason="捐赠取消", user=world.committee, now=world.now)
    db.session.commit()
    assert saved_rows(db, plan)["1幢-101"] == (540_000, 0, 0, 540_000)
    assert owed.check_plan(plan) == []


def test_the_result_of_the_round_a_source_relies_on_rewrites_the_saved_rows(world, db):
    from datetime import timedelta

    from residents_app.funding import sources
    from residents_app.rounds.models import Round, RoundResult

    plan = world.plan()
    rnd = Round(estate_id=world.estate.id, kind="general", title="使用专项维修资金", options=[], status="closed",
                opens_at=world.now - timedelta(days=10), closes_at=world.now - timedelta(days=1),
                closed_at=world.now - timedelta(days=1))
    db.session.add(rnd)
    db.session.flush()
    src = sources.add_source(world.estate, kind="maintenance_fund", amount_fen=110_000, decision_round_id=rnd.id,
                             user=world.committee, now=world.now)
    sources.attach_evidence(src, filename="凭证.pdf", data=b"%PDF-1.4\n% receipt\n", user=world.committee,
                            now=world.now)
    db.session.commit()
    assert sources.source_problems(src) == ["所关联的表决尚无结果"]
    assert saved_rows(db, plan)["2幢-101"] == (200_000, 0, 0, 200_000)
    # added and committed without a flush of its own: the commit's flush counts it
    db.session.add(RoundResult(round_id=rnd.id, passed=True, tally={}, closed_at=world.now - timedelta(days=1)))
    db.session.commit()
    assert saved_rows(db, plan) == {"1幢-101": (540_000, 0, 33_000, 507_000), "1幢-102": (360_000, 0, 22_000, 338_000),
                                    "2幢-101": (200_000, 0, 55_000, 145_000)}
    assert owed.check_plan(plan) == []
