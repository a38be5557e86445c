"""Pages, API and exports over HTTP: scoping, forms, residents' own unit only."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import sqlalchemy as sa
from flask import g

from residents_app.plans import services as plan_svc
from residents_app.plans.models import PlanVersion


def test_committee_builds_and_publishes_a_plan_through_the_pages(client, login_as, world, db):
    login_as(client, world.committee)
    resp = client.post(f"/estates/{world.estate.id}/plans", data={"title": "综合改造方案"})
    assert resp.status_code == 302
    plan = db.session.execute(sa.select(PlanVersion).where(PlanVersion.estate_id == world.estate.id)).scalar_one()
    resp = client.post(f"/plans/{plan.id}/items", data={"name": "外墙", "category": "basic", "cost_yuan": "12,345.67"})
    assert resp.status_code == 302
    resp = client.post(f"/plans/{plan.id}/items", data={"name": "电梯", "category": "upgrade", "cost_yuan": "1000",
                                                        "building_ids": [str(world.b1.id)]})
    assert resp.status_code == 302
    assert [(i.name, i.cost_fen, i.scope_label) for i in plan.items] == [("外墙", 1_234_567, "全小区"),
                                                                          ("电梯", 100_000, "1幢")]
    resp = client.post(f"/plans/{plan.id}/items", data={"name": "x", "category": "basic", "cost_yuan": "12.345"})
    assert resp.status_code == 422
    assert "费用格式有误：请填写金额（元），最多两位小数，例如 1234.50" in resp.get_data(as_text=True)
    pdf = io.BytesIO(b"%PDF-1.4 test")
    resp = client.post(f"/plans/{plan.id}/attachments", data={"kind": "management_plan", "file": (pdf, "长效管理.pdf")},
                       content_type="multipart/form-data")
    assert resp.status_code == 302
    page = client.get(f"/plans/{plan.id}").get_data(as_text=True)
    assert "1,234.57" in page  # 10% of 12,345.67 = 1,234.567 -> 1,234.57 (half up)
    resp = client.post(f"/plans/{plan.id}/publish")
    assert resp.status_code == 302 and plan.status == "published"
    resp = client.post(f"/plans/{plan.id}/items", data={"name": "y", "category": "basic", "cost_yuan": "1"})
    assert resp.status_code == 409
    assert "方案第 1 版已发布，不能再修改；请新建版本" in resp.get_data(as_text=True)
    resp = client.post(f"/plans/{plan.id}/new-version")
    draft = plan_svc.current_plan(world.estate.id)
    assert draft.id == plan.id  # the draft is not in force until published
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "与第 1 版相比的变更" in page


def test_other_estate_committee_gets_404(client, login_as, world, factory, db):
    plan = world.plan()
    other = factory.estate(buildings={"1幢": [("101", "50.00")]})
    login_as(client, factory.user("committee", estate=other))
    db.session.commit()
    for url in (f"/plans/{plan.id}", f"/estates/{world.estate.id}/plans", f"/estates/{world.estate.id}/funding",
                f"/estates/{world.estate.id}/start", f"/plans/{plan.id}/statements.xlsx",
                f"/estates/{world.estate.id}/ledger.xlsx", f"/api/plans/{plan.id}",
                f"/api/plans/estates/{world.estate.id}/funding"):
        assert client.get(url).status_code == 404, url
    resp = client.post(f"/estates/{world.estate.id}/funding/payments",
                       data={"unit_id": world.u101.id, "amount_yuan": "1", "method": "cash", "paid_on": "2026-09-01"})
    assert resp.status_code == 404


def test_resident_cannot_open_another_estates_attachment(client, world, factory, resident_login, now, db):
    plan = world.plan(publish=False)
    att = plan_svc.add_attachment(plan, kind="rendering", filename="a.png", data=b"\x89PNG\r\n\x1a\nxx",
                                  user=world.committee, now=now)
    plan_svc.publish_plan(plan, user=world.committee, now=now)
    other = factory.estate(buildings={"1幢": [("101", "50.00")]})
    db.session.commit()
    resident_login(client, other.buildings[0].units[0])
    assert client.get(f"/r/plan/attachments/{att.id}").status_code == 404
    assert "本小区还没有发布改造方案" in client.get("/r/plan").get_data(as_text=True)
    # the test's app context is shared by its requests: drop the resident cached in g by the last one
    g.pop("resident_obj", None)
    resident_login(client, world.u101)
    resp = client.get(f"/r/plan/attachments/{att.id}")
    assert resp.status_code == 200 and resp.data == b"\x89PNG\r\n\x1a\nxx"


def test_resident_without_session_is_redirected(client):
    resp = client.get("/r/statement")
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/r/expired")


def test_edit_form_reads_beijing_times_and_refuses_bad_ones(client, login_as, world):
    plan = world.plan(publish=False)
    login_as(client, world.committee)
    resp = client.post(f"/plans/{plan.id}/edit", data={
        "title": "新标题", "management_plan": "物业", "pledge_opens_at": "2026-09-01T09:00",
        "pledge_closes_at": "2026-09-10T18:00"})
    assert resp.status_code == 302
    assert (plan.title, plan.pledge_opens_at, plan.pledge_closes_at) == (
        "新标题", datetime(2026, 9, 1, 1, 0, tzinfo=UTC), datetime(2026, 9, 10, 10, 0, tzinfo=UTC))
    resp = client.post(f"/plans/{plan.id}/edit", data={"title": "新标题", "pledge_closes_at": "明天"})
    assert resp.status_code == 422
    assert "承诺截止时间格式有误，请按 2026-09-01 09:00 的格式填写" in resp.get_data(as_text=True)
    resp = client.post(f"/plans/{plan.id}/edit", data={"title": "新标题", "pledge_opens_at": "2026-09-10T18:00",
                                                        "pledge_closes_at": "2026-09-01T09:00"})
    assert resp.status_code == 422
    resp = client.post(f"/plans/{plan.id}/edit", data={"title": ""})
    assert resp.status_code == 422 and "方案内容有误" in resp.get_data(as_text=True)
