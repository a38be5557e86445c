"""/api/r/plans, /api/r/plans/<id> (items and costs by category, to the fen), /api/r/plans/<id>/diff."""

from __future__ import annotations

import pytest

from residents_app.plans import services as plan_svc
from residents_app.rounds import links as links_svc
from tests.plan_world import PlanWorld


@pytest.fixture
def plans(factory, db, now):
    """My estate (tests/plan_world: 1幢 60 + 40 m², 2幢 100 m²) with v1 superseded by v2, a draft v3; another
    estate with its own published plan."""
    w = PlanWorld(factory, db, now)
    v1 = w.plan()
    v2 = plan_svc.new_version(v1, user=w.committee, now=w.later(hours=1))
    items = {i.name: i for i in v2.items}
    plan_svc.update_item(items["外墙保温"], name="外墙保温", category="basic", cost_fen=1_234_567,
                         user=w.committee, now=w.later(hours=1))
    plan_svc.remove_item(items["停车位改造"], user=w.committee, now=w.later(hours=1))
    plan_svc.add_item(v2, name="屋面防水", category="basic", cost_fen=200_001, user=w.committee,
                      now=w.later(hours=1))
    plan_svc.update_plan(v2, user=w.committee, now=w.later(hours=1),
                         change_summary="外墙提价，增加屋面防水，取消停车位", budget_summary="总预算约 3.4 万元")
    plan_svc.publish_plan(v2, user=w.committee, now=w.later(hours=2))
    v3 = plan_svc.new_version(v2, user=w.committee, now=w.later(hours=3))
    other = PlanWorld(factory, db, now)
    theirs = other.plan()
    db.session.commit()
    w.v1, w.v2, w.v3, w.theirs = v1, v2, v3, theirs
    w.tokens = {u.label: t for u, t in links_svc.issue_links(w.estate.id, now)}
    db.session.commit()
    return w


@pytest.fixture
def resident(client, plans):
    owner = plans.u201.owners[0]
    resp = client.post(f"/api/ballot/{plans.tokens['2幢-101']}/identity",
                       json={"name": owner.name, "phone_last4": owner.phone[-4:]})
    assert resp.status_code == 200
    return client


def test_published_versions_newest_first(resident, plans):
    body = resident.get("/api/r/plans").get_json()
    assert [(p["id"], p["number"], p["status"], p["status_label"], p["total_cost"], p["supersedes_id"])
            for p in body] == [
        (plans.v2.id, 2, "published", "已发布", "34345.68", plans.v1.id),
        (plans.v1.id, 1, "superseded", "已被新版本取代", "40000.00", None)]
    assert body[0]["change_summary"] == "外墙提价，增加屋面防水，取消停车位"
    assert body[0]["published_at"] == plans.later(hours=2).isoformat()


def test_version_items_and_costs_by_category_to_the_fen(resident, plans):
    body = resident.get(f"/api/r/plans/{plans.v2.id}").get_json()
    # basic is 10 %, half up per item: 123,456.7 -> 123,457 fen; 20,000.1 -> 20,000 fen; upgrade 70 % over 1幢
    assert [(i["name"], i["category_label"], i["scope_label"], i["cost"], i["resident"], i["subsidy"])
            for i in body["items"]] == [
        ("雨污分流", "必选", "全小区", "10000.00", "0.00", "10000.00"),
        ("外墙保温", "基础", "全小区", "12345.67", "1234.57", "11111.10"),
        ("1幢加装电梯", "提升", "1幢", "10000.00", "7000.00", "3000.00"),
        ("屋面防水", "基础", "全小区", "2000.01", "200.00", "1800.01")]
    assert body["categories"] == [
        {"category": "required", "category_label": "必选", "item_count": 1, "cost": "10000.00", "resident": "0.00",
         "subsidy": "10000.00"},
        {"category": "basic", "category_label": "基础", "item_count": 2, "cost": "14345.68", "resident": "1434.57",
         "subsidy": "12911.11"},
        {"category": "upgrade", "category_label": "提升", "item_count": 1, "cost": "10000.00", "resident": "7000.00",
         "subsidy": "3000.00"}]
    assert (body["total_cost"], body["resident_total"], body["subsidy_total"]) == ("34345.68", "8434.57", "25911.11")
    assert (body["budget_summary"], body["attachments"]) == ("总预算约 3.4 万元", [])
    old = resident.get(f"/api/r/plans/{plans.v1.id}").get_json()
    assert [c["resident"] for c in old["categories"]] == ["0.00", "1000.00", "3000.00", "7000.00"]


def test_what_changed_against_the_previous_version(resident, plans):
    body = resident.get(f"/api/r/plans/{plans.v2.id}/diff").get_json()
    assert body == {
        "version_id": plans.v2.id, "number": 2, "previous_id": plans.v1.id, "previous_number": 1,
        "change_summary": "外墙提价，增加屋面防水，取消停车位", "added": ["屋面防水"], "removed": ["停车位改造"],
        "changed": [{"name": "外墙保温", "changes": ["费用 1000000 → 1234567 分"], "old_cost": "10000.00",
                     "new_cost": "12345.67"}],
        "texts_changed": ["工程预算说明"], "old_total": "40000.00", "new_total": "34345.68",
        "attachments_old": [], "attachments_new": []}
    first = resident.get(f"/api/r/plans/{plans.v1.id}/diff").get_json()
    assert (first["previous_id"], first["added"], first["changed"], first["old_total"], first["new_total"]) == (
        None, [], [], None, "40000.00")


def test_a_draft_another_estates_plan_and_unknown_ids_are_404(resident, plans):
    for version_id in (plans.v3.id, plans.theirs.id, 999_999):
        for suffix in ("", "/diff"):
            resp = resident.get(f"/api/r/plans/{version_id}{suffix}")
            assert (resp.status_code, resp.get_json()) == (404, {"code": "plan_not_found", "status": 404,
                                                                "message": "找不到该方案", "errors": {}})
    assert plans.theirs.id not in [p["id"] for p in resident.get("/api/r/plans").get_json()]
