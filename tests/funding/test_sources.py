"""Issue 15 item 2: funding sources offset residents' shares (by area or named items), with evidence and the
enabling decision; statements show each unit's offset; the 100 % gate counts them."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from residents_app.core.money import ItemIn, OffsetIn, Rule, UnitIn, allocate, compute_contributions
from residents_app.errors import ValidationFailed
from residents_app.funding import services as funding_svc
from residents_app.funding import sources
from residents_app.plans import services as plan_svc

PDF = b"%PDF-1.4\n% receipt\n"


def passed_round(db, estate, now, *, passed=True):
    from residents_app.rounds.models import Round, RoundResult

    rnd = Round(estate_id=estate.id, kind="general", title="使用专项维修资金", options=[], status="closed",
                opens_at=now - timedelta(days=10), closes_at=now - timedelta(days=1), closed_at=now - timedelta(days=1))
    db.session.add(rnd)
    db.session.flush()
    db.session.add(RoundResult(round_id=rnd.id, passed=passed, tally={}, closed_at=now - timedelta(days=1)))
    db.session.flush()
    return rnd


@pytest.fixture
def three(factory, db, now):
    office = factory.street_office()
    estate = factory.estate(office=office, buildings={"1幢": [("101", "88.50"), ("102", "72.35"), ("103", "101.15")]})
    committee = factory.user("committee", estate=estate)
    units = sorted(estate.buildings[0].units, key=lambda u: u.number)
    plan = plan_svc.create_plan(estate, title="方案", user=committee, now=now, management_plan="物业管理")
    # 262,000.00 yuan paid by residents in full, by area: 88,500 / 72,350 / 101,150 yuan
    plan_svc.add_item(plan, name="门窗更换", category="basic", cost_fen=26_200_000, funding_mode="self_paid",
                      user=committee, now=now)
    plan_svc.publish_plan(plan, user=committee, now=now)
    db.session.commit()
    return estate, committee, units, plan


def test_core_maintenance_funds_by_area_largest_remainder():
    # 12,000,000 × 88.50 / 262 = 4,053,435.11; × 72.35 / 262 = 3,313,740.46; × 101.15 / 262 = 4,632,824.43
    assert allocate(12_000_000, [Decimal("88.50"), Decimal("72.35"), Decimal("101.15")]) == [
        4_053_435, 3_313_741, 4_632_824]
    units = [UnitIn("a", "88.50"), UnitIn("b", "72.35"), UnitIn("c", "101.15")]
    c = compute_contributions([ItemIn(1, "门窗", "basic", 26_200_000, ("a", "b", "c"), mode="self_paid")], units,
                              Rule.seed_001(), [OffsetIn("mf", 12_000_000)])
    assert [c.units[k].offset_fen for k in "abc"] == [4_053_435, 3_313_741, 4_632_824]
    assert [c.units[k].owed_fen for k in "abc"] == [4_796_565, 3_921_259, 5_482_176]
    assert c.offset_total_fen == 12_000_000 and c.owed_total_fen == 26_200_000 - 12_000_000
    assert c.offsets_unused == {"mf": 0}


def test_core_offset_of_named_items_and_never_more_than_a_share():
    units = [UnitIn("a", "60"), UnitIn("b", "40"), UnitIn("c", "100")]
    items = [ItemIn(1, "雨污", "basic", 1_000_000, ("a", "b", "c")),
             ItemIn(2, "电梯", "upgrade", 1_000_000, ("a", "b"), mode="separate", fixed_subsidy_fen=0)]
    c = compute_contributions(items, units, Rule.seed_001(), [OffsetIn("don", 2_000_000, item_keys=(2,))])
    # only 1幢 shares the lift: 600,000 / 400,000; the rest of the donation finds no share
    assert [c.units[k].offset_fen for k in "abc"] == [600_000, 400_000, 0]
    assert c.offsets_unused == {"don": 1_000_000}
    assert [c.units[k].owed_fen for k in "abc"] == [30_000, 20_000, 50_000]


def test_core_offset_a_unit_cannot_take_goes_to_the_others_by_area():
    units = [UnitIn("a", "60"), UnitIn("b", "40"), UnitIn("c", "100")]
    items = [ItemIn(1, "表后", "basic", 100_000, ("a", "b", "c"), mode="self_paid"),
             ItemIn(2, "门窗", "basic", 1_000_000, ("a", "b"), mode="self_paid")]
    c = compute_contributions(items, units, Rule.seed_001(), [OffsetIn("mf", 600_000)])
    # by area 180,000 / 120,000 / 300,000, but c's share is 50,000: the other 250,000 go 60:40 to a and b
    assert [c.units[k].offset_fen for k in "abc"] == [330_000, 220_000, 50_000]
    assert [c.units[k].owed_fen for k in "abc"] == [300_000, 200_000, 0]
    assert (c.offsets_used, c.offsets_unused) == ({"mf": 600_000}, {"mf": 0})


def test_maintenance_funds_count_only_with_evidence_and_a_passed_vote(three, db, now):
    estate, committee, units, plan = three
    src = sources.add_source(estate, kind="maintenance_fund", amount_fen=12_000_000, provider="住房维修资金中心",
                             user=committee, now=now)
    assert sources.source_problems(src) == [
        "尚未上传凭证（到账凭证、捐赠协议或折价清单）",
        "使用专项维修资金须经业主共同决定（民法典第二百七十八条），请关联已通过的表决"]
    assert funding_svc.compute_plan(plan).offset_total_fen == 0
    sources.attach_evidence(src, filename="到账凭证.pdf", data=PDF, user=committee, now=now)
    src.decision_round_id = passed_round(db, estate, now, passed=False).id
    assert sources.source_problems(src) == ["所关联的表决未通过"]
    src.decision_round_id = passed_round(db, estate, now).id
    db.session.flush()
    assert sources.source_problems(src) == []
    c = funding_svc.compute_plan(plan)
    assert [c.units[u.id].offset_fen for u in units] == [4_053_435, 3_313_741, 4_632_824]
    assert sum(c.units[u.id].offset_fen for u in units) == 12_000_000
    st = funding_svc.unit_statement(plan, units[1])
    assert (st["share_fen"], st["offset_fen"], st["owed_fen"]) == (7_235_000, 3_313_741, 3_921_259)
    assert st["offsets"][0]["explanation"] == (
        "专项维修资金（住房维修资金中心） 120,000.00 元，按产权面积抵扣全体业主分摊，本户抵扣 33,137.41 元")


def test_the_gate_counts_sources(three, db, now):
    estate, committee, units, plan = three
    rnd = passed_round(db, estate, now)
    src = sources.add_source(estate, kind="maintenance_fund", amount_fen=12_000_000, decision_round_id=rnd.id,
                             user=committee, now=now)
    sources.attach_evidence(src, filename="凭证.pdf", data=PDF, user=committee, now=now)
    assert sources.self_funding_state(plan) == (12_000_000, 26_200_000, units)
    for u, owed in zip(units, (4_796_565, 3_921_259, 5_482_176), strict=True):
        funding_svc.record_payment(estate, unit_id=u.id, amount_fen=owed, method="bank", paid_on=now.date(),
                                   user=committee, now=now)
    assert sources.self_funding_state(plan) == (26_200_000, 26_200_000, [])


def test_donation_needs_a_written_decision_and_bad_input_is_refused(three, now):
    estate, committee, units, plan = three
    with pytest.raises(ValidationFailed) as info:
        sources.add_source(estate, kind="gift", amount_fen=0, user=committee, now=now)
    assert set(info.value.errors) == {"kind", "amount_fen"}
    with pytest.raises(ValidationFailed) as info:
        sources.add_source(estate, kind="labour", amount_fen=100, into_account=True, user=committee, now=now)
    assert info.value.errors["into_account"] == ["捐物、投工投劳按折价计入，不进入资金专用账户"]
    src = sources.add_source(estate, kind="unit_donation", amount_fen=300_000, provider="某某公司",
                             item_names=["门窗更换"], received_on=date(2026, 11, 2), into_account=True,
                             user=committee, now=now)
    sources.attach_evidence(src, filename="协议.pdf", data=PDF, user=committee, now=now)
    assert sources.source_problems(src) == ["请写明同意使用该资金的决定（如业委会决议）"]
    src.decision_note = "业委会 2026-11-01 决议接受捐赠"
    assert sources.source_problems(src) == []
    assert funding_svc.compute_plan(plan).offset_total_fen == 300_000
    sources.withdraw_source(src, reason="捐赠退回", user=committee, now=now)
    assert funding_svc.compute_plan(plan).offset_total_fen == 0


def test_sources_page_registers_with_evidence_and_shows_what_counts(client, login_as, world, db):
    import io

    world.plan()
    rnd = passed_round(db, world.estate, world.now)
    db.session.commit()
    login_as(client, world.committee)
    resp = client.post(f"/estates/{world.estate.id}/sources", content_type="multipart/form-data", data={
        "kind": "maintenance_fund", "amount_yuan": "1,000.00", "provider": "维修资金中心",
        "decision_round_id": str(rnd.id), "evidence": (io.BytesIO(PDF), "凭证.pdf")})
    assert resp.status_code == 302
    resp = client.post(f"/estates/{world.estate.id}/sources", data={"kind": "public_income", "amount_yuan": "50"})
    assert resp.status_code == 302
    page = client.get(f"/estates/{world.estate.id}/sources").get_data(as_text=True)
    assert '<span class="met">已计入</span>' in page
    assert "未计入：尚未上传凭证（到账凭证、捐赠协议或折价清单）；使用小区公共收益须经业主共同决定" in page
    # 11,000.00 owed by residents, 1,000.00 of it offset by area (300 / 200 / 500), nothing paid yet
    assert "已到位 <span class=\"money\">1,000.00</span> / <span class=\"money\">11,000.00</span> 元" in page
    src = sources.sources_of(world.estate.id)[0]
    assert client.get(f"/estates/{world.estate.id}/sources/{src.id}/evidence").data == PDF
    assert client.post(f"/estates/{world.estate.id}/sources", data={"kind": "x", "amount_yuan": "1"}).status_code == 422
